"""The real `sentinel run` process: readiness, scrape, reload, stop, lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess, wait_for_log

pytestmark = pytest.mark.e2e

BURNING_RULE = """
[[rules]]
name = "cpus_present"
category = "stability"
metric = "sentinel_cpus"
threshold = 1
op = ">="
severity = "info"
title = "{value} CPUs"
"""


def value(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_scrape_passes_promtool_with_no_warning(start_agent: Any, promtool: str) -> None:
    """A live scrape is valid exposition: `promtool check metrics` prints nothing and exits 0."""
    agent: AgentProcess = start_agent()
    text = wait_until(lambda: (t := agent.scrape()) and "sentinel_filesystem_used_ratio" in t and t)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )
    for name in (
        "sentinel_build_info",
        "sentinel_up",
        "sentinel_collector_up",
        "sentinel_hazards",
        "sentinel_config_last_reload_successful",
        "process_resident_memory_bytes",
    ):
        assert f"\n{name}" in text, name


def test_sighup_reloads_a_good_config_and_rejects_a_bad_one(start_agent: Any) -> None:
    """Good reload applies new rules; a bad one keeps the old config and sets the metric to 0."""
    agent: AgentProcess = start_agent()
    agent.config.write_text(agent.config.read_text() + BURNING_RULE)
    agent.signal(signal.SIGHUP)
    wait_for_log(agent, "config_reloaded", rules=1)
    wait_until(lambda: "cpus_present" in agent.scrape(), timeout=15)
    assert value(agent.scrape(), "sentinel_config_last_reload_successful") == 1.0

    drop_in = agent.config.parent / "conf.d" / "99-typo.toml"
    drop_in.parent.mkdir()
    drop_in.write_text("[metrics]\nbogus = 1\n")
    agent.signal(signal.SIGHUP)
    rejected = wait_for_log(agent, "reload_rejected")
    assert rejected["error"].startswith(f"{drop_in}: metrics.bogus: unknown key")
    text = wait_until(
        lambda: (t := agent.scrape()) and "sentinel_config_last_reload_successful 0.0" in t and t
    )
    assert value(text, "sentinel_up") == 1.0
    assert agent.proc.poll() is None


def test_sigterm_stops_cleanly_within_five_seconds(start_agent: Any) -> None:
    """SIGTERM: STOPPING=1, the stop log lines, exit 0, within 5 s."""
    agent: AgentProcess = start_agent()
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    code = agent.proc.wait(10)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 5, elapsed
    events = [e["event"] for e in agent.log_events()]
    assert "agent_stopping" in events and events[-1] == "agent_stopped"
    agent.notify.wait_for("STOPPING=1", timeout=1)


def test_watchdog_pings_at_half_the_interval(start_agent: Any) -> None:
    """With WATCHDOG_USEC=1s systemd gets WATCHDOG=1 every 0.5 s: four within 2.5 s of READY."""
    agent: AgentProcess = start_agent(env={"WATCHDOG_USEC": "1000000"})
    started = time.monotonic()
    agent.notify.wait_count("WATCHDOG=1", 4, timeout=2.5)
    assert time.monotonic() - started < 2.5


def test_second_agent_refuses_with_a_clear_message(start_agent: Any, tmp: Any) -> None:
    """A second `sentinel run` on the same state_dir exits 2 naming the first one's pid."""
    agent: AgentProcess = start_agent()
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "run", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp,
    )
    assert result.returncode == 2
    assert f"another agent (pid {agent.proc.pid}) is already running" in result.stderr
    assert "Traceback" not in result.stderr


def test_threshold_crossed_shows_in_cli_and_metrics(start_agent: Any) -> None:
    """A rule the machine crosses raises a hazard visible in `hazards list --json` and /metrics."""
    import json

    agent: AgentProcess = start_agent(BURNING_RULE)
    text = wait_until(lambda: (t := agent.scrape()) and 'rule="cpus_present"' in t and t, timeout=15)
    assert 'sentinel_hazards{category="stability",severity="info",state="open"} 1.0' in text
    out = subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", "list", "--json", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (record,) = json.loads(out.stdout)
    assert record["rule"] == "cpus_present" and record["state"] == "open"
    status = subprocess.run(
        [sys.executable, "-m", "sentinel", "status", "--json", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0
    assert json.loads(status.stdout)["running"] is True
