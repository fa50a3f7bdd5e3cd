"""The agent's trail watch: verification on its own connection, one hazard per set of breaks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sentinel.agent.trail import RULE, TrailWatch
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock, wait_until
from tests.hazards.conftest import finding
from tests.support.people import who


def _store(path: Path, clock: FakeClock) -> None:
    store = HazardStore(path, config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        store.apply(finding(clock))
        store.act(1, Action.ACK, actor=who("alice"), note="seen")
    finally:
        store.close()


def _edit(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


def test_intact_then_broken_then_broken_more(tmp: Path) -> None:
    """Intact: no finding, verified 1. A break: one critical data_security finding naming the row;
    the same break again: none; another break: one more (the set changed)."""
    clock, path = FakeClock(), tmp / "hazards.db"
    _store(path, clock)
    submitted: list[list[Finding]] = []
    watch = TrailWatch(path, interval=3600, submit=submitted.append, clock=clock)
    assert watch.summary() is None
    intact = watch.check()
    assert intact.ok and submitted == []
    assert watch.summary() == {
        "verified_at": clock.time(),
        "ok": True,
        "breaks": 0,
        "first_break": None,
        "head": {"seq": intact.head_seq, "hash": intact.head_hash},
    }
    values = {s.name: s.value for s in watch.samples()}
    assert values["sentinel_audit_chain_verified"] == 1 and values["sentinel_audit_chain_breaks"] == 0
    _edit(path, "UPDATE history SET note = 'nothing' WHERE action = 'ack'")
    assert not watch.check().ok
    watch.check()
    assert len(submitted) == 1
    summary = watch.summary()
    assert summary is not None and (summary["ok"], summary["breaks"]) == (False, 1)
    assert "row 3 (hazard #1, history): changed after it was written" in summary["first_break"]
    (raised,) = submitted[0]
    assert (raised.rule, raised.severity, raised.category, raised.auto_resolve) == (
        RULE,
        Severity.CRITICAL,
        Category.DATA_SECURITY,
        False,
    )
    assert "row 3 (hazard #1, history): changed after it was written" in raised.title
    assert raised.evidence_map["first_row"] == 3
    _edit(path, "UPDATE hazards SET owner = 'nobody'")
    watch.check()
    assert len(submitted) == 2
    assert {s.name: s.value for s in watch.samples()}["sentinel_audit_chain_verified"] == 0


def test_the_watch_runs_at_start_and_stops(tmp: Path) -> None:
    """start() verifies at once on its thread; stop() joins it."""
    clock, path = FakeClock(), tmp / "hazards.db"
    _store(path, clock)
    watch = TrailWatch(path, interval=3600, submit=lambda f: None, clock=clock)
    watch.start()
    try:
        wait_until(lambda: watch.last is not None, timeout=20)
    finally:
        watch.stop()
    assert watch.last is not None and watch.last.ok
    assert watch._thread is not None and not watch._thread.is_alive()


def test_the_baseline_is_adopted_then_must_match_the_trail(tmp: Path) -> None:
    """No recorded baseline: adopted by the agent (a chained row). The same file: recorded. A file
    re-signed with the key but without `sentinel baseline` (what root can do): one critical
    finding. Once its update is recorded: fine again."""
    from sentinel.hazards.baselines import record_update
    from sentinel.sources.integrity.baseline import Baseline, BaselineFiles
    from sentinel.sources.integrity.entry import Entry
    from tests.support.people import who

    clock, path = FakeClock(), tmp / "hazards.db"
    _store(path, clock)
    files = BaselineFiles(tmp)
    key = files.create_key()
    entry = Entry("file", 0o644, 0, 0, 3, 1, 1, 7, 1, None, "c" * 64, None)
    files.write(Baseline({"/etc/passwd": entry}, 1.0), key)
    submitted: list[list[Finding]] = []
    watch = TrailWatch(
        path, interval=3600, submit=submitted.append, clock=clock, baseline=files, sleep=lambda s: None
    )
    assert watch.check_baseline() == "adopted"
    assert watch.check_baseline() == "recorded"
    resigned = files.write(Baseline({"/etc/passwd": entry, "/etc/shadow": entry}, 2.0), key)
    assert watch.check_baseline() == "unrecorded" and watch.check_baseline() == "unrecorded"
    assert len(submitted) == 1 and submitted[0][0].rule == "baseline_unrecorded"
    assert submitted[0][0].evidence_map["digest"] == resigned
    record_update(
        path, at=clock.time(), actor=who("carol"), action="update", reason="CHG-7",
        old_digest="", new_digest=resigned, entries=2, summary={},
    )  # fmt: skip
    assert watch.check_baseline() == "recorded"
    assert watch.check().ok  # adopt and update rows are links of the chain
