"""Realtime file integrity: the delay from a write to its event, Sentinel beside `inotifywait -m`,
on the same writes.

One writer process rewrites distinct files of a fresh tree on a paced schedule (the i-th write
starts at t0 + i * spacing: 1, 20 and 100 ms apart), then as one burst of 10,000 writes (as fast
as the writer goes). While it writes, two watchers see the same tree: Sentinel's integrity
monitor with the shipped debounce (50 ms of quiet per path, max_delay 500 ms) in its own
process, and `inotifywait -m -r` (inotify-tools, C) whose lines a small process stamps on
arrival. Each write's latency is its event's arrival minus the write's start (CLOCK_MONOTONIC,
shared by the processes); p50 and p99 are percentiles of those samples, with their 95 %
confidence intervals. The floor is inotifywait: Sentinel pays the debounce on purpose.
Processes: bench/realtime_parts.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Context, Figure, Stats

GOAL_P50_MS, GOAL_P99_MS = 60.0, 150.0


@dataclass(frozen=True)
class Scenario:
    """One load: `count` writes `spacing` seconds apart (0: a burst)."""

    count: int
    spacing: float

    @property
    def label(self) -> str:
        if self.spacing == 0:
            return f"burst of {self.count:,} writes"
        return f"paced, {self.spacing * 1000:g} ms apart ({self.count:,} writes)"


def scenarios(quick: bool) -> list[Scenario]:
    """Full: 2,000 at 1 ms, 1,000 at 20 ms, 300 at 100 ms, a 10,000 burst; quick: a tenth."""
    if quick:
        return [Scenario(200, 0.001), Scenario(100, 0.02), Scenario(30, 0.1), Scenario(1_000, 0.0)]
    return [Scenario(2_000, 0.001), Scenario(1_000, 0.02), Scenario(300, 0.1), Scenario(10_000, 0.0)]


def _part(role: str, *args: object) -> list[str]:
    return [sys.executable, "-m", "bench.realtime_parts", role, *map(str, args)]


def _read_pairs(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.rpartition(" ")
        out[key] = int(value)
    return out


def _expect(proc: subprocess.Popen[str], word: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{proc.args!r} ended before saying {word!r}")
        if line.strip() == word:
            return
    raise RuntimeError(f"{proc.args!r} did not say {word!r} within {timeout}s")


def one_scenario(ctx: Context, scenario: Scenario, inotifywait: str) -> dict[str, list[float]]:
    """Latencies (ms) of every write, per watcher."""
    work = ctx.scratch / f"rt-{scenario.count}-{scenario.spacing:g}"
    tree = work / "tree"
    tree.mkdir(parents=True)
    for i in range(scenario.count):
        (tree / f"f{i}").write_bytes(b"original\n")
    outs = {name: work / f"{name}.txt" for name in ("writes", "sentinel", "inotifywait")}
    sentinel = subprocess.Popen(
        _part("sentinel", tree, work / "state", scenario.count, outs["sentinel"]),
        stdout=subprocess.PIPE,
        text=True,
        cwd=ctx.root,
    )
    watcher = stamper = writer = None
    try:
        _expect(sentinel, "ready", 120)
        watcher = subprocess.Popen(
            [inotifywait, "-m", "-r", "-e", "modify", "--format", "%w%f", str(tree)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert watcher.stderr is not None
        while "Watches established" not in watcher.stderr.readline():
            if watcher.poll() is not None:
                raise RuntimeError("inotifywait did not start")
        stamper = subprocess.Popen(
            _part("stamp", scenario.count, outs["inotifywait"]), stdin=watcher.stdout, cwd=ctx.root
        )
        writer = subprocess.Popen(
            _part("write", tree, scenario.count, scenario.spacing, outs["writes"]),
            stdin=subprocess.PIPE,
            text=True,
            cwd=ctx.root,
        )
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
        if writer.wait(scenario.count * scenario.spacing + 120) != 0:
            raise RuntimeError("the writer failed")
        _expect(sentinel, "done", 180)
        stamper.wait(60)
    finally:
        for proc in (writer, stamper, watcher, sentinel):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    starts = {str(tree / f"f{i}"): t for i, t in _read_pairs(outs["writes"]).items()}
    result: dict[str, list[float]] = {}
    for name in ("sentinel", "inotifywait"):
        arrivals = _read_pairs(outs[name])
        missing = set(starts) - set(arrivals)
        if missing:
            raise RuntimeError(f"{name} reported {len(starts) - len(missing)} of {len(starts)} writes")
        result[name] = [(arrivals[p] - t) / 1e6 for p, t in starts.items()]
    written = sorted(starts.values())
    span = (written[-1] - written[0]) / 1e9
    result["_pace"] = [span / max(len(written) - 1, 1) * 1000]  # achieved mean spacing, ms
    shutil.rmtree(work, ignore_errors=True)
    return result


def run(ctx: Context) -> list[Figure]:
    inotifywait = shutil.which("inotifywait")
    if inotifywait is None:
        raise RuntimeError("inotifywait not installed (inotify-tools; make bench installs it as root)")
    figures = []
    for scenario in scenarios(ctx.quick):
        ctx.log(f"   {scenario.label}")
        result = one_scenario(ctx, scenario, inotifywait)
        pace = result["_pace"][0]
        load = scenario.label + (f"; achieved {pace:.2f} ms mean spacing" if scenario.spacing else "")
        if scenario.spacing == 0:
            load += f"; written in {pace * (scenario.count - 1) / 1000:.2f} s"
        for q, goal_ms in ((50, GOAL_P50_MS), (99, GOAL_P99_MS)):
            s = Stats.percentile(result["sentinel"], q)
            figures.append(
                Figure(
                    f"realtime FIM latency p{q}, {scenario.label}",
                    "ms",
                    s,
                    Stats.percentile(result["inotifywait"], q),
                    "inotifywait -m",
                    goal=f"p{q} ≤ {goal_ms:g} ms",
                    met=s.median <= goal_ms,
                    load=load,
                    notes=(
                        f"write start → event delivered; Sentinel debounces 50 ms per path "
                        f"(shipped); {len(result['sentinel'])} samples each"
                    ),
                )
            )
    return figures
