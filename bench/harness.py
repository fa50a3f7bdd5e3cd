"""The benchmark harness: interleaved runs, robust statistics, figures with goals and ratios.

A benchmark module `bench/bench_<topic>.py` exposes `run(ctx: Context) -> list[Figure]`. It
measures Sentinel and the peer *interleaved* (A B A B ...) in the same run, because these
machines are noisy: absolute times drift, ratios from interleaved runs hold.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Median with min and max of repeated measurements."""

    median: float
    min: float
    max: float
    n: int
    label: str = "median"  # what `median` holds: "median", or a percentile ("p99")
    spread: str = "min–max"  # what [min, max] is: the range, or a percentile's 95 % interval

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """Stats of a non-empty sequence."""
        if not values:
            raise ValueError("no measurements")
        return cls(statistics.median(values), min(values), max(values), len(values))

    @classmethod
    def percentile(cls, values: Sequence[float], q: float) -> Stats:
        """The q-th percentile of `values` with its distribution-free 95 % confidence interval
        (the order statistics that bracket it, by the normal approximation to the binomial), so a
        p99 row is a p99 of its own samples, with the uncertainty those samples leave."""
        if not values:
            raise ValueError("no measurements")
        ordered = sorted(values)
        n, p = len(ordered), q / 100.0
        half = 1.96 * math.sqrt(n * p * (1 - p))
        low = min(max(math.floor(n * p - half) - 1, 0), n - 1)
        high = min(max(math.ceil(n * p + half) - 1, 0), n - 1)
        return cls(percentile(ordered, q), ordered[low], ordered[high], n, f"p{q:g}", "95% CI")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no measurements")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Figure:
    """One reported figure: Sentinel's value, the peer's, their ratio, and the goal.

    `better` says which direction is good ("lower" for times and sizes, "higher" for rates).
    `goal` is a human sentence; `met` is computed by the benchmark from the numbers, never set
    by hand, and None when the figure has no goal.
    """

    name: str
    unit: str
    sentinel: Stats
    peer: Stats | None = None
    peer_name: str = ""
    goal: str = ""
    met: bool | None = None
    better: str = "lower"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    module: str = ""  # the bench_* module that measured it (set by the runner)
    load: str = ""  # the load it was measured under: paced rate or burst, spacing, tree size

    @property
    def ratio(self) -> float | None:
        """How many times better Sentinel is than the peer (>1 is better), by medians."""
        if self.peer is None or self.peer.median == 0 or self.sentinel.median == 0:
            return None
        if self.better == "lower":
            return self.peer.median / self.sentinel.median
        return self.sentinel.median / self.peer.median

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["ratio"] = self.ratio
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        """The inverse of as_dict (to merge results of separate runs)."""
        fields = {k: v for k, v in data.items() if k != "ratio"}
        fields["sentinel"] = Stats(**fields["sentinel"])
        fields["peer"] = Stats(**fields["peer"]) if fields.get("peer") else None
        return cls(**fields)


@dataclass
class Context:
    """What every benchmark gets: quick mode, a scratch directory, the repository root."""

    quick: bool
    scratch: Path
    root: Path
    log: Callable[[str], None] = print


def interleave(
    a: Callable[[], float], b: Callable[[], float], rounds: int, *, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Run a and b alternately (A B A B ...) after `warmup` unrecorded rounds of each."""
    for _ in range(warmup):
        a()
        b()
    xs: list[float] = []
    ys: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            xs.append(a())
            ys.append(b())
        else:  # alternate who goes first, so neither always gets the warmer cache
            ys.append(b())
            xs.append(a())
    return xs, ys


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def to_markdown(figures: Sequence[Figure], *, header: str) -> str:
    """The results table: figure, Sentinel, peer, ratio, goal, met."""
    lines = [
        header,
        "",
        "| Figure | Load | Sentinel (median [min–max], or pN [95% CI]) | Peer | Ratio | Goal | Met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        peer = f"{f.peer_name}: {_fmt(f.peer)} {f.unit}" if f.peer else "—"
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "—"
        met = "—" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(
            f"| {f.name} | {f.load or '—'} | {_fmt(f.sentinel)} {f.unit} | {peer} | {ratio} "
            f"| {f.goal or '—'} | {met} |"
        )
    notes = [f"- **{f.name}**: {f.notes}" for f in figures if f.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def _fmt(s: Stats | None) -> str:
    if s is None:
        return "—"
    if s.label != "median":  # a percentile: say which, and what its bracket is
        return f"{s.label} {_num(s.median)} [{s.spread} {_num(s.min)}–{_num(s.max)}, n={s.n}]"
    return f"{_num(s.median)} [{_num(s.min)}–{_num(s.max)}]"


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"
