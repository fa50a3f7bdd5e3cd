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
from tests.support.people import as_login

pytestmark = pytest.mark.e2e


ALICE, BOB = 61001, 61002  # two logins (no passwd entry needed: they are os:#61001, os:#61002)


def cli(
    agent: AgentProcess, *args: str, check: bool = True, login: int = ALICE
) -> subprocess.CompletedProcess[str]:
    argv, env = as_login(
        login,
        [sys.executable, "-m", "sentinel", "hazards", *args, "--config", str(agent.config)],
        name=f"#{login}",
    )
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=check)


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
    refused = cli(agent, "close", hazard, "--by", "bob", check=False)  # alice, calling herself bob
    assert refused.returncode == 1 and "four-eyes" in refused.stderr
    cli(agent, "close", hazard, "--by", "bob", "--note", "verified on site", login=BOB)
    wait_until(lambda: 'category="stability",severity="info",state="closed"} 1.0' in agent.scrape())
    shown = json.loads(cli(agent, "show", hazard, "--json").stdout)
    assert [h["action"] for h in shown["history"]] == ["raise", "ack", "start", "resolve", "close"]
    assert shown["closed_by"] == "bob" and shown["history"][-1]["note"] == "verified on site"
    assert (shown["resolved_by_id"], shown["closed_by_id"]) == (f"os:#{ALICE}", f"os:#{BOB}")
    assert agent.proc.poll() is None
