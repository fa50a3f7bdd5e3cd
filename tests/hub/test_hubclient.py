"""The agent's hub client against a real hub process: pull, apply with the hub identity, report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.agent.hub_client import HubError
from sentinel.hub.testing import HubProcess
from tests.support.hubclient import Setup

pytestmark = pytest.mark.e2e


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
    assert trail[-1].action == "ack" and trail[-1].identity is not None
    assert trail[-1].identity.id == "hub:alice" and trail[-1].actor == "Alice" and trail[-1].note == "on it"
    assert trail[-1].identity.extra["action_id"] == queued.uid
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
        "hazard": {"id": hazard, "uid": setup.store.get(hazard).uid},
        "note": "",
        "actor": {"source": "hub", "id": "hub:bob", "display": "Bob"},
    }
    outcome, reason, _ = setup.client.apply(bad)
    assert outcome == "refused" and "four-eyes" in reason
    setup.hub.store.enqueue(setup.pk(hazard), "close", user="carol")
    assert setup.client.poll_once().applied == 1
    record = setup.store.get(hazard)
    assert (record.state, record.resolved_by_id, record.closed_by_id) == ("closed", "hub:bob", "hub:carol")


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
        "hazard": {"id": hazard, "uid": setup.store.get(hazard).uid},
        "note": " ",
        "actor": {"source": "hub", "id": "hub:alice"},
    }
    outcome, reason, _ = setup.client.apply(forged)
    assert outcome == "refused" and "reason" in reason
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
