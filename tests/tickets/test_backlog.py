"""Issue 19, item 10: a 100,000-ticket backlog (sink down) costs what is due, not what waits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sentinel.tickets.outbox import Outbox
from tests.support.backlog import build_backlog

DUE_SQL = (
    "SELECT o.* FROM outbox o INDEXED BY outbox_due WHERE o.sink = ? AND o.delivered_at IS NULL "
    "AND o.dead = 0 AND o.next_attempt_at <= ?"
)


def vm_steps(outbox: Outbox, fn: object) -> int:
    """SQLite virtual-machine steps (in units of 100) one call costs: work done, not wall time."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn: sqlite3.Connection = outbox._conn
    conn.set_progress_handler(count, 100)
    try:
        fn()  # type: ignore[operator]
    finally:
        conn.set_progress_handler(None, 100)
    return steps


@pytest.fixture(scope="module")
def backlogs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    now = time.time()
    out = {}
    for size in (1_000, 100_000):
        path = tmp_path_factory.mktemp(f"backlog{size}") / "hazards.db"
        build_backlog(path, size, now)
        out[size] = path
    return out


def test_due_reads_the_due_rows_only(backlogs: dict[int, Path]) -> None:
    """due() at 100,000 pending costs about what it costs at 1,000 (index on the due time)."""
    costs = {}
    for size, path in backlogs.items():
        outbox = Outbox(path)
        try:
            rows = outbox.due("hook", time.time(), limit=2)
            assert len(rows) == 2
            costs[size] = vm_steps(outbox, lambda o=outbox: o.due("hook", time.time(), limit=2))
        finally:
            outbox.close()
    assert costs[100_000] <= 2 * costs[1_000] + 50, costs


def test_due_plan_uses_the_due_index_without_sorting(backlogs: dict[int, Path]) -> None:
    """EXPLAIN QUERY PLAN: the partial index on (sink, next_attempt_at), no temporary B-tree."""
    conn = sqlite3.connect(backlogs[100_000])
    try:
        plan = [
            r[3]
            for r in conn.execute(
                "EXPLAIN QUERY PLAN " + DUE_SQL + " ORDER BY o.next_attempt_at, o.id LIMIT 2", ("hook", 0.0)
            )
        ]
    finally:
        conn.close()
    assert any("outbox_due" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_stats_count_the_backlog_without_reading_delivered_rows(
    backlogs: dict[int, Path], tmp_path: Path
) -> None:
    """stats() (every scrape) reads the pending and dead indexes, never the delivered history."""
    outbox = Outbox(backlogs[100_000])
    try:
        stats = outbox.stats()["hook"]
        assert stats["pending"] == 100_000 and stats["dead"] == 0 and stats["oldest"] > 0
    finally:
        outbox.close()
    costs = []
    for delivered in (0, 100_000):
        path = tmp_path / f"d{delivered}.db"
        build_backlog(path, 1_000, time.time(), delivered=delivered)
        outbox = Outbox(path)
        try:
            assert outbox.stats()["hook"]["pending"] == 1_000
            costs.append(vm_steps(outbox, outbox.stats))
        finally:
            outbox.close()
    assert costs[1] <= 2 * costs[0] + 50, costs


def test_the_counts_follow_every_transition_of_a_row(tmp_path: Path) -> None:
    """Delivered, failed, dead-lettered, retried, pruned: the kept counts equal a full count."""
    path = tmp_path / "hazards.db"
    build_backlog(path, 50, time.time(), delivered=20)
    outbox = Outbox(path, sinks=["hook", "other"])

    def truth() -> tuple[float, float]:
        conn = sqlite3.connect(path)
        try:
            pending, dead = conn.execute(
                "SELECT SUM(delivered_at IS NULL AND dead = 0), SUM(dead) FROM outbox WHERE sink = 'hook'"
            ).fetchone()
        finally:
            conn.close()
        return float(pending or 0), float(dead or 0)

    try:
        ids = [r.id for r in outbox.due("hook", time.time() + 400, limit=10)]
        outbox.delivered(ids[0], time.time())
        outbox.failed(ids[1], "HTTP 503", time.time() + 5)
        outbox.dead(ids[2], "HTTP 400")
        outbox.dead(ids[3], "HTTP 400")
        assert outbox.retry(ids[3], time.time()) == 1
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM outbox WHERE id IN (?, ?)", (ids[4], ids[0]))
        conn.commit()
        conn.close()
        stats = outbox.stats()
        assert (stats["hook"]["pending"], stats["hook"]["dead"]) == truth() == (47.0, 1.0)
        assert stats["other"] == {"pending": 0.0, "oldest": 0.0, "dead": 0.0}
    finally:
        outbox.close()
