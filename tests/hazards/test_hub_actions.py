"""Actions a hub user made, applied by the store once each, under the same rules as the CLI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.hub_actions import HubAction
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.roles import RoleConfig
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.people import who


def _uid(store: HazardStore, hazard_id: int = 1) -> str:
    record = store.get(hazard_id)
    assert record is not None
    return record.uid


def test_a_hub_action_is_applied_once_as_the_hub_user(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """ack by hub:zhao.min: one audit row with the hub identity and action id, one ticket; the
    same action_id again returns the same result and writes nothing."""
    store = make_store(sinks_for=lambda r, t: ["hub"])
    store.apply(finding(clock))
    uid = _uid(store)
    request = HubAction(
        action_id="act-1", hazard_uid=uid, action="ack", user="zhao.min", note="seen", proof="v1,x"
    )
    first = store.apply_hub_action(request)
    again = store.apply_hub_action(request)
    assert (first.outcome, first.state, first.repeated) == ("done", "acknowledged", False)
    assert again == dataclasses.replace(first, repeated=True)
    record = store.get(uid)
    assert record is not None
    assert [h.action for h in record.history] == ["raise", "ack"]
    identity = record.history[-1].identity
    assert identity is not None and identity.to_json() == {
        "source": "hub",
        "id": "hub:zhao.min",
        "display": "zhao.min",
        "action_id": "act-1",
        "proof": "v1,x",
    }
    payloads = [json.loads(r["payload"]) for r in store._db.read("SELECT payload FROM outbox ORDER BY id")]
    assert [p["transition"] for p in payloads] == ["raised", "acknowledged"]
    assert payloads[-1]["transition_actor"]["id"] == "hub:zhao.min"


def test_refusals_are_results_kept_for_the_same_action_id(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """Four-eyes, roles and the lifecycle refuse hub actions as they do CLI ones; a refusal is
    returned (not raised), recorded, and returned again on a repeat — even if it would pass now."""
    roles = (RoleConfig(name="no-hub-cancel", actions=("cancel",), allow=("os:*",)),)
    store = make_store(HazardsConfig(roles=roles))
    store.apply(finding(clock, rectification=()))
    uid = _uid(store)
    store.act(uid, Action.RESOLVE, actor=who("alice"))
    close = store.apply_hub_action(HubAction("act-2", uid, "close", user="alice"))
    assert close.outcome == "refused" and "four-eyes" in close.message
    cancel = store.apply_hub_action(HubAction("act-3", uid, "cancel", user="bob", note="false alarm"))
    assert cancel.outcome == "refused" and 'role "no-hub-cancel"' in cancel.message
    missing = store.apply_hub_action(
        HubAction("act-4", "01a3185c-0000-7000-8000-000000000000", "ack", user="bob")
    )
    assert missing.outcome == "refused" and "no hazard with uid" in missing.message
    done = store.apply_hub_action(HubAction("act-5", uid, "close", user="bob", display="Bob Li"))
    assert (done.outcome, done.state) == ("done", "closed")
    assert store.apply_hub_action(HubAction("act-2", uid, "close", user="alice")).message == close.message
    record = store.get(uid)
    assert record is not None and (record.closed_by, record.closed_by_id) == ("Bob Li", "hub:bob")


def test_hub_check_assign_and_bad_requests(store: HazardStore, clock: FakeClock) -> None:
    """check ticks an item (with funding), assign moves the owner; malformed requests raise."""
    store.apply(finding(clock))
    uid = _uid(store)
    assert (
        store.apply_hub_action(HubAction("a1", uid, "check", user="li", item=1, funding="¥200")).outcome
        == "done"
    )
    assert (
        store.apply_hub_action(HubAction("a2", uid, "assign", user="li", owner="hw-team")).outcome == "done"
    )
    assert "item number" in store.apply_hub_action(HubAction("a3", uid, "check", user="li")).message
    record = store.get(uid)
    assert record is not None and record.owner == "hw-team"
    item = record.rectification[0]
    assert (item.done_by_id, item.funding) == ("hub:li", "¥200")
    with pytest.raises(ValueError, match="unknown hub action"):
        store.apply_hub_action(HubAction("a4", uid, "escalate", user="li"))
    with pytest.raises(ValueError, match="action_id"):
        store.apply_hub_action(HubAction(" ", uid, "ack", user="li"))
    with pytest.raises(ValueError, match="hub user"):
        store.apply_hub_action(HubAction("a5", uid, "ack", user=""))
