"""The processes of the realtime scenario (`bench_realtime`), one role each, so that none of them
shares an interpreter lock with another:

- `write DIR COUNT SPACING OUT`: rewrites DIR/f0 .. DIR/f<COUNT-1> once each, the i-th write
  started at t0 + i * SPACING (paced; SPACING 0 is a burst, as fast as one writer can go), and
  writes "i start_ns" per write to OUT (CLOCK_MONOTONIC, comparable across processes).
- `sentinel DIR STATE COUNT OUT`: Sentinel's integrity monitor (the shipped defaults: debounce
  50 ms, max_delay 500 ms) watching DIR; "ready" on stdout once its baseline is taken, then
  "path arrival_ns" per first modified event to OUT, "done" on stdout once COUNT paths were seen.
- `stamp COUNT OUT`: reads `inotifywait -m` lines (a path each) on stdin and stamps them the same
  way: the peer's latency is what one C process hands on, as soon as the kernel has it.

Timestamps are taken where the event is *delivered*: Sentinel's emit callback (what the pipeline
receives), and the line read from inotifywait's pipe.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write(directory: Path, count: int, spacing: float, out: Path) -> None:
    """Rewrite each file once on the paced schedule; the start of every write is recorded."""
    names = [os.fsencode(directory / f"f{i}") for i in range(count)]
    starts = [0] * count
    payload = b"changed by the bench\n"
    sys.stdin.readline()  # "go"
    t0 = time.monotonic_ns()
    step = int(spacing * 1e9)
    for i, name in enumerate(names):
        if step:
            due = t0 + i * step
            wait = due - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
        starts[i] = time.monotonic_ns()
        fd = os.open(name, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, payload)
        os.close(fd)
    out.write_text("".join(f"{i} {t}\n" for i, t in enumerate(starts)))


class _Arrivals:
    def __init__(self, count: int) -> None:
        self.count = count
        self.first: dict[str, int] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()

    def seen(self, paths: Sequence[str]) -> None:
        now = time.monotonic_ns()
        with self._lock:
            for path in paths:
                self.first.setdefault(path, now)
            if len(self.first) >= self.count:
                self.done.set()

    def dump(self, out: Path) -> None:
        with self._lock:
            out.write_text("".join(f"{p} {t}\n" for p, t in self.first.items()))


def sentinel(directory: Path, state: Path, count: int, out: Path) -> None:
    """The monitor on `directory`, stamping each path's first modified event."""
    from sentinel.sources.integrity.config import IntegrityConfig, WatchConfig
    from sentinel.sources.integrity.monitor import IntegrityCollector

    arrivals = _Arrivals(count)

    def emit(items: Sequence[Any]) -> bool:
        arrivals.seen([i.subject for i in items if getattr(i, "kind", "") == "modified"])
        return True

    collector = IntegrityCollector(
        IntegrityConfig(watch=(WatchConfig(directory, policy="readonly"),)), state_dir=state
    )
    collector.start(emit)
    try:
        if not collector.wait_ready(120):
            raise SystemExit("the monitor did not get ready")
        print("ready", flush=True)
        arrivals.done.wait(float(os.environ.get("BENCH_REALTIME_TIMEOUT", "120")))
    finally:
        collector.stop()
        arrivals.dump(out)
    print("done", flush=True)


def stamp(count: int, out: Path) -> None:
    """inotifywait's lines, stamped as they arrive."""
    arrivals = _Arrivals(count)
    for line in sys.stdin:
        arrivals.seen([line.rstrip("\n")])
        if arrivals.done.is_set():
            break
    arrivals.dump(out)


def main(argv: list[str]) -> None:
    role, *args = argv
    if role == "write":
        write(Path(args[0]), int(args[1]), float(args[2]), Path(args[3]))
    elif role == "sentinel":
        sentinel(Path(args[0]), Path(args[1]), int(args[2]), Path(args[3]))
    elif role == "stamp":
        stamp(int(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1:])
