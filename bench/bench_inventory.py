"""Software inventory cost on this machine's real package database, beside dpkg's own tools.

- reading the inventory (name, version, architecture, source of every installed package):
  Sentinel parses /var/lib/dpkg/status directly; the peer is `dpkg-query -W -f ...` run as a
  child process, as an agent calling the package tool would — wall time and memory each;
- the first start's index (every package's file list kept compressed, checksums of the files
  under /usr/bin and /usr/sbin) beside `dpkg-query -W -f '${db-fsys:Files}'`, which reads every
  file list once — wall time, and memory (the index's bytes beside dpkg-query's peak RSS);
- a restart (the saved index loaded, only changed packages re-read) and one idle poll (the lock
  and three stats), with its share of a core at the default one-second poll.

Memory is measured where each one lives: Sentinel's as the peak Python heap the read allocates
inside the agent (tracemalloc), dpkg-query's as its own peak RSS (wait4).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.harness import Context, Figure, Stats, interleave
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.sources.detectors.package_tracker import PackageTracker
from sentinel.sources.parsers.dpkg import DpkgDatabase, DpkgPaths

STATUS_FORMAT = "${binary:Package}\t${Version}\t${Architecture}\t${source:Package}\t${db:Status-Abbrev}\n"
ROOTS = ("/usr/bin", "/usr/sbin")


def _child_rss_kib(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {proc.returncode}")
    return time.perf_counter() - start, int(usage.ru_maxrss)


def _tracker(db: DpkgDatabase, state: Path) -> PackageTracker:
    tracker = PackageTracker(
        db, index_path=state / "packages.json", settle=3, remember=86400, clock=SYSTEM_CLOCK
    )
    tracker.watch_roots(ROOTS)
    return tracker


def run(ctx: Context) -> list[Figure]:
    db = DpkgDatabase(DpkgPaths(Path("/")))
    if not db.available() or not shutil.which("dpkg-query"):
        ctx.log("   no dpkg database on this machine: skipped")
        return []
    rounds = 5 if ctx.quick else 30
    installed = len(db.installed()[0])

    def ours() -> float:
        start = time.perf_counter()
        db.installed()
        return (time.perf_counter() - start) * 1000

    def theirs() -> float:
        return _child_rss_kib(["dpkg-query", "-W", "-f", STATUS_FORMAT])[0] * 1000

    mine, peer = interleave(ours, theirs, rounds)
    figures = [
        Figure(
            name=f"inventory read: {installed} installed packages",
            unit="ms",
            sentinel=Stats.of(mine),
            peer=Stats.of(peer),
            peer_name="dpkg-query -W (child process)",
            notes="Sentinel parses /var/lib/dpkg/status in-process; the peer's time includes its fork/exec",
        )
    ]
    heap = []
    for _ in range(3 if ctx.quick else 5):
        tracemalloc.start()
        db.installed()
        heap.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    query_rss = [_child_rss_kib(["dpkg-query", "-W", "-f", STATUS_FORMAT])[1] / 1024 for _ in heap]
    figures.append(
        Figure(
            name="inventory read: memory",
            unit="MiB",
            sentinel=Stats.of(heap),
            peer=Stats.of(query_rss),
            peer_name="dpkg-query -W peak RSS",
            notes="Sentinel: peak Python heap the read allocates in the agent; the peer: its own peak RSS",
        )
    )

    last: dict[str, Any] = {}

    def first_start() -> float:
        state = ctx.scratch / f"first-{time.monotonic_ns()}"
        tracker = _tracker(db, state)
        start = time.perf_counter()
        tracker.start_up()
        elapsed = time.perf_counter() - start
        last["index_bytes"] = sum(len(e.files_z) for e in tracker.index.entries.values())
        last["owned"] = len(tracker.index.owned)
        last["state"] = state
        return elapsed * 1000

    def all_lists() -> float:
        return _child_rss_kib(["dpkg-query", "-W", "-f", "${db-fsys:Files}"])[0] * 1000

    index_rounds = 3 if ctx.quick else 7
    built, listed = interleave(first_start, all_lists, index_rounds)
    lists_rss = _child_rss_kib(["dpkg-query", "-W", "-f", "${db-fsys:Files}"])[1] / 1024
    figures.append(
        Figure(
            name="first start: index of every file list (+ checksums under /usr/bin, /usr/sbin)",
            unit="ms",
            sentinel=Stats.of(built),
            peer=Stats.of(listed),
            peer_name="dpkg-query -W -f '${db-fsys:Files}'",
            notes=(
                f"{last['owned']} owned paths indexed with checksums; file lists kept compressed in "
                f"{last['index_bytes'] / 1e6:.2f} MB (peer peak RSS {lists_rss:.1f} MiB)"
            ),
            extra={"index_bytes": last["index_bytes"], "peer_rss_mib": lists_rss},
        )
    )

    saved: Path = last["state"]

    def restart() -> float:
        tracker = _tracker(db, saved)
        start = time.perf_counter()
        tracker.start_up()
        return (time.perf_counter() - start) * 1000

    restarts = [restart() for _ in range(3 if ctx.quick else 7)]
    figures.append(
        Figure(
            name="restart: saved index loaded, changed packages re-read",
            unit="ms",
            sentinel=Stats.of(restarts),
        )
    )
    tracker = _tracker(db, saved)
    tracker.start_up()
    polls = []
    for _ in range(50 if ctx.quick else 500):
        start = time.process_time()
        tracker.poll()
        polls.append((time.process_time() - start) * 1e6)
    idle = Stats.of(polls)
    figures.append(
        Figure(
            name="idle poll (lock look-up and three stats)",
            unit="µs CPU",
            sentinel=idle,
            goal="< 0.1 % of one core at the 1 s default poll",
            met=idle.median / 1e6 < 0.001,
            notes=f"{idle.median / 1e6:.5%} of one core every second",
        )
    )
    for figure in figures:
        ctx.log(f"   {figure.name}: {figure.sentinel.median:.2f} {figure.unit}")
    return figures
