"""The benchmark harness's arithmetic and rendering (the benchmarks themselves run in `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import Figure, Stats, interleave, percentile, to_markdown


def test_stats_of_measurements() -> None:
    """Median, min, max and count."""
    s = Stats.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.min, s.max, s.n) == (2.5, 1.0, 10.0, 4)
    with pytest.raises(ValueError):
        Stats.of([])


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 50.5), (99, 99.01), (100, 100.0)])
def test_percentiles_interpolate(q: float, expected: float) -> None:
    """Linear interpolation between closest ranks, like numpy's default."""
    assert percentile([float(i) for i in range(1, 101)], q) == pytest.approx(expected)


def test_ratio_direction() -> None:
    """For times lower is better (peer/sentinel); for rates higher is better (sentinel/peer)."""
    t = Figure("scrape", "ms", Stats.of([2.0]), Stats.of([6.0]), "node_exporter")
    assert t.ratio == pytest.approx(3.0)
    r = Figure("rate", "/s", Stats.of([500.0]), Stats.of([250.0]), "x", better="higher")
    assert r.ratio == pytest.approx(2.0)
    assert Figure("alone", "s", Stats.of([1.0])).ratio is None


def test_interleave_alternates_who_goes_first() -> None:
    """A B, B A, A B ...; warm-up rounds are not recorded."""
    order: list[str] = []

    def a() -> float:
        order.append("a")
        return 1.0

    def b() -> float:
        order.append("b")
        return 2.0

    xs, ys = interleave(a, b, rounds=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert xs == [1.0] * 3 and ys == [2.0] * 3


def test_markdown_shows_missed_goals_honestly() -> None:
    """A missed goal is bold 'no' with the measured ratio."""
    figures = [
        Figure(
            "baseline init", "s", Stats.of([4.0, 5.0]), Stats.of([10.0]), "aide", goal="≥5× faster", met=False
        ),
        Figure(
            "scrape p50",
            "ms",
            Stats.of([1.0]),
            Stats.of([2.0]),
            "node_exporter",
            goal="≤ peer",
            met=True,
            notes="500 scrapes",
        ),
    ]
    text = to_markdown(figures, header="# R")
    assert (
        "| baseline init | — | 4.50 [4.00–5.00] s | aide: 10.00 [10.00–10.00] s | 2.22× "
        "| ≥5× faster | **no** |" in text
    )
    assert "| yes |" in text and "- **scrape p50**: 500 scrapes" in text


def test_procstat_parses_a_fixture_proc_tree(tmp_path: Path) -> None:
    """CPU seconds from stat fields 14+15 (a command with spaces and parens), RSS from status."""
    from bench import procstat

    d = tmp_path / "4242"
    d.mkdir()
    (d / "stat").write_text("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0\n")
    (d / "status").write_text("Name:\tx\nVmRSS:\t   20480 kB\n")
    (d / "fd").mkdir()
    for i in range(3):
        (d / "fd" / str(i)).write_text("")
    assert procstat.cpu_seconds(4242, tmp_path) == (250 + 150) / procstat.CLOCK_TICKS
    assert procstat.rss_bytes(4242, tmp_path) == 20480 * 1024
    assert procstat.open_fds(4242, tmp_path) == 3


def test_figures_round_trip_through_json() -> None:
    """from_dict(as_dict(f)) keeps every number, for merging partial runs."""
    import json

    f = Figure("x", "ms", Stats.of([1.0, 2.0]), Stats.of([3.0]), "peer", goal="g", met=True, module="bench_x")
    back = Figure.from_dict(json.loads(json.dumps(f.as_dict())))
    assert back == f and back.ratio == f.ratio


def test_a_percentile_row_is_computed_from_its_own_samples() -> None:
    """p50 and p99 of one sample set are those samples' percentiles, each with the order-statistic
    interval around *it* (a p99 row never repeats the p50 row's range)."""
    samples = [float(i) for i in range(1, 1001)]  # 1 .. 1000 ms
    p50, p99 = Stats.percentile(samples, 50), Stats.percentile(samples, 99)
    assert p50.median == pytest.approx(percentile(samples, 50)) == pytest.approx(500.5)
    assert p99.median == pytest.approx(percentile(samples, 99)) == pytest.approx(990.01)
    assert (p50.label, p99.label, p99.n) == ("p50", "p99", 1000)
    assert p50.min <= p50.median <= p50.max and p99.min <= p99.median <= p99.max
    assert p50.max < p99.min  # disjoint brackets: each is about its own percentile
    assert p99.min >= 980 and p99.max <= 1000  # n·p ± 1.96·sqrt(n·p·(1-p)) ranks
    row = to_markdown([Figure("lat p99", "ms", p99, load="paced, 20 ms apart")], header="# R")
    assert "| lat p99 | paced, 20 ms apart | p99 990 [95% CI 983–997, n=1000] ms |" in row


def test_a_percentile_of_few_samples_stays_inside_them() -> None:
    """With a handful of samples the interval is clamped to the samples themselves."""
    s = Stats.percentile([5.0, 1.0, 3.0], 99)
    assert s.min >= 1.0 and s.max == 5.0 and s.median == pytest.approx(percentile([1.0, 3.0, 5.0], 99))
