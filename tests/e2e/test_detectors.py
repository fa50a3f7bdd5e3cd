"""Real `sentinel run` agents with the event detectors and the shipped rules.d/events.toml."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess

pytestmark = pytest.mark.e2e

RULES_DIR = Path(__file__).parents[2] / "config" / "rules.d"


def with_shipped_rules(directory: Path) -> None:
    """A conf.d drop-in pointing the agent at the repository's rules.d (events.toml included)."""
    (directory / "conf.d").mkdir(exist_ok=True)
    (directory / "conf.d" / "10-rules.toml").write_text(f'[agent]\nrules_dir = "{RULES_DIR}"\n')


def hazards(agent: AgentProcess) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", "list", "--json", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


def metric(agent: AgentProcess, series: str) -> float | None:
    for line in agent.scrape().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def auth_agent(start_agent: Any, tmp: Path) -> tuple[AgentProcess, Path]:
    log = tmp / "auth.log"
    log.touch()
    with_shipped_rules(tmp)
    extra = f'\n[collectors.auth]\nsource = "file"\nfiles = ["{log}"]\npoll_interval = "0.1s"\n'
    return start_agent(extra, health=False), log


def append(log: Path, lines: list[str]) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def failures_series() -> str:
    return 'sentinel_events_total{detector="auth",kind="login_failed"}'


def test_burst_from_one_source_is_one_hazard_spread_is_none(start_agent: Any, tmp: Path) -> None:
    """10 failures in 10 s from one source: one brute-force hazard; 10 spread over 10 hours: none."""
    agent, log = auth_agent(start_agent, tmp)
    now = time.time()
    burst = [
        time.strftime("%b %e %H:%M:%S", time.localtime(now - 10 + i))
        + f" teller01 sshd[{100 + i}]: Failed password for root from 203.0.113.9 port {40000 + i} ssh2"
        for i in range(10)
    ]
    spread = [
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 36000 + i * 3600))
        + f" teller01 sshd[{200 + i}]: Failed password for invalid user u{i} from 2001:db8::77 port 5000 ssh2"
        for i in range(10)
    ]
    append(log, spread + burst)
    wait_until(lambda: metric(agent, failures_series()) == 20, timeout=15)
    found = wait_until(lambda: [h for h in hazards(agent) if h["rule"] == "login_bruteforce"], timeout=15)
    assert [(h["subject"], h["severity"], h["category"]) for h in found] == [
        ("203.0.113.9", "major", "cyber_attack")
    ]
    assert found[0]["occurrences"] == 1
    assert found[0]["rectification"]


def test_rotation_and_truncation_lose_no_line(start_agent: Any, tmp: Path) -> None:
    """Rename-rotation (with late writes to the old file) and copytruncate: every line counted once."""
    agent, log = auth_agent(start_agent, tmp)
    series = 'sentinel_events_total{detector="auth",kind="invalid_user"}'

    def lines(start: int, n: int) -> list[str]:
        stamp = time.strftime("%b %e %H:%M:%S")
        return [
            f"{stamp} t sshd[1]: Invalid user u{i} from 192.0.2.{i % 250} port 1"
            for i in range(start, start + n)
        ]

    append(log, lines(0, 50))
    wait_until(lambda: metric(agent, series) == 50, timeout=15)
    append(log, lines(50, 20))
    log.rename(tmp / "auth.log.1")
    append(tmp / "auth.log.1", lines(70, 5))  # the writer has not reopened yet
    append(log, lines(75, 25))
    wait_until(lambda: metric(agent, series) == 100, timeout=15)
    os.truncate(log, 0)  # copytruncate
    append(log, lines(100, 30))
    wait_until(lambda: metric(agent, series) == 130, timeout=15)
    assert metric(agent, 'sentinel_events_malformed_total{detector="auth"}') == 0
    assert metric(agent, 'sentinel_detector_up{detector="auth"}') == 1


def test_listening_socket_on_loopback_raises_a_listener_hazard(start_agent: Any, tmp: Path) -> None:
    """A socket the test opens on 127.0.0.1 after the baseline becomes a listener_new hazard."""
    with_shipped_rules(tmp)
    agent = start_agent('\n[collectors.listeners]\ninterval = "0.5s"\n', health=False)
    wait_until(lambda: metric(agent, 'sentinel_detector_up{detector="listeners"}') == 1, timeout=15)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        found = wait_until(
            lambda: [
                h for h in hazards(agent) if h["rule"] == "listener_new" and f":{port} " in h["subject"]
            ],
            timeout=15,
        )
    assert found[0]["severity"] == "major"
    assert f"127.0.0.1:{port}" in found[0]["title"]


def test_process_started_from_a_temp_directory_is_flagged(start_agent: Any, tmp: Path) -> None:
    """A copy of sleep started from a temp directory raises a critical process_from_temp hazard."""
    with_shipped_rules(tmp)
    bin_dir = tmp / "drop"
    bin_dir.mkdir()
    binary = bin_dir / "updater"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", binary)
    extra = f'\n[collectors.processes]\ninterval = "0.5s"\ntemp_dirs = ["{bin_dir}"]\n'
    agent = start_agent(extra, health=False)
    proc = subprocess.Popen([str(binary), "60"])
    try:
        found = wait_until(
            lambda: [
                h for h in hazards(agent) if h["rule"] == "process_from_temp" and h["subject"] == str(binary)
            ],
            timeout=15,
        )
    finally:
        proc.kill()
        proc.wait()
    assert [(h["subject"], h["severity"]) for h in found] == [(str(binary), "critical")]


def test_scrape_with_every_detector_passes_promtool(start_agent: Any, tmp: Path, promtool: str) -> None:
    """All six detectors running: their families are valid exposition, promtool prints nothing."""
    (tmp / "auth.log").touch()
    extra = (
        f'\n[collectors.auth]\nsource = "file"\nfiles = ["{tmp / "auth.log"}"]\n[collectors.usb]\n'
        '[collectors.listeners]\ninterval = "1s"\n[collectors.processes]\ninterval = "1s"\n'
        '[collectors.outbound]\ninterval = "1s"\n'
        '[collectors.accounts]\ninterval = "1s"\nsuid_dirs = ["/usr/bin"]\n'
    )
    agent = start_agent(extra, health=False)
    names = ("auth", "usb", "listeners", "processes", "outbound", "accounts")
    text = wait_until(
        lambda: (
            (t := agent.scrape()) and all(f'sentinel_detector_up{{detector="{n}"}}' in t for n in names) and t
        ),
        timeout=15,
    )
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, "", "")
