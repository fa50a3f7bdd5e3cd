"""Emergency drills against a real agent process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AgentProcess, wait_for_log

pytestmark = pytest.mark.e2e

DRILL_RULES = """
[[rules]]
name = "drill_threshold"
category = "stability"
metric = "sentinel_drill_probe_value"
threshold = 1
op = ">="
severity = "minor"
drill = true
title = "Emergency drill on {subject}"
rectification = ["Nothing to repair: emergency drill"]
"""


def sentinel(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args, "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_threshold_drill_passes_every_stage_and_cleans_up(start_agent: Any) -> None:
    """detected, recorded, metrics pass with latencies; the drill hazard ends closed; history kept."""
    agent: AgentProcess = start_agent(DRILL_RULES, health=False)
    result = sentinel(agent, "drill", "--scenario", "threshold", "--json", "--timeout", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = json.loads(result.stdout)
    stages = {s["name"]: s for s in run["stages"]}
    assert set(stages) == {"detected", "recorded", "metrics"}
    assert all(s["passed"] and s["latency_seconds"] is not None for s in stages.values())
    hazard = json.loads(sentinel(agent, "hazards", "show", str(run["hazard_id"]), "--json").stdout)
    assert hazard["drill"] is True and hazard["state"] == "closed"
    assert (
        hazard["closed_by"] == "drill-verifier"
        and "after the threshold drill" in hazard["history"][-1]["note"]
    )
    history = json.loads(sentinel(agent, "drill", "history", "--json").stdout)
    assert history[0]["scenario"] == "threshold" and history[0]["passed"] is True
    text = agent.scrape()
    assert 'sentinel_drill_last_result{scenario="threshold"} 1.0' in text
    assert 'sentinel_drill_stage_latency_seconds{scenario="threshold",stage="recorded"}' in text
    assert 'sentinel_drill_last_success_timestamp_seconds{scenario="threshold"}' in text


def test_drill_fails_naming_the_stage_when_the_rule_is_missing(start_agent: Any) -> None:
    """Without the drill rule the scenario cannot run: reported, exit 1."""
    agent: AgentProcess = start_agent(health=False)
    result = sentinel(agent, "drill", "--scenario", "threshold", "--timeout", "3")
    assert result.returncode == 1
    assert "SKIPPED (rule drill_threshold on sentinel_drill_probe_value is not enabled)" in result.stdout


def test_drill_needs_a_running_agent(tmp: Any) -> None:
    """No agent on the state_dir: one line, exit 1."""
    from tests.support.agent import write_config

    config = write_config(tmp)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "drill", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "the agent is not running" in result.stderr


AUTH = """
[collectors.auth]
source = "file"
files = ["auth.log"]
poll_interval = "200ms"

[[rules]]
name = "login_bruteforce"
category = "cyber_attack"
event = "auth.login_failed"
count = 8
window = "120s"
group_by = ["source"]
mute = "60s"
severity = "major"
title = "{count} failed logins from {source}"
"""


def fim(tmp: Any) -> str:
    """Integrity monitoring of a small tree plus the drill directory, with the shipped rules."""
    root = Path(__file__).resolve().parents[2]
    (tmp / "etc").mkdir(exist_ok=True)
    (tmp / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp / "rules.d").mkdir(exist_ok=True)
    shutil.copy(root / "config" / "rules.d" / "integrity.toml", tmp / "rules.d")
    return (
        f'\n[integrity]\ndrill_dir = "{tmp / "drill"}"\n'
        f'[[integrity.watch]]\npath = "{tmp / "etc"}"\npolicy = "critical"\n'
    )


def hook(receiver_url: str) -> str:
    return (
        f'\n[[sinks]]\nname = "tickets"\ntype = "webhook"\nurl = "{receiver_url}"\n'
        f'secret_file = "hook.secret"\nmax_backoff = "1s"\ntimeout = "2s"\n'
    )


def test_every_scenario_passes_with_a_real_webhook_receiver(start_agent: Any, tmp: Any) -> None:
    """All scenarios, all stages, including the ticket reaching the receiver (marked drill)."""
    from tests.support.net import WebhookReceiver, free_port

    (tmp / "hook.secret").write_bytes(b"drill-secret")
    receiver = WebhookReceiver(b"drill-secret", port=free_port()).start()
    try:
        agent: AgentProcess = start_agent(DRILL_RULES + AUTH + fim(tmp) + hook(receiver.url), health=False)
        wait_for_log(agent, "fim_baseline_created")
        result = sentinel(agent, "drill", "--json", "--timeout", "20")
        assert result.returncode == 0, result.stdout + result.stderr
        runs = json.loads(result.stdout)
        assert {r["scenario"] for r in runs} == {"threshold", "brute_force", "file_change"}
        for run in runs:
            assert run["passed"], run
            assert "ticket:tickets" in {s["name"] for s in run["stages"]}
        raised = [b for _, b in receiver.received if b["transition"] == "raised"]
        assert raised and all(b["drill"] is True and b["hazard"]["drill"] is True for b in raised)
    finally:
        receiver.stop()


def test_drill_fails_naming_the_ticket_stage_when_the_receiver_is_down(start_agent: Any, tmp: Any) -> None:
    """Receiver down: detected/recorded/metrics pass, ticket:tickets fails, exit 1."""
    from tests.support.net import free_port

    (tmp / "hook.secret").write_bytes(b"drill-secret")
    down = f"http://127.0.0.1:{free_port()}/hook"
    agent: AgentProcess = start_agent(DRILL_RULES + hook(down), health=False)
    result = sentinel(agent, "drill", "--scenario", "threshold", "--timeout", "4")
    assert result.returncode == 1
    assert "drill threshold: FAILED" in result.stdout
    failed = [line for line in result.stdout.splitlines() if line.strip().startswith("FAIL")]
    assert len(failed) == 1 and "ticket:tickets" in failed[0] and "last error" in failed[0]
    assert "ok   recorded" in result.stdout and "ok   metrics" in result.stdout


def test_brute_force_drill_goes_through_the_real_rule_twice_in_a_row(start_agent: Any) -> None:
    """The burst reaches the shipped-style brute-force rule as a drill; a second drill right
    after is not muted (a fresh source address) and the first drill's hazard was closed."""
    agent: AgentProcess = start_agent(DRILL_RULES + AUTH, health=False)
    for _ in range(2):
        result = sentinel(agent, "drill", "--scenario", "brute_force", "--json", "--timeout", "15")
        assert result.returncode == 0, result.stdout + result.stderr
        (run,) = json.loads(result.stdout)
        hazard = json.loads(sentinel(agent, "hazards", "show", str(run["hazard_id"]), "--json").stdout)
        assert hazard["rule"] == "login_bruteforce" and hazard["drill"] is True
        assert hazard["subject"].startswith("203.0.113.") and hazard["state"] == "closed"


def test_file_change_drill_twice_leaves_no_open_hazard(start_agent: Any, tmp: Any) -> None:
    """The probe file is rewritten each drill; both drill hazards end closed, none stays open."""
    agent: AgentProcess = start_agent(fim(tmp), health=False)
    wait_for_log(agent, "fim_baseline_created")
    for _ in range(2):
        result = sentinel(agent, "drill", "--scenario", "file_change", "--json", "--timeout", "15")
        assert result.returncode == 0, result.stdout + result.stderr
        (run,) = json.loads(result.stdout)
        hazard = json.loads(sentinel(agent, "hazards", "show", str(run["hazard_id"]), "--json").stdout)
        assert hazard["rule"] == "fim_critical_change" and hazard["drill"] is True
        assert hazard["subject"] == str(tmp / "drill" / "drill-probe.txt") and hazard["state"] == "closed"
    listed = json.loads(sentinel(agent, "hazards", "list", "--open", "--json").stdout)
    assert listed == []


@pytest.mark.skipif(os.geteuid() != 0, reason="what root leaves behind: needs root")
def test_a_drill_run_by_root_leaves_the_probe_to_the_agent(tmp: Path) -> None:
    """`sentinel drill` as root must not take the probe from the agent's user (who owns the drill
    directory), or the agent's scheduled drills could no longer rewrite it."""
    from sentinel.config.loader import load
    from sentinel.core.clock import SYSTEM_CLOCK
    from sentinel.drills.scenarios import FileChangeScenario
    from tests.support.agent import write_config

    drill_dir = tmp / "drill"
    drill_dir.mkdir()
    os.chown(drill_dir, 65534, 65534)  # the agent's account, here nobody
    config = load(write_config(tmp, extra=f'\n[integrity]\ndrill_dir = "{drill_dir}"\n'))
    FileChangeScenario().stimulate(config, SYSTEM_CLOCK)
    probe = (drill_dir / "drill-probe.txt").stat()
    assert (probe.st_uid, probe.st_gid) == (65534, 65534)
