"""The hazard store on a real SQLite file: dedup, lifecycle, audit, deadlines, escalation."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.core.model import Category, Severity
from sentinel.core.settings import Duration
from sentinel.hazards.changes import HazardError
from sentinel.hazards.config import HazardsConfig, RouteConfig
from sentinel.hazards.findings import LONG_TERM_ITEM
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.records import HazardRecord
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.records import as_json

HOUR = 3600.0


def test_one_root_cause_is_one_record(store: HazardStore, clock: FakeClock) -> None:
    """Repeated findings for one fingerprint update occurrences, last_seen and bounded evidence."""
    first = store.apply(finding(clock, used=0.91))
    assert first is not None and first.created
    for i in range(30):
        clock.advance(60)
        store.apply(finding(clock, used=0.91 + i / 1000))
    (record,) = as_json(store.records(full=True))
    assert record["occurrences"] == 31
    assert len(record["evidence"]) == HazardsConfig().evidence_keep
    assert record["evidence"][-1]["used"] == pytest.approx(0.91 + 29 / 1000)
    assert record["last_seen"] > record["first_seen"]


def test_record_has_every_contract_key(store: HazardStore, clock: FakeClock) -> None:
    """The JSON record carries the keys DESIGN §3 promises."""
    store.apply(finding(clock))
    record = as_json(store.get(1))
    assert record is not None
    for key in (
        "id",
        "fingerprint",
        "rule",
        "category",
        "severity",
        "state",
        "title",
        "subject",
        "evidence",
        "first_seen",
        "last_seen",
        "occurrences",
        "owner",
        "deadline",
        "overdue",
        "escalation_level",
        "recurrence_count",
        "drill",
        "rectification",
        "history",
    ):
        assert key in record
    assert record["state"] == "open" and record["owner"] == "branch-it"
    assert [i["text"] for i in record["rectification"]] == ["free space on /", "check log rotation"]
    assert record["history"][0]["action"] == "raise"


def test_cleared_condition_auto_resolves_only_when_the_rule_allows(
    store: HazardStore, clock: FakeClock
) -> None:
    """Health thresholds auto-resolve; a tampered-file rule does not."""
    store.apply(finding(clock, rule="disk"))
    store.apply(finding(clock, rule="tamper", subject="/etc/passwd", auto_resolve=False))
    clock.advance(60)
    store.apply(finding(clock, rule="disk", state="cleared"))
    store.apply(finding(clock, rule="tamper", subject="/etc/passwd", state="cleared", auto_resolve=False))
    states = {r["rule"]: r for r in as_json(store.records())}
    assert states["disk"]["state"] == "resolved" and states["disk"]["resolved_by"] == "sentinel"
    assert states["tamper"]["state"] == "open" and not states["tamper"]["condition_active"]


def test_recurrence_before_close_reopens_the_same_record(store: HazardStore, clock: FakeClock) -> None:
    """resolved -> open when the condition returns, with recurrence_count counted."""
    store.apply(finding(clock))
    store.apply(finding(clock, state="cleared"))
    clock.advance(HOUR)
    change = store.apply(finding(clock))
    assert change is not None and change.action is Action.RECUR
    (record,) = as_json(store.records())
    assert record["state"] == "open" and record["recurrence_count"] == 1


def test_recurrence_after_close_opens_a_linked_record(store: HazardStore, clock: FakeClock) -> None:
    """A new record references the closed one."""
    store.apply(finding(clock, rectification=()))
    store.act(1, Action.RESOLVE, by="alice")
    store.act(1, Action.CLOSE, by="bob")
    clock.advance(HOUR)
    store.apply(finding(clock))
    new = as_json(store.get(2))
    assert new is not None and new["related"] == [1] and new["recurrence_count"] == 1


def test_third_episode_in_30_days_requires_a_long_term_mechanism(
    store: HazardStore, clock: FakeClock
) -> None:
    """Three episodes of one fingerprint flag it recurring, with a long-term item to tick."""
    for episode in range(3):
        store.apply(finding(clock, rectification=()))
        hazard_id = as_json(store.records())[0]["id"]
        if episode < 2:
            store.act(hazard_id, Action.RESOLVE, by="alice")
            store.act(hazard_id, Action.CLOSE, by="bob")
        clock.advance(86400)
    record = as_json(store.records())[0]
    assert [i["kind"] for i in record["rectification"]] == ["long_term"]
    assert record["rectification"][0]["text"] == LONG_TERM_ITEM
    store.act(record["id"], Action.RESOLVE, by="alice")
    with pytest.raises(HazardError, match="rectification items not done"):
        store.act(record["id"], Action.CLOSE, by="bob")
    store.tick(record["id"], 1, by="carol", note="monitoring added")
    store.act(record["id"], Action.CLOSE, by="bob")


def test_four_eyes_rule(store: HazardStore, clock: FakeClock) -> None:
    """The person who resolved a hazard cannot close it."""
    store.apply(finding(clock, rectification=()))
    store.act(1, Action.RESOLVE, by="alice")
    with pytest.raises(HazardError, match="four-eyes"):
        store.act(1, Action.CLOSE, by="alice")
    store.act(1, Action.CLOSE, by="bob")
    record = as_json(store.get(1))
    assert record is not None and record["closed_by"] == "bob" and record["state"] == "closed"


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ([], Action.CLOSE, "cannot close a hazard that is open"),
        ([Action.ACK], Action.ACK, "cannot ack a hazard that is acknowledged"),
        ([Action.RESOLVE], Action.START, "cannot start a hazard that is resolved"),
        ([Action.CANCEL], Action.REOPEN, "cannot reopen a hazard that is cancelled"),
    ],
)
def test_illegal_transitions_are_refused_clearly(
    store: HazardStore, clock: FakeClock, setup: list[Action], action: Action, message: str
) -> None:
    """The message names the action, the state and what is allowed."""
    store.apply(finding(clock))
    for step in setup:
        store.act(1, step, by="alice", note="false alarm")
    with pytest.raises(HazardError, match=message):
        store.act(1, action, by="bob", note="x")


def test_cancel_needs_a_reason_and_by_is_required(store: HazardStore, clock: FakeClock) -> None:
    """cancel without --note, or any action without --by, is refused."""
    store.apply(finding(clock))
    with pytest.raises(HazardError, match="needs a reason"):
        store.act(1, Action.CANCEL, by="alice")
    with pytest.raises(HazardError, match="--by"):
        store.act(1, Action.ACK, by=" ")
    store.act(1, Action.CANCEL, by="alice", note="test machine, expected")
    assert as_json(store.get(1))["state"] == "cancelled"  # type: ignore[index]


def test_audit_trail_records_who_when_and_what(store: HazardStore, clock: FakeClock) -> None:
    """Every action is a history row with actor, from, to and note."""
    store.apply(finding(clock))
    store.act(1, Action.ACK, by="alice", note="looking")
    store.act(1, Action.ASSIGN, by="alice", owner="storage-team", note="theirs")
    store.act(1, Action.NOTE, by="bob", note="called vendor")
    store.tick(1, 2, by="bob")
    history = as_json(store.get(1))["history"]  # type: ignore[index]
    assert [(h["actor"], h["action"], h["from"], h["to"]) for h in history] == [
        ("sentinel", "raise", None, "open"),
        ("alice", "ack", "open", "acknowledged"),
        ("alice", "assign", None, None),
        ("bob", "note", None, None),
        ("bob", "check", None, None),
    ]
    assert "branch-it -> storage-team: theirs" in history[2]["note"]
    assert as_json(store.get(1))["owner"] == "storage-team"  # type: ignore[index]


def test_routes_and_sla_set_owner_and_deadline(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """First matching route wins; deadline = now + the severity's SLA; info has none."""
    config = HazardsConfig(
        routes=(
            RouteConfig(owner="soc", categories=(Category.CYBER_ATTACK,)),
            RouteConfig(owner="hw-team", severities=(Severity.CRITICAL,)),
        )
    )
    store = make_store(config)
    store.apply(finding(clock, rule="brute", category=Category.CYBER_ATTACK, severity=Severity.CRITICAL))
    store.apply(finding(clock, rule="disk", severity=Severity.CRITICAL))
    store.apply(finding(clock, rule="note", severity=Severity.INFO))
    by_rule = {r["rule"]: r for r in as_json(store.records())}
    assert by_rule["brute"]["owner"] == "soc"
    assert by_rule["disk"]["owner"] == "hw-team"
    assert by_rule["note"]["deadline"] is None
    row = store._db.read("SELECT deadline, first_seen FROM hazards WHERE rule = 'disk'")[0]
    assert row["deadline"] - row["first_seen"] == 4 * HOUR


def test_escalation_climbs_every_level_of_the_chain(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """Overdue by one SLA more each time: one level up each time, up to head office, no further."""
    chain = ("terminal", "branch", "primary_branch", "head_office")
    store = make_store(HazardsConfig(escalation_chain=chain))
    store.apply(finding(clock, severity=Severity.CRITICAL))  # 4 h deadline
    clock.advance(4 * HOUR - 1)
    assert store.check_deadlines() == []
    assert not as_json(store.get(1))["overdue"]  # type: ignore[index]
    levels = []
    for _ in range(5):
        clock.advance(4 * HOUR)
        store.check_deadlines()
        levels.append(as_json(store.get(1))["escalation_level"])  # type: ignore[index]
    assert levels == [1, 2, 3, 3, 3]
    record = as_json(store.get(1))
    assert record is not None and record["overdue"] and record["escalated_to"] == "head_office"
    notes = [h["note"] for h in record["history"] if h["action"] == "escalate"]
    assert len(notes) == 3 and "level 3 (head_office)" in notes[-1]
    assert store.overdue_counts() == {"critical": 1}


def test_no_escalation_once_resolved(make_store: Callable[..., HazardStore], clock: FakeClock) -> None:
    """A resolved hazard is not overdue any more."""
    store = make_store(HazardsConfig(escalation_interval=Duration(HOUR)))
    store.apply(finding(clock, severity=Severity.CRITICAL))
    store.act(1, Action.RESOLVE, by="alice")
    clock.advance(10 * HOUR)
    assert store.check_deadlines() == []
    assert not as_json(store.get(1))["overdue"]  # type: ignore[index]


def test_severity_escalation_tightens_the_deadline(store: HazardStore, clock: FakeClock) -> None:
    """major (24 h) becoming critical (4 h) moves the deadline closer."""
    store.apply(finding(clock, severity=Severity.MAJOR))
    clock.advance(HOUR)
    store.apply(finding(clock, severity=Severity.CRITICAL))
    row = store._db.read("SELECT deadline, first_seen, severity FROM hazards")[0]
    assert row["severity"] == "critical"
    assert row["deadline"] - row["first_seen"] == pytest.approx(5 * HOUR)


def test_outbox_rows_are_written_with_the_transition(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """Each ticketed transition has one outbox row per selected sink, with a stable key."""
    calls: list[tuple[str, str]] = []

    def sinks_for(record: HazardRecord, transition: str) -> list[str]:
        calls.append((record.state.value, transition))
        return ["hook", "am"]

    store = make_store(sinks_for=sinks_for)
    store.apply(finding(clock))
    store.act(1, Action.ACK, by="alice")
    store.act(1, Action.NOTE, by="alice", note="no ticket for a note")
    rows = store._db.read("SELECT sink, transition, idempotency_key FROM outbox ORDER BY id")
    assert [(r["sink"], r["transition"]) for r in rows] == [
        ("hook", "raised"),
        ("am", "raised"),
        ("hook", "acknowledged"),
        ("am", "acknowledged"),
    ]
    assert rows[0]["idempotency_key"] == rows[1]["idempotency_key"] != rows[2]["idempotency_key"]
    assert calls == [("open", "raised"), ("acknowledged", "acknowledged")]


def test_a_failed_transaction_leaves_no_half_state(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """If writing the outbox row fails, the state change is rolled back too."""

    def broken(_record: HazardRecord, _transition: str) -> list[str]:
        raise sqlite3.OperationalError("disk I/O error")

    store = make_store(sinks_for=broken)
    with pytest.raises(sqlite3.OperationalError):
        store.apply(finding(clock))
    assert as_json(store.records()) == []
    assert store._db.read("SELECT COUNT(*) FROM history")[0][0] == 0


def test_prune_removes_only_old_closed_records(
    make_store: Callable[..., HazardStore], clock: FakeClock, tmp_path: Path
) -> None:
    """Retention never touches live hazards."""
    store = make_store(HazardsConfig(retention=Duration(86400)))
    store.apply(finding(clock, subject="a", rectification=()))
    store.apply(finding(clock, subject="b"))
    store.act(1, Action.RESOLVE, by="alice")
    store.act(1, Action.CLOSE, by="bob")
    clock.advance(2 * 86400)
    assert store.prune(archive_dir=tmp_path / "archive") == 1
    assert [r["subject"] for r in as_json(store.records())] == ["b"]
    (archive,) = (tmp_path / "archive").iterdir()
    (line,) = archive.read_text().splitlines()
    archived = json.loads(line)
    assert archived["subject"] == "a" and archived["closed_by"] == "bob" and archived["history"]
    assert archive.stat().st_mode & 0o777 == 0o600


def test_two_connections_see_each_others_writes(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """The agent's and the CLI's stores share the file (WAL)."""
    agent, cli = make_store(), make_store()
    agent.apply(finding(clock))
    cli.act(1, Action.ACK, by="alice")
    assert as_json(agent.get(1))["state"] == "acknowledged"  # type: ignore[index]
    assert agent.integrity_check() == "ok"


def test_a_burst_commits_together_or_not_at_all(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """apply_many: a failure on the third finding rolls back the first two."""
    calls = 0

    def flaky(_record: HazardRecord, _transition: str) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return ["hook"]

    store = make_store(sinks_for=flaky)
    burst = [finding(clock, subject=f"/d{i}") for i in range(3)]
    with pytest.raises(sqlite3.OperationalError):
        store.apply_many(burst)
    assert as_json(store.records()) == []
    changes = store.apply_many(burst)
    assert [c.created for c in changes if c] == [True, True, True]
