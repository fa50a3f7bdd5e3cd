"""The file sink inside the real agent process: the rule raises, the CLI acknowledges from another
process, and both tickets land in the JSON-lines file exactly once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentinel.testing import wait_until
from sentinel.tickets.outbox import Outbox
from tests.support.agent import AgentProcess

# one rule the machine always crosses (every machine has a CPU), and a file sink
EXTRA = """
[[rules]]
name = "cpus_present"
category = "stability"
metric = "sentinel_cpus"
threshold = 1
op = ">="
severity = "info"

[[sinks]]
name = "spool"
type = "file"
path = "spool/tickets.jsonl"
"""


def tickets(path: Path) -> list[dict[str, Any]]:
    """The complete lines of the ticket file so far."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def transitions(path: Path) -> list[str]:
    return [t["transition"] for t in tickets(path)]


def ack(agent: AgentProcess) -> None:
    """Acknowledge hazard 1 from the command line (another process writes the outbox row)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sentinel",
            "hazards",
            "ack",
            "1",
            "--by",
            "tester",
            "--config",
            str(agent.config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def metric(agent: AgentProcess, name: str, **labels: str) -> float | None:
    """One sample of a live scrape, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{wanted}\}} (\S+)$", agent.scrape(), re.MULTILINE)
    return float(match.group(1)) if match else None


def test_agent_appends_every_transition_to_the_file_sink(
    start_agent: Callable[..., AgentProcess], tmp: Path
) -> None:
    """raised (agent) then acknowledged (CLI) arrive in order, 0600, with the outbox's keys; metrics agree."""
    agent = start_agent(EXTRA)
    path = tmp / "spool" / "tickets.jsonl"
    wait_until(lambda: transitions(path) == ["raised"], timeout=20)
    ack(agent)
    wait_until(lambda: transitions(path) == ["raised", "acknowledged"], timeout=20)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = tickets(path)
    assert all(t["schema"] == "sentinel.ticket/1" and t["hazard"]["id"] == 1 for t in lines)
    assert {(t["terminal"], t["branch"]) for t in lines} == {("test-terminal", "0101-test")}
    outbox = Outbox(tmp / "state" / "hazards.db")
    try:  # the dispatcher marks a row delivered just after the line is in the file
        delivered = wait_until(
            lambda: len(rows := [r for r in reversed(outbox.listing()) if r["delivered_at"]]) == 2 and rows
        )
    finally:
        outbox.close()
    assert [r["idempotency_key"] for r in delivered] == [t["idempotency_key"] for t in lines]
    wait_until(
        lambda: metric(agent, "sentinel_ticket_deliveries_total", sink="spool", outcome="delivered") == 2
    )
    assert metric(agent, "sentinel_tickets_pending", sink="spool") == 0
    assert metric(agent, "sentinel_tickets_dead", sink="spool") == 0


def test_agent_restart_does_not_write_delivered_tickets_again(
    start_agent: Callable[..., AgentProcess], tmp: Path
) -> None:
    """After a restart only the new transition is appended: a delivered ticket is never re-sent."""
    path = tmp / "spool" / "tickets.jsonl"
    first = start_agent(EXTRA)
    wait_until(lambda: transitions(path) == ["raised"], timeout=20)
    assert first.stop() == 0
    second = start_agent(EXTRA)
    ack(second)  # delivered in order after hazard 1's earlier rows, so a re-sent "raised" would show
    wait_until(lambda: "acknowledged" in transitions(path), timeout=20)
    assert transitions(path) == ["raised", "acknowledged"]
