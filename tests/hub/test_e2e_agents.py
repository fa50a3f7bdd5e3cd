"""End to end: three real agents (different terminals and branches) → a real hub process.

The agents' own webhook sink posts their signed tickets to the hub (the sink config is the
documented one, pointed at /ingest/v1/tickets); the hazards land under the right org units.
Actions queued in the hub (the API the pages call) are applied by each terminal with the hub
identities, and the resulting transitions come back through the agents' outboxes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.hub.db import Database
from sentinel.hub.inventory import Inventory
from sentinel.hub.store import HubActionError, HubStore
from sentinel.hub.testing import SAMPLE_INVENTORY, HubProcess, write_hub_config
from sentinel.testing import wait_until
from tests.e2e.test_agent_process import BURNING_RULE
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

AGENTS = {"teller-01": "0101", "kiosk-01": "0102", "teller-11": "0201"}


def enroll(config: Path, terminal: str, secret: Path) -> None:
    """`sentinel hub enroll TERMINAL --secret-file FILE`, the operator's way."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sentinel.hub",
            "--config",
            str(config),
            "enroll",
            terminal,
            "--secret-file",
            str(secret),
            "--by",
            "e2e",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def agent_config(directory: Path, terminal: str, branch: str, hub_url: str, secret: Path) -> tuple[Path, int]:
    """A test agent config renamed to `terminal` in `branch`, with a webhook sink to the hub."""
    directory.mkdir(parents=True)
    directory.chmod(0o700)
    port = free_port()
    sink = f"""
[[sinks]]
name = "hub"
type = "webhook"
url = "{hub_url}/ingest/v1/tickets"
secret_file = "{secret}"
timeout = "5s"
max_backoff = "2s"

[hub]
url = "{hub_url}"
secret_file = "{secret}"
poll_interval = "1s"
max_backoff = "2s"
"""
    path = write_config(directory, port=port, extra=BURNING_RULE + sink)
    text = path.read_text().replace('terminal_id = "test-terminal"', f'terminal_id = "{terminal}"')
    path.write_text(text.replace('branch = "0101-test"', f'branch = "{branch}"'))
    return path, port


def run_actions(store: HubStore, agents: list[AgentProcess], tmp: Path, hub_url: str) -> None:
    """Officer alice acknowledges and resolves in the hub, verifier bob closes; alice may not close.
    Each terminal applies them with those identities and its own store shows the same trail."""
    rows = {r.terminal: r for r in store.ledger("HO").rows}
    for row in rows.values():
        store.enqueue(row.pk, "ack", user="alice", display="Alice")
        store.enqueue(row.pk, "resolve", user="alice", display="Alice", note="fixed on site")
        with pytest.raises(HubActionError, match="four-eyes"):
            store.enqueue(row.pk, "close", user="alice")
        store.enqueue(row.pk, "close", user="bob", display="Bob", note="verified")
    # each agent's own hub client pulls, applies and reports; the transitions come back as tickets
    wait_until(lambda: {r.state for r in store.ledger("HO").rows} == {"closed"}, timeout=90)
    for terminal, row in rows.items():
        assert all(a.state == "applied" for a in store.actions(hazard_pk=row.pk))
        detail = store.hazard(row.pk)
        assert [(h.action, h.actor.id) for h in detail.history] == [
            ("raise", "agent"),
            ("ack", "hub:alice"),
            ("resolve", "hub:alice"),
            ("close", "hub:bob"),
        ]
        assert detail.row.resolved_by == "hub:alice" and detail.row.closed_by == "hub:bob"
        assert [t.transition for t in detail.tickets] == ["raised", "acknowledged", "resolved", "closed"]
        agent = next(a for a, t in zip(agents, AGENTS, strict=True) if t == terminal)
        shown = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "sentinel",
                    "hazards",
                    "show",
                    "1",
                    "--json",
                    "--config",
                    str(agent.config),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
        assert [(h["action"], h["actor_id"]) for h in shown["history"]] == [
            ("raise", "agent"),
            ("ack", "hub:alice"),
            ("resolve", "hub:alice"),
            ("close", "hub:bob"),
        ]


@pytest.fixture
def hub_process(tmp: Path) -> Iterator[tuple[HubProcess, Path]]:
    """A real hub (SQLite) with the sample inventory."""
    port = free_port()
    config = write_hub_config(tmp / "hub", port=port, inventory=SAMPLE_INVENTORY)
    subprocess.run(
        [sys.executable, "-m", "sentinel.hub", "--config", str(config), "migrate"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    hub = HubProcess(config, port).wait_ready()
    yield hub, config
    hub.stop()


def test_three_agents_land_under_their_org_units(tmp: Path, hub_process: tuple[HubProcess, Path]) -> None:
    """Each terminal's hazard appears in its branch, its primary branch and the head office; then
    alice acknowledges and resolves, bob closes, and every terminal's trail says so."""
    hub, config = hub_process
    agents: list[AgentProcess] = []
    try:
        for terminal, branch in AGENTS.items():
            secret = tmp / f"{terminal}.secret"
            enroll(config, terminal, secret)
            path, port = agent_config(tmp / terminal, terminal, branch, hub.url, secret)
            agent = AgentProcess(tmp / terminal, path, port)
            agents.append(agent)
            agent.wait_ready()
        store = HubStore(
            Database(f"sqlite:///{config.parent / 'state' / 'hub.db'}"), Inventory.from_data(SAMPLE_INVENTORY)
        )

        def landed() -> bool:
            return {r.terminal for r in store.ledger("HO").rows} == set(AGENTS)

        wait_until(landed, timeout=60)
        assert {r.terminal for r in store.ledger("east").rows} == {"teller-01", "kiosk-01"}
        assert {r.terminal for r in store.ledger("0102").rows} == {"kiosk-01"}
        assert {r.terminal for r in store.ledger("west").rows} == {"teller-11"}
        for row in store.ledger("HO").rows:
            assert row.rule == "cpus_present" and row.state == "open" and row.uid
            assert row.branch_id == AGENTS[row.terminal]
            detail = store.hazard(row.pk)
            assert [t.transition for t in detail.tickets] == ["raised"]
            assert detail.history[0].action == "raise"
            terminal = store.terminal(row.terminal)
            assert terminal.row.agent_version and terminal.last_ticket_at is not None
        run_actions(store, agents, tmp, hub.url)
        for agent in agents:
            assert "ticket_dead" not in agent.log()
        log = hub.log()
        for terminal in AGENTS:
            assert (tmp / f"{terminal}.secret").read_text().strip()[6:] not in log
    finally:
        for agent in agents:
            agent.stop()
