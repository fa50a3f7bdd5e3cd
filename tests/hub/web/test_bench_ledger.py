"""The ledger-page bench scenario runs end to end at a small size (the lead runs it at 1,000,000)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_hub import scratch_context
from bench.bench_hub_ledger import measure

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # a hub process, a fill, 11 pages: slow when loaded


def test_the_ledger_page_scenario_runs_small(tmp: Path) -> None:
    """2,000 hazards on a real hub process: every page answers, p95 figures come out."""
    figures = measure(scratch_context(tmp), 2000, 1, hops=2)
    overall, *per_page = figures
    assert overall.name == "ledger page p95, 2,000 hazards (SQLite, all pages)"
    assert overall.met is None  # the goal is judged at 1,000,000 only
    assert "11 pages" in overall.notes
    assert len(per_page) == 11 and all(f.sentinel.median > 0 for f in per_page)
