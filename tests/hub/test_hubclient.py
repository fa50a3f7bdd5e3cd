"""The agent's hub client against a real hub process: pull, apply with the hub identity, report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.agent.hub_client import HubClient, HubError, mark
from sentinel.config.sections import HubClientConfig
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.hub.config import load
from sentinel.hub.hub import Hub
from sentinel.hub.ingest import Signed, parse_ticket
from sentinel.hub.testing import SAMPLE_INVENTORY, HubProcess, write_hub_config
from sentinel.tickets import payload
from tests.support.net import free_port

pytestmark = pytest.mark.e2e


class Setup:
    """A real hub process, a terminal's own store, and the client between them."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.config = write_hub_config(
            tmp / "hub", port=self.port, inventory=SAMPLE_INVENTORY, extra='\n[actions]\nlease = "5s"\n'
        )
        self.hub = Hub(load(self.config))
        self.hub.migrate()
        secret = self.hub.keyring.enroll("teller-01", self.hub.inventory, by="test")
        (tmp / "hub.secret").write_text(secret + "\n")
        self.process = HubProcess(self.config, self.port).wait_ready()
        self.store = HazardStore(
            tmp / "hazards.db", config=HazardsConfig(), terminal="teller-01", branch="0101"
        )
        self.client = HubClient(
            HubClientConfig(url=f"http://127.0.0.1:{self.port}", secret_file=tmp / "hub.secret"),
            self.store,
            terminal="teller-01",
        )

    def raise_hazard(self) -> int:
        """A hazard on the terminal, delivered to the hub as its raise ticket."""
        now = time.time()
        change = self.store.apply(
            Finding(
                rule="disk_full",
                subject="/var",
                state="firing",
                severity=Severity.MAJOR,
                category=Category.STABILITY,
                title="disk full",
                time=now,
                rectification=("free space",),
            )
        )
        assert change is not None
        self.sync(change.hazard_id)
        return change.hazard_id

    def sync(self, hazard_id: int) -> None:
        """Deliver the terminal's record as a ticket (what its webhook sink would do)."""
        record = self.store.get(hazard_id)
        assert record is not None
        history_id = 1000 + len(record.history)
        key = payload.idempotency_key("teller-01", hazard_id, history_id)
        doc = payload.build(
            record=record,
            transition="raised",
            key=key,
            terminal="teller-01",
            branch="0101",
            agent_version="t",
            actor="sentinel",
            at=time.time(),
            note="",
        )
        self.hub.store.apply_tickets([parse_ticket(doc, Signed("teller-01", key, int(time.time())))])

    def pk(self, hazard_id: int) -> int:
        return next(r.pk for r in self.hub.store.ledger(None).rows if r.local_id == hazard_id)

    def close(self) -> None:
        self.process.stop()
        self.store.close()
        self.hub.db.dispose()


@pytest.fixture
def setup(tmp: Path) -> Iterator[Setup]:
    s = Setup(tmp)
    yield s
    s.close()


def test_actions_apply_with_the_hub_identity_and_report(setup: Setup) -> None:
    """ack by hub:alice lands in the terminal's trail as hub:alice; the hub shows it applied."""
    hazard = setup.raise_hazard()
    queued = setup.hub.store.enqueue(setup.pk(hazard), "ack", user="alice", display="Alice", note="on it")
    result = setup.client.poll_once()
    assert (result.applied, result.refused, result.reported) == (1, 0, 1)
    trail = setup.store.get(hazard).history
    assert trail[-1].action == "ack" and trail[-1].actor == "hub:alice"
    assert mark(queued.uid) in trail[-1].note and trail[-1].note.startswith("on it")
    assert setup.hub.store.action(queued.uid).state == "applied"


def test_four_eyes_across_hub_users_is_the_terminals_refusal(setup: Setup) -> None:
    """resolve by hub:bob, then close by hub:bob (queued past the hub's own check): refused with the
    store's four-eyes reason; close by hub:carol is applied."""
    hazard = setup.raise_hazard()
    setup.hub.store.enqueue(setup.pk(hazard), "tick", user="bob", item=1)
    setup.hub.store.enqueue(setup.pk(hazard), "resolve", user="bob")
    setup.client.poll_once()
    setup.sync(hazard)  # the transitions' tickets come back (the webhook sink, in the agent)
    bad = {
        "id": "forged-1",
        "action": "close",
        "hazard": {"id": hazard},
        "note": "",
        "actor": {"source": "hub", "id": "hub:bob", "display": "Bob"},
    }
    outcome, reason, _ = setup.client.apply(bad)
    assert outcome == "refused" and "four-eyes" in reason
    setup.hub.store.enqueue(setup.pk(hazard), "close", user="carol")
    assert setup.client.poll_once().applied == 1
    record = setup.store.get(hazard)
    assert (record.state, record.resolved_by, record.closed_by) == ("closed", "hub:bob", "hub:carol")


def test_an_action_applied_but_not_reported_is_never_applied_twice(setup: Setup) -> None:
    """Applied, the answer lost (crash): offered again, found in the trail, reported applied once."""
    hazard = setup.raise_hazard()
    queued = setup.hub.store.enqueue(setup.pk(hazard), "note", user="alice", note="checked the cable")
    assert setup.client.apply(queued.to_agent())[0] == "applied"  # the poll whose result was lost
    result = setup.client.poll_once()
    assert (result.applied, result.already, result.reported) == (0, 1, 1)
    notes = [h for h in setup.store.get(hazard).history if h.action == "note"]
    assert len(notes) == 1
    assert setup.hub.store.action(queued.uid).state == "applied"


def test_refusals_carry_the_reason_and_an_offline_hub_is_retried(setup: Setup, tmp: Path) -> None:
    """A cancel without a reason is refused; with the hub down the poll fails and nothing is lost."""
    hazard = setup.raise_hazard()
    forged: dict[str, Any] = {
        "id": "forged-2",
        "action": "cancel",
        "hazard": {"id": hazard},
        "note": " ",
        "actor": {"source": "hub", "id": "hub:alice"},
    }
    assert setup.client.apply(forged)[:2] == ("refused", "cancel needs a note")
    assert setup.client.apply({**forged, "actor": {"id": "os:root"}})[0] == "refused"
    queued = setup.hub.store.enqueue(setup.pk(hazard), "start", user="alice")
    setup.process.stop()
    with pytest.raises(HubError):
        setup.client.poll_once()
    assert setup.store.get(hazard).state == "open"
    setup.process = HubProcess(setup.config, setup.port, log_name="hub2.log").wait_ready()
    assert setup.client.poll_once().applied == 1
    assert setup.store.get(hazard).state == "rectifying"
    assert setup.hub.store.action(queued.uid).state == "applied"
