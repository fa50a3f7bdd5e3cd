"""Software inventory cost on this machine's real package database, beside dpkg's own tools.

- reading the inventory (name, version, architecture, source of every installed package):
  Sentinel parses /var/lib/dpkg/status directly; the peer is `dpkg-query -W -f ...` run as a
  child process, as an agent calling the package tool would — wall time and memory each;
- the first start's index (every package's file list kept compressed, checksums of the files
  under /usr/bin and /usr/sbin) beside `dpkg-query -W -f '${db-fsys:Files}'`, which reads every
  file list once — wall time and memory each (and the bytes the index keeps);
- a restart (the saved index loaded, only changed packages re-read) and one idle poll (the lock
  and three stats), with its share of a core at the default one-second poll.

Memory, side by side, is the peak RSS (GNU time) of one child process doing only the read: a Python
that imports Sentinel's parser and reads the inventory, and dpkg-query. A running agent already
has the interpreter: what the read adds there (the peak Python heap it allocates, tracemalloc)
is in the figure's notes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
GNU_TIME = "/usr/bin/time"  # Debian package `time` (scripts/install-system-deps.sh bench)
INDEX_ALONE = (
    "import gc, sys\n"
    "from pathlib import Path\n"
    "from bench.bench_inventory import ROOTS, rss_kib\n"
    "from sentinel.core.clock import SYSTEM_CLOCK\n"
    "from sentinel.sources.detectors.package_tracker import PackageTracker\n"
    "from sentinel.sources.parsers.dpkg import DpkgDatabase, DpkgPaths\n"
    "before = rss_kib()\n"
    "tracker = PackageTracker(DpkgDatabase(DpkgPaths(Path('/'))), index_path=Path(sys.argv[1]),\n"
    "                         settle=3, remember=86400, clock=SYSTEM_CLOCK)\n"
    "tracker.watch_roots(ROOTS)\n"
    "tracker.start_up()\n"
    "gc.collect()\n"
    "Path(sys.argv[2]).write_text(str(rss_kib() - before))\n"
)
"""A first start in a process of its own; argv[2] receives the RSS (KiB) it kept afterwards."""
READ_ALONE = (
    "from pathlib import Path\n"
    "from sentinel.sources.parsers.dpkg import DpkgDatabase, DpkgPaths\n"
    "DpkgDatabase(DpkgPaths(Path('/'))).installed()\n"
)


def rss_kib() -> int:
    """This process's resident set now (VmRSS, KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _wall_ms(command: list[str]) -> float:
    """Wall milliseconds of one child process (fork, exec, run, exit)."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def _peak_rss_mib(command: list[str], scratch: Path) -> float:
    """Peak RSS of one child process, read by GNU time (`%M`).

    Not wait4's ru_maxrss: a child forked from this benchmark starts with the benchmark's pages
    mapped and the kernel keeps that high-water mark across exec, so every child would measure at
    least this process's RSS. GNU time is small; what its child inherits from it is noise."""
    report = scratch / "time.out"
    subprocess.run(
        [GNU_TIME, "-f", "%M", "-o", str(report), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return int(report.read_text().split()[-1]) / 1024


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
    if not os.access(GNU_TIME, os.X_OK):
        raise RuntimeError(f"{GNU_TIME} not found: apt-get install time")
    rounds = 5 if ctx.quick else 30
    installed = len(db.installed()[0])

    def ours() -> float:
        start = time.perf_counter()
        db.installed()
        return (time.perf_counter() - start) * 1000

    def theirs() -> float:
        return _wall_ms(["dpkg-query", "-W", "-f", STATUS_FORMAT])

    mine, peer = interleave(ours, theirs, rounds)
    figures = [
        Figure(
            name=f"inventory read: {installed} installed packages",
            unit="ms",
            sentinel=Stats.of(mine),
            peer=Stats.of(peer),
            peer_name="dpkg-query -W (child process)",
            notes="Sentinel parses /var/lib/dpkg/status in-process; the peer's time includes its fork/exec",
            load=f"this machine's dpkg database ({installed} packages), {rounds} rounds interleaved",
        )
    ]
    heap = []
    for _ in range(3 if ctx.quick else 5):
        tracemalloc.start()
        db.installed()
        heap.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    alone = [_peak_rss_mib([sys.executable, "-c", READ_ALONE], ctx.scratch) for _ in heap]
    query_rss = [_peak_rss_mib(["dpkg-query", "-W", "-f", STATUS_FORMAT], ctx.scratch) for _ in heap]
    figures.append(
        Figure(
            name="inventory read: memory (peak RSS of a process doing only the read)",
            unit="MiB",
            sentinel=Stats.of(alone),
            peer=Stats.of(query_rss),
            peer_name="dpkg-query -W peak RSS",
            notes=(
                f"Sentinel: python -c (interpreter + parser + read); inside the running agent the read "
                f"adds a peak Python heap of {Stats.of(heap).median:.2f} MiB"
            ),
            extra={"agent_heap_mib": Stats.of(heap).median},
            load=f"one read of this machine's dpkg database ({installed} packages), {len(heap)} runs",
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
        return _wall_ms(["dpkg-query", "-W", "-f", "${db-fsys:Files}"])

    index_rounds = 3 if ctx.quick else 7
    built, listed = interleave(first_start, all_lists, index_rounds)
    lists_rss = _peak_rss_mib(["dpkg-query", "-W", "-f", "${db-fsys:Files}"], ctx.scratch)
    index_rss, kept = [], []
    for i in range(2 if ctx.quick else 3):
        report = ctx.scratch / f"kept-{i}"
        command = [sys.executable, "-c", INDEX_ALONE, str(ctx.scratch / f"alone-{i}.json"), str(report)]
        index_rss.append(_peak_rss_mib(command, ctx.scratch))
        kept.append(int(report.read_text()) / 1024)
    figures.append(
        Figure(
            name="first start: index of every file list (+ checksums under /usr/bin, /usr/sbin)",
            unit="ms",
            sentinel=Stats.of(built),
            peer=Stats.of(listed),
            peer_name="dpkg-query -W -f '${db-fsys:Files}'",
            notes=(
                f"{last['owned']} owned paths indexed with checksums; file lists kept compressed in "
                f"{last['index_bytes'] / 1e6:.2f} MB"
            ),
            extra={"index_bytes": last["index_bytes"]},
            load=f"this machine's {installed} packages' file lists, {index_rounds} rounds interleaved",
        )
    )
    figures.append(
        Figure(
            name="first start: memory (peak RSS of a process doing only the index)",
            unit="MiB",
            sentinel=Stats.of(index_rss),
            peer=Stats.of([lists_rss]),
            peer_name="dpkg-query -W -f '${db-fsys:Files}' peak RSS",
            notes=(
                "Sentinel: python -c (interpreter + tracker + first start, index saved); "
                f"RSS still held after it: +{Stats.of(kept).median:.1f} MiB (a restart reads the saved index)"
            ),
            extra={"kept_rss_mib": Stats.of(kept).median},
            load=f"one first start on this machine's {installed} packages, {len(index_rss)} runs",
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
            load=f"the saved index of this machine's {installed} packages, {len(restarts)} restarts",
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
            load=f"no package installed or removed meanwhile, {len(polls)} polls",
        )
    )
    for figure in figures:
        ctx.log(f"   {figure.name}: {figure.sentinel.median:.2f} {figure.unit}")
    return figures
