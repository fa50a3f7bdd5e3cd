"""Exec capture against a burst of short programs: the real processes detector, subscribed to the
kernel's proc connector, records which of the burst's processes it saw and which it judged.

Used in-process (tests/sources/detectors/test_processes.py) and, through
`python -m tests.support.execburst DIR`, under the shipped unit's credentials
(tests/deploy/test_unit_sight.py): the watcher prints `ready <mode> <reason>` once subscribed,
reads the burst's pids as one line on stdin, and prints the counts as JSON.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from sentinel.core.model import Event
from sentinel.core.settings import Duration
from sentinel.sources.base import Item
from sentinel.sources.detectors.processes import ProcessesCollector, ProcessesConfig
from sentinel.sources.detectors.procevents import Batch
from sentinel.testing import wait_until

TICK = 0.01  # each program of the burst lives 10 ms


@dataclass
class Watch:
    """A processes detector that records what exec capture handed it."""

    temp_dir: Path
    seen: set[int] = field(default_factory=set)
    judged: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        watch = self

        class Recording(ProcessesCollector):
            def on_execs(self, batch: Batch) -> list[Event]:
                with watch._lock:
                    watch.seen.update(batch.pids)
                return super().on_execs(batch)

        # the scan hourly: what is seen here was seen by exec capture
        config = ProcessesConfig(interval=Duration(3600), temp_dirs=(str(self.temp_dir),))
        self.collector = Recording(config)

    def _emitted(self, items: Sequence[Item]) -> bool:
        tick = str(self.temp_dir / "tick")
        flagged = [
            e.get("pid")
            for e in items
            if isinstance(e, Event) and e.kind == "exec_from_temp" and e.subject == tick
        ]
        with self._lock:
            self.judged.update(p for p in flagged if isinstance(p, int))
        return True

    def start(self) -> None:
        self.collector.start(self._emitted)

    def stop(self) -> None:
        self.collector.stop()

    def counts(self, pids: set[int], timeout: float = 30.0) -> dict[str, int]:
        """How many of `pids` were seen and judged, once all are seen (or `timeout` passed)."""
        with contextlib.suppress(TimeoutError):  # the counts say what is missing
            wait_until(lambda: pids <= self._seen(), timeout=timeout)
        with self._lock:
            return {"burst": len(pids), "seen": len(pids & self.seen), "judged": len(pids & self.judged)}

    def _seen(self) -> set[int]:
        with self._lock:
            return set(self.seen)


def burst(temp_dir: Path, n: int) -> set[int]:
    """Start `n` programs from `temp_dir` one after another, each living 10 ms; their pids."""
    tick = temp_dir / "tick"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", tick)
    pids_file = temp_dir / "pids"
    script = f"for i in $(seq {n}); do {tick} {TICK} & echo $! >> {pids_file}; wait $!; done"
    subprocess.run(["bash", "-c", script], check=True, timeout=30 + n * 0.2)
    pids = {int(p) for p in pids_file.read_text().split()}
    pids_file.unlink()
    return pids


def main(argv: list[str]) -> int:
    """The watcher as its own process (run it with the credentials under test)."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: answers
    watch = Watch(Path(argv[0]))
    watch.start()
    try:
        print("ready", watch.collector.mode, watch.collector.mode_reason, flush=True)
        pids = {int(p) for p in sys.stdin.readline().split()}
        print(json.dumps(watch.counts(pids)), flush=True)
    finally:
        watch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
