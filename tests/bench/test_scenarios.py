"""The benchmarks measure what their labels say (issue 23): every figure states its load, a paced
scenario runs on its schedule (never waiting for one event before the next write or commit), a
burst is a burst, and a scenario's label is made from the scenario it ran."""

from __future__ import annotations

import ast
import io
import time
from pathlib import Path

import pytest

from bench import bench_realtime, bench_tickets, realtime_parts
from bench.bench_fim import make_tree
from bench.harness import Context

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _figure_calls() -> list[tuple[str, int, set[str]]]:
    calls = []
    for path in sorted(BENCH.glob("bench_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Figure":
                calls.append((path.name, node.lineno, {k.arg for k in node.keywords if k.arg}))
    return calls


def test_every_figure_states_its_load() -> None:
    """Each Figure(...) of every benchmark passes `load=` (paced or burst, rate, tree size)."""
    calls = _figure_calls()
    assert len(calls) > 20  # the scan sees the benchmarks' figures
    unstated = [f"{name}:{line}" for name, line, keywords in calls if "load" not in keywords]
    assert unstated == [], f"figures without a load: {unstated}"


def _write(tmp_path: Path, count: int, spacing: float, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(count):
        (tree / f"f{i}").write_text("x")
    out = tmp_path / "starts"
    monkeypatch.setattr("sys.stdin", io.StringIO("go\n"))
    realtime_parts.write(tree, count, spacing, out)
    return [int(line.split()[1]) for line in out.read_text().splitlines()]


def test_a_paced_writer_starts_each_write_on_its_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The i-th write starts no earlier than t0 + i * spacing, whatever else happens (no event
    is awaited between writes): 20 writes 10 ms apart take at least 190 ms."""
    starts = _write(tmp_path, 20, 0.010, monkeypatch)
    t0 = starts[0]
    assert all(start - t0 >= i * 10_000_000 - 1_000_000 for i, start in enumerate(starts))
    assert starts[-1] - t0 >= 189_000_000


def test_a_burst_writer_does_not_pace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spacing 0 writes back to back: 500 writes well under the 5 s a 10 ms pace would take."""
    starts = _write(tmp_path, 500, 0.0, monkeypatch)
    assert starts[-1] - starts[0] < 2_000_000_000


def test_realtime_labels_are_made_from_their_scenarios() -> None:
    """The full run has the goal's loads (1, 20, 100 ms apart and a 10,000-write burst), and each
    label names its own spacing and count."""
    full = bench_realtime.scenarios(quick=False)
    assert {s.spacing for s in full} == {0.001, 0.02, 0.1, 0.0}
    assert any(s.spacing == 0 and s.count == 10_000 for s in full)
    for s in full:
        if s.spacing:
            assert s.label == f"paced, {s.spacing * 1000:g} ms apart ({s.count:,} writes)"
        else:
            assert s.label == f"burst of {s.count:,} writes"


def test_paced_tickets_are_committed_on_their_schedule(tmp_path: Path) -> None:
    """bench_tickets' paced scenario commits at the rate it names (not faster: it keeps the
    schedule; not waiting for deliveries), and every ticket's delay is its own."""
    ctx = Context(quick=True, scratch=tmp_path, root=BENCH.parent)
    started = time.monotonic()
    achieved, delays = bench_tickets.paced(ctx, "t", 11, 50.0)
    assert time.monotonic() - started >= 0.2  # 10 intervals of 20 ms
    assert achieved <= 52.0
    assert len(delays) == 11 and all(d > 0 for d in delays)


def test_the_fim_scaling_tree_has_the_size_its_label_names(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", 450, per_dir=200)
    assert sum(1 for p in tree.rglob("*") if p.is_file()) == 450
    assert len(list(tree.iterdir())) == 3
