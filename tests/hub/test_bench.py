"""The hub's bench scenarios run end to end at a small size (the lead runs them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_hub import ingest, scratch_context, storm

pytestmark = pytest.mark.e2e


def test_ingest_and_storm_scenarios_run_small(tmp: Path) -> None:
    """Both scenarios on SQLite with 40 terminals: every ticket stored, nothing lost, lag reported."""
    ctx = scratch_context(tmp)
    cpu, rate = ingest(ctx, "SQLite", 40)
    assert "40 simulated terminals" in rate.name and "SQLite" in rate.name
    assert "160 stored" in rate.notes and "0 refused" in rate.notes
    assert cpu.sentinel.median > 0
    lost, p50, p99 = storm(ctx, "SQLite", 40)
    assert lost.sentinel.median == 0 and lost.met
    assert 0 <= p50.sentinel.median <= p99.sentinel.median
    assert "sentinel_hub_terminal_lag_seconds_max" in p99.notes
