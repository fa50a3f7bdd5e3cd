"""The hash-chained trail: every accountable write is a link; edits, deletions and insertions
are named by row; a forger who recomputes the chain is caught by the links a central copy holds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.core.ids import SequentialIds
from sentinel.hazards import links
from sentinel.hazards.baselines import record_update
from sentinel.hazards.chain import canonical, check_ticket, link_hash
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.hub_actions import HubAction
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.records import HistoryRow
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.people import who

DAY = 86400.0


def life(store: HazardStore, clock: FakeClock) -> None:
    """Two hazards: one walked to closed by two people (one through the hub), one acknowledged."""
    store.apply(finding(clock, rectification=("free space",)))
    store.apply(finding(clock, subject="/var"))
    clock.advance(60)
    store.act(1, Action.ACK, actor=who("alice"), note="on it")
    store.tick(1, 1, actor=who("alice"), funding="¥0")
    store.act(1, Action.RESOLVE, actor=who("alice"))
    record = store.get(1)
    assert record is not None
    store.apply_hub_action(HubAction("act-9", record.uid, "close", user="zhao.min", note="verified"))
    store.act(2, Action.ACK, actor=who("bob"))


def test_every_write_is_a_link_and_tickets_carry_theirs(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path
) -> None:
    """Genesis, then one link per history row and baseline update, in order; each ticket's chain
    link checks out on its own (what the hub can verify at ingest)."""
    store = make_store(sinks_for=lambda r, t: ["hub"])
    life(store, clock)
    record_update(
        tmp_path / "hazards.db", at=clock.time(), actor=who("carol"), action="update", reason="CHG-1",
        old_digest="a" * 64, new_digest="b" * 64, entries=10, summary={"stats": {"seconds": 1.5}},
    )  # fmt: skip
    store.act(2, Action.NOTE, actor=who("bob"), note="after the baseline")
    verdict = store.verify()
    assert verdict.ok, verdict.breaks
    kinds = [link["kind"] for link in store.trail_links()]
    assert kinds == ["genesis", *["history"] * 7, "baseline", "history"]
    assert verdict.head_seq == len(kinds) and store.chain_head() == (verdict.head_seq, verdict.head_hash)
    payloads = [json.loads(r["payload"]) for r in store._db.read("SELECT payload FROM outbox ORDER BY id")]
    assert payloads and all(check_ticket(p) is None for p in payloads)
    assert payloads[-1]["baseline_digest"] is None  # the last ticket (bob's ack) came before the baseline
    closed = next(p for p in payloads if p["transition"] == "closed")
    assert closed["chain"]["row"]["actor"]["id"] == "hub:zhao.min"
    assert closed["chain"]["row"]["snapshot"]["closed_by_id"] == "hub:zhao.min"
    forged = json.loads(json.dumps(closed))
    forged["chain"]["row"]["note"] = "not what was written"
    assert check_ticket(forged) == "the chained row does not hash to the ticket's chain hash"
    history = store.get(1)
    assert history is not None and [h.seq for h in history.history] == [2, 4, 5, 6, 7]
    links_by_seq = {link["seq"]: link["hash"] for link in store.trail_links()}
    assert all(h.hash == links_by_seq[h.seq] for h in history.history if h.seq is not None)
    # what the hub reads back from a ticket keeps each row's link
    assert [HistoryRow.from_json(h.to_json()) for h in history.history] == list(history.history)


def test_the_encoding_is_pinned(tmp_path: Path) -> None:
    """Same ids, same clock, same actions: the same bytes and hashes — the encoding is a contract
    (docs/hazards.md) that receivers and auditors recompute."""
    clock = FakeClock()
    store = HazardStore(
        tmp_path / "h.db", config=HazardsConfig(), terminal="t1", branch="b", clock=clock, ids=SequentialIds()
    )
    try:
        life(store, clock)
        (raised,) = [link for link in store.trail_links() if link["seq"] == 2]
        assert canonical(raised["row"]).decode() == PINNED_ROW
        assert (raised["prev_hash"], raised["hash"]) == (PINNED_PREV, PINNED_HASH)
        assert raised["hash"] == link_hash(raised["prev_hash"], raised["row"])
        assert store.chain_head() == (8, PINNED_HEAD)
    finally:
        store.close()


PINNED_ROW = (
    '{"action":"raise","actor":{"display":"sentinel","id":"agent","source":"agent"},"at":"2027-01-15T08:00:00Z",'
    '"from":null,"hazard":"01a3185c-5000-7000-8000-000000000001","kind":"history",'
    '"note":"raised by rule disk; owner branch-it","seq":2,"snapshot":{"closed_at":null,"closed_by":null,'
    '"closed_by_id":null,"deadline":"2027-01-16T08:00:00Z","escalation_level":0,'
    '"fixed":"fd4e30834a2271d2291107a4eb1bbde8","items":"47e5103becc702e5df891e909dea0d2a","owner":"branch-it",'
    '"recurrence_count":0,"resolved_at":null,"resolved_by":null,"resolved_by_id":null,"severity":"major",'
    '"state":"open"},"store":"00000000-0000-4000-8000-000000000001","to":"open","v":1}'
)
PINNED_PREV = "4e7092044ce1dd782ad17e889c8497342e5ea68a427e0d920b73ea52c65622c4"  # the genesis link
PINNED_HASH = "61865c22e3b4f2871625a4a2461d6b1ba5a8f9395902767c925af1a0e6bf070e"
PINNED_HEAD = "9876a7677d397b78d8e39ff3a12934b2913d93859a2600e70d2e77ac4228bf1d"


def _sql(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("edit", "code", "named"),
    [
        ("UPDATE history SET note = 'nothing happened' WHERE id = 3", "hash", "row 4 (hazard #1, history)"),
        ("UPDATE history SET actor = 'bob' WHERE id = 3", "hash", "row 4 (hazard #1, history)"),
        ("UPDATE history SET actor_id = 'os:bob' WHERE id = 3", "hash", "row 4 (hazard #1, history)"),
        ("UPDATE history SET to_state = 'resolved' WHERE id = 1", "hash", "row 2 (hazard #1, history)"),
        ("UPDATE hazards SET state = 'open' WHERE id = 1", "state", 'hazard #1: state is "open"'),
        ("UPDATE hazards SET owner = 'nobody' WHERE id = 2", "state", 'hazard #2: owner is "nobody"'),
        (
            "UPDATE rectification SET done_by_id = 'os:carol' WHERE hazard_id = 1",
            "state",
            "hazard #1: its checklist",
        ),
        ("UPDATE hazards SET subject = '/tmp' WHERE id = 2", "state", "hazard #2: what it is (uid, rule"),
        ("DELETE FROM history WHERE id = 5", "missing", "row 6 (history): its record was deleted"),
        ("DELETE FROM hazards WHERE id = 2", "missing", "its record was deleted"),
        (
            "INSERT INTO history (hazard_id, at, actor, action, note) VALUES (1, 1, 'x', 'note', 'forged')",
            "unchained",
            "is not in the chain",
        ),
        ("UPDATE chain SET hash = 'ab' || substr(hash, 3) WHERE seq = 3", "hash", "row 3"),
        ("DELETE FROM chain WHERE seq = 5", "gap", "rows 5 to 5 are missing"),
    ],
)
def test_edits_made_with_sqlite_are_named(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path, edit: str, code: str, named: str
) -> None:
    """Each edit of the store behind Sentinel's back is a break, the first naming the row."""
    store = make_store()
    life(store, clock)
    store.close()
    _sql(tmp_path / "hazards.db", edit)
    store = make_store()
    verdict = store.verify()
    assert not verdict.ok
    messages = [b.message for b in verdict.breaks if b.code == code]
    assert any(named in m for m in messages), verdict.to_json()


def test_pruning_keeps_the_trail_verifiable(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path
) -> None:
    """Closed hazards leave after the retention; their links stay and one prune link names them."""
    store = make_store(HazardsConfig(retention=DAY))  # type: ignore[arg-type]
    life(store, clock)
    clock.advance(2 * DAY)
    assert store.prune(tmp_path / "archive") == 1
    verdict = store.verify()
    assert verdict.ok, verdict.breaks
    assert verdict.pruned == 5
    prune = store.trail_links()[-1]
    assert prune["kind"] == "prune" and prune["row"]["rows"] == 5 and len(prune["row"]["hazards"]) == 1
    archived = json.loads((tmp_path / "archive" / "hazards-2027.jsonl").read_text().splitlines()[0])
    assert [h["seq"] for h in archived["history"]] == [2, 4, 5, 6, 7]


def _forge(path: Path, edit: str) -> None:
    """What root with Sentinel's own code can do: edit, then recompute every hash from there."""
    _sql(path, edit)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    prev = links.GENESIS_PREV
    for link in list(links.export(conn)):
        digest = link_hash(prev, link["row"])
        conn.execute("UPDATE chain SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, link["seq"]))
        prev = digest
    conn.close()


def test_a_recomputed_chain_passes_alone_and_fails_against_the_central_copy(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path
) -> None:
    """A forger who rewrites a note and recomputes the chain fools `verify` on the terminal, but not
    `verify` with the links the hub got in tickets: the first rewritten row is named."""
    store = make_store(sinks_for=lambda r, t: ["hub"])
    life(store, clock)
    central: dict[int, str] = {
        p["chain"]["seq"]: p["chain"]["hash"]
        for p in (json.loads(r["payload"]) for r in store._db.read("SELECT payload FROM outbox"))
    }
    store.close()
    _forge(tmp_path / "hazards.db", "UPDATE history SET note = 'closed without looking' WHERE id = 6")
    store = make_store()
    assert store.verify().ok  # locally consistent: no secret on the terminal stops this
    verdict = store.verify(central)
    assert not verdict.ok
    first = verdict.first
    assert first is not None and first.code == "expected" and first.seq == 7, verdict.to_json()
    store.close()
    conn = sqlite3.connect(tmp_path / "hazards.db")
    conn.execute("DELETE FROM chain WHERE seq >= 7")  # cutting the tail instead
    conn.commit()
    conn.close()
    store = make_store()
    assert any(b.code == "cut" for b in store.verify(central).breaks)


def test_a_damaged_json_column_is_a_break_not_a_crash(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path
) -> None:
    """actor_info or snapshot that no longer parses: the row is broken, verification goes on."""
    store = make_store()
    life(store, clock)
    store.close()
    _sql(tmp_path / "hazards.db", "UPDATE history SET actor_info = '{oops' WHERE id = 2")
    verdict = make_store().verify()
    assert [b.seq for b in verdict.breaks if b.code == "hash"] == [3]
