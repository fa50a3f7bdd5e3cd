"""The shipped config/ as `make run` uses it: the agent starts, and its live scrape is valid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.agentrun import shipped_config
from sentinel.testing import wait_until
from tests.support.agent import AgentProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_runs_and_its_scrape_passes_promtool(tmp: Path, promtool: str) -> None:
    """Every shipped collector and rule together: READY, collectors up, promtool silent."""
    config, port = shipped_config(ROOT, tmp)
    check = subprocess.run(
        [sys.executable, "-m", "sentinel", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    agent = AgentProcess(tmp, config, port)
    try:
        agent.wait_ready()
        text = wait_until(
            lambda: (t := agent.scrape()) and "sentinel_collector_last_run_timestamp_seconds{" in t and t
        )
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
            result.stdout + result.stderr
        )
        wait_until(lambda: not _never_ran(agent, tmp / "state"), timeout=90)  # streaming ones too
        errors = [e for e in agent.log_events() if e.get("level") in ("error", "critical")]
        assert errors == []
    finally:
        assert agent.stop() == 0


def _never_ran(agent: AgentProcess, state: Path) -> set[str]:
    """The enabled collectors that export no last-run time: SentinelCollectorStalled would
    never see them stop."""
    try:
        rows = json.loads((state / "status.json").read_text())["collectors"]
    except (OSError, ValueError, KeyError):
        return {"(no status yet)"}
    exported = set(
        re.findall(
            r'^sentinel_collector_last_run_timestamp_seconds\{collector="([^"]+)"', agent.scrape(), re.M
        )
    )
    return {c["name"] for c in rows if c["enabled"]} - exported
