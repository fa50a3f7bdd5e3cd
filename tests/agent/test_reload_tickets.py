"""`systemctl reload sentinel` (SIGHUP) applies routes and sinks, as docs/fleet.md promises: a real
agent process moves to the new sinks and owners, and the tickets still waiting for a sink that was
removed are dead-lettered, logged and kept for `sentinel tickets retry`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentinel.testing import wait_until
from tests.support.agent import AgentProcess, wait_for_log, write_config
from tests.support.net import free_port

RULE = """
[[rules]]
name = "{name}"
category = "stability"
metric = "sentinel_cpus"
threshold = 1
op = ">="
severity = "info"
"""


def sink_file(name: str, path: str) -> str:
    return f'\n[[sinks]]\nname = "{name}"\ntype = "file"\npath = "{path}"\n'


def tickets(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines(keepends=True) if x.endswith("\n")]


def cli(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args, "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_reload_applies_new_sinks_and_routes_and_retires_a_removed_sinks_tickets(
    start_agent: Callable[..., AgentProcess], tmp: Path
) -> None:
    """Before: sinks `spool` and `down` (a receiver that never answers). SIGHUP with `spool2` and a
    route instead: `down`'s waiting ticket is dead-lettered (logged, listed), later transitions go
    to `spool2` only, and a hazard raised after the reload has the route's owner."""
    (tmp / "hook.secret").write_text("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0\n")
    down = (
        f'\n[[sinks]]\nname = "down"\ntype = "webhook"\nurl = "http://127.0.0.1:{free_port()}/hook"\n'
        'secret_file = "hook.secret"\ntimeout = "1s"\nmax_backoff = "60s"\n'
    )
    before = RULE.format(name="cpus_present") + sink_file("spool", "spool/a.jsonl") + down
    agent = start_agent(before)
    first, second = tmp / "spool" / "a.jsonl", tmp / "spool" / "b.jsonl"
    wait_until(lambda: [t["transition"] for t in tickets(first)] == ["raised"], timeout=30)
    pending = json.loads(cli(agent, "tickets", "list", "--pending", "--json").stdout)
    assert [r["sink"] for r in pending] == ["down"]

    route = '\n[[hazards.routes]]\nowner = "ops-team"\ncategories = ["stability"]\n'
    after = (
        RULE.format(name="cpus_present")
        + RULE.format(name="cpus_again")
        + sink_file("spool2", "spool/b.jsonl")
    )
    write_config(tmp, port=agent.port, extra=route + after)
    agent.signal(signal.SIGHUP)
    wait_for_log(agent, "config_reloaded", timeout=30)
    assert not [e for e in agent.log_events() if e.get("event") == "reload_rejected"]
    retired = wait_for_log(agent, "tickets_retired", sink="down")
    assert retired["count"] == 1
    dead = json.loads(cli(agent, "tickets", "list", "--dead", "--json").stdout)
    assert [(r["sink"], r["id"]) for r in dead] == [("down", pending[0]["id"])]
    assert "no longer in the config" in dead[0]["last_error"]

    ack = cli(agent, "hazards", "ack", "1", "--by", "tester")
    assert ack.returncode == 0, ack.stderr
    wait_until(lambda: len(tickets(second)) >= 2, timeout=30)
    by_transition = {(t["transition"], t["hazard"]["rule"]): t for t in tickets(second)}
    assert ("acknowledged", "cpus_present") in by_transition
    assert by_transition[("raised", "cpus_again")]["hazard"]["owner"] == "ops-team"
    assert [t["transition"] for t in tickets(first)] == ["raised"]  # the old sink got nothing more

    # the file sink appends before the dispatcher marks the row delivered: wait for that mark
    pending_zero = re.compile(r'^sentinel_tickets_pending\{sink="spool2"\} 0\.0$', re.MULTILINE)

    def drained() -> str:
        text = agent.scrape()
        return text if pending_zero.search(text) else ""

    text = wait_until(drained, timeout=30)
    assert 'sink="down"' not in text and 'sink="spool"' not in text
    assert "sentinel_config_last_reload_successful 1.0" in text
    assert agent.stop() == 0
