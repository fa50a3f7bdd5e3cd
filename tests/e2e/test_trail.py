"""The trail against real tools: `sqlite3` edits of hazards.db make `sentinel hazards verify`
exit 1 naming the row, and a real agent raises the critical data_security hazard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.e2e.test_agent_process import BURNING_RULE
from tests.support.agent import AgentProcess
from tests.support.people import as_login

pytestmark = pytest.mark.e2e
ALICE, BOB = 61001, 61002


def sentinel(config: Path, *args: str, login: int = ALICE) -> subprocess.CompletedProcess[str]:
    argv, env = as_login(
        login, [sys.executable, "-m", "sentinel", *args, "--config", str(config)], name=f"#{login}"
    )
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def sqlite3(binary: str, db: Path, statement: str) -> None:
    subprocess.run([binary, str(db), statement], check=True, capture_output=True, timeout=30)


def _lived_store(start_agent: Any) -> AgentProcess:
    """An agent that raised a hazard which two people then resolved and closed; stopped."""
    agent: AgentProcess = start_agent(BURNING_RULE)
    wait_until(lambda: 'rule="cpus_present"' in agent.scrape(), timeout=15)
    assert sentinel(agent.config, "hazards", "resolve", "1", "--note", "checked").returncode == 0
    assert sentinel(agent.config, "hazards", "close", "1", "--note", "verified", login=BOB).returncode == 0
    agent.stop()
    return agent


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        (
            "UPDATE history SET note = 'nothing to see' WHERE action = 'close'",
            "history): changed after it was written",
        ),
        (
            "UPDATE history SET actor = 'alice', actor_id = 'os:alice' WHERE action = 'close'",
            "history): changed",
        ),
        ("UPDATE hazards SET state = 'cancelled' WHERE id = 1", 'hazard #1: state is "cancelled"'),
    ],
)
def test_sqlite3_edits_make_verify_exit_1_naming_the_row(
    start_agent: Any, statement: str, named: str
) -> None:
    """A history note, an actor, a hazard's state: `verify` was 0, is 1, and names where."""
    binary = require_tool("sqlite3", "sqlite3")
    agent = _lived_store(start_agent)
    db = agent.config.parent / "state" / "hazards.db"
    before = sentinel(agent.config, "hazards", "verify")
    assert before.returncode == 0 and "intact" in before.stdout, before.stdout + before.stderr
    sqlite3(binary, db, statement)
    after = sentinel(agent.config, "hazards", "verify")
    assert after.returncode == 1, after.stdout + after.stderr
    first = next(line for line in after.stdout.splitlines() if line.startswith("BROKEN: "))
    assert re.search(r"\brow \d+\b", first) and named in first, after.stdout
    report = json.loads(sentinel(agent.config, "hazards", "verify", "--json").stdout)
    assert not report["ok"] and report["breaks"][0]["seq"] is not None


def test_a_real_agent_raises_the_critical_hazard_for_an_edited_trail(start_agent: Any) -> None:
    """Edited while the agent was down: at start it verifies, raises one critical data_security
    hazard naming the row, logs it once, and says so in /metrics."""
    binary = require_tool("sqlite3", "sqlite3")
    agent = _lived_store(start_agent)
    sqlite3(
        binary,
        agent.config.parent / "state" / "hazards.db",
        "UPDATE history SET note = 'x' WHERE action = 'resolve'",
    )
    again = start_agent(BURNING_RULE, directory=agent.config.parent)

    def raised() -> list[dict[str, Any]]:
        listed = json.loads(sentinel(again.config, "hazards", "list", "--json").stdout)
        return [r for r in listed if r["rule"] == "audit_trail_broken"]

    (hazard,) = wait_until(raised, timeout=30)
    assert (hazard["severity"], hazard["category"], hazard["state"]) == ("critical", "data_security", "open")
    assert (
        "changed after it was written" in hazard["title"]
        and hazard["evidence"][-1]["first_problem"] == "hash"
    )
    scrape = wait_until(
        lambda: (t := again.scrape()) and "sentinel_audit_chain_verified 0.0" in t and t, timeout=15
    )
    assert 'sentinel_audit_chain_head_info{hash="' in scrape

    def status_trail() -> dict[str, Any] | None:
        trail: dict[str, Any] = json.loads(sentinel(again.config, "status", "--json").stdout)["trail"]
        return trail if trail["verification"] is not None else None

    trail = wait_until(status_trail, timeout=30)
    assert not trail["verification"]["ok"] and "changed after" in trail["verification"]["first_break"]
    # the head `status` reads from the store is the one /metrics exports (read together until
    # no link was added in between)
    wait_until(
        lambda: f'hash="{(status_trail() or {"head": {"hash": "-"}})["head"]["hash"]}"' in again.scrape(),
        timeout=30,
    )
    log = [e for e in again.log_events() if e.get("event") == "trail_broken"]
    assert len(log) == 1 and log[0]["first_row"] is not None
