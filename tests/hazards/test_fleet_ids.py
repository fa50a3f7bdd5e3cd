"""Ids unique across the fleet: two stores with the same terminal name (a re-imaged terminal)
share no hazard uid, no idempotency key and no Alertmanager alert."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sentinel import __version__
from sentinel.core.ids import uuid7, uuid7_time
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from sentinel.tickets.sinks.alertmanager import alert
from sentinel.tickets.ticketing import Ticketing
from tests.hazards.conftest import finding
from tests.support.people import who

TERMINAL = "teller-07"


def fingerprint(labels: dict[str, str]) -> int:
    """Alertmanager's alert identity (prometheus/common model.LabelSet.Fingerprint: FNV-1a 64 over
    the sorted label names and values, each followed by the 0xff separator)."""
    value = 14695981039346656037
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value


def same_history(path: Path, *, now: float = 1_800_000_000.0) -> list[dict[str, Any]]:
    """One terminal's life from a fresh store: two hazards, a full lifecycle; every payload."""
    clock = FakeClock(start_wall=now)
    ticketing = Ticketing(
        terminal=TERMINAL, branch="0101", agent_version=__version__, sinks_for=lambda r, t: ["am"]
    )
    store = HazardStore(
        path, config=HazardsConfig(), terminal=TERMINAL, branch="0101", clock=clock, ticketer=ticketing
    )
    try:
        store.apply(finding(clock, rectification=()))
        store.apply(finding(clock, subject="/var"))
        store.act(1, Action.ACK, actor=who("alice"))
        store.act(1, Action.RESOLVE, actor=who("alice"))
        store.act(1, Action.CLOSE, actor=who("bob"))
        rows = store._db.read("SELECT payload FROM outbox ORDER BY id")
        return [json.loads(r["payload"]) | {"_store_id": store.store_id} for r in rows]
    finally:
        store.close()


def test_two_stores_of_one_terminal_name_share_no_key_uid_or_alert(tmp: Path) -> None:
    """Same terminal, same hazards, same local ids and row numbers: disjoint uids, keys and
    Alertmanager fingerprints (without the uid label the alerts would be the same ones)."""
    first, second = same_history(tmp / "before" / "hazards.db"), same_history(tmp / "after" / "hazards.db")
    assert [p["hazard"]["id"] for p in first] == [p["hazard"]["id"] for p in second]  # what collided before
    assert first[0]["_store_id"] != second[0]["_store_id"]
    assert first[0]["store_id"] == first[0]["_store_id"]
    uids = [{p["hazard"]["uid"] for p in run} for run in (first, second)]
    keys = [{p["idempotency_key"] for p in run} for run in (first, second)]
    alerts = [{fingerprint(alert(p, now=0)["labels"]) for p in run} for run in (first, second)]
    assert len(uids[0]) == 2 and not uids[0] & uids[1]
    assert len(keys[0]) == len(first) and not keys[0] & keys[1]
    assert len(alerts[0]) == 2 and not alerts[0] & alerts[1]
    links = [{(p["chain"]["seq"], p["chain"]["hash"]) for p in run} for run in (first, second)]
    assert {seq for seq, _ in links[0]} == {seq for seq, _ in links[1]}  # same places in the trail
    assert len(links[0]) == len(first) and not links[0] & links[1]  # the store id is in every row
    without_uid = [
        {fingerprint({k: v for k, v in alert(p, now=0)["labels"].items() if k != "hazard_uid"}) for p in run}
        for run in (first, second)
    ]
    assert without_uid[0] == without_uid[1]


def test_hazard_uids_are_uuidv7_of_their_first_sighting() -> None:
    """Version 7, RFC variant, the first_seen millisecond in front; distinct for one instant."""
    values = {str(uuid7(1_800_000_000.123)) for _ in range(1000)}
    assert len(values) == 1000
    one = uuid.UUID(next(iter(values)))
    assert (one.version, one.variant) == (7, uuid.RFC_4122)
    assert uuid7_time(str(one)) == 1_800_000_000.123
