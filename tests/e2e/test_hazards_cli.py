"""The real agent and the real CLI, two processes on one store."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess
from tests.e2e.test_agent_process import BURNING_RULE

pytestmark = pytest.mark.e2e


def cli(agent: AgentProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", *args, "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_cli_transitions_while_the_agent_runs(start_agent: Any) -> None:
    """The CLI walks a hazard through its life while the agent writes; the agent's /metrics follows."""
    agent: AgentProcess = start_agent(BURNING_RULE)
    wait_until(lambda: 'rule="cpus_present"' in agent.scrape(), timeout=15)
    (record,) = json.loads(cli(agent, "list", "--json").stdout)
    hazard = str(record["id"])
    cli(agent, "ack", hazard, "--by", "alice", "--note", "on it")
    wait_until(lambda: 'state="acknowledged"} 1.0' in agent.scrape())
    cli(agent, "start", hazard, "--by", "alice")
    cli(agent, "resolve", hazard, "--by", "alice")
    refused = cli(agent, "close", hazard, "--by", "alice", check=False)
    assert refused.returncode == 1 and "four-eyes" in refused.stderr
    cli(agent, "close", hazard, "--by", "bob", "--note", "verified on site")
    wait_until(lambda: 'category="stability",severity="info",state="closed"} 1.0' in agent.scrape())
    shown = json.loads(cli(agent, "show", hazard, "--json").stdout)
    assert [h["action"] for h in shown["history"]] == ["raise", "ack", "start", "resolve", "close"]
    assert shown["closed_by"] == "bob" and shown["history"][-1]["note"] == "verified on site"
    assert agent.proc.poll() is None
