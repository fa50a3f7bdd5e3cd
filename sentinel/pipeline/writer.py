"""The pipeline: collectors put batches on a bounded queue; one writer thread owns the rules and
the store (DESIGN §1).

Loss is never silent: a batch that finds the queue full is counted per collector
(`sentinel_queue_dropped_total`) and `submit` answers False, so that, for example, the file
integrity monitor can schedule a rescan. A finding that the store cannot write (disk full,
read-only) is kept in memory, counted, and retried until it lands.
"""

from __future__ import annotations

import itertools
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, Finding, Sample
from sentinel.core.status import AgentStatus
from sentinel.hazards.changes import Change
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.rules.engine import RuleEngine
from sentinel.sources.base import Item

log = structlog.get_logger("sentinel.pipeline")

MAX_RETAINED_FINDINGS = 100_000
RETRY_INTERVAL = 1.0
TRANSACTION_SIZE = 256  # findings committed together: one fsync per burst, bounded txn time
PRUNE_INTERVAL = 3600.0
STOP_PUT_TIMEOUT = 2.0  # how long a stopping log follower may wait for room for its last batch


@dataclass(frozen=True, slots=True)
class Batch:
    """What one collector run (or one streaming burst) produced."""

    collector: str
    items: tuple[Item, ...]
    declared: frozenset[str]
    complete: bool = True  # a polled run's full snapshot; series missing from it have vanished


class Pipeline:
    """The bounded queue and the writer thread that drains it."""

    def __init__(
        self,
        *,
        store: HazardStore,
        engine: RuleEngine,
        status: AgentStatus,
        capacity: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
        housekeeping_interval: float = 30.0,
        put_timeout: float = 1.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.status = status
        self.clock = clock
        self._queue: queue.Queue[Batch | Callable[[], None]] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._housekeeping_interval = housekeeping_interval
        self._put_timeout = put_timeout
        self._retained: deque[Finding] = deque(maxlen=MAX_RETAINED_FINDINGS)
        self._next_prune = clock.monotonic()
        self._listeners: list[Callable[[Sequence[Change]], None]] = []
        status.queue_depth = self._queue.qsize
        status.queue_capacity = capacity

    # -- producers ----------------------------------------------------------------------------

    def submit(self, batch: Batch) -> bool:
        """Queue a batch; False (counted, logged) when the queue stayed full."""
        try:
            self._queue.put(batch, timeout=self._put_timeout)
        except queue.Full:
            self.status.dropped(batch.collector)
            log.warning("queue_full", collector=batch.collector, items=len(batch.items))
            return False
        return True

    def submit_waiting(self, batch: Batch, stop: threading.Event) -> bool:
        """Queue a batch, waiting as long as it takes (backpressure) until `stop` is set; then
        one last bounded wait (a reload or shutdown is no reason to drop what fits).

        For sources that can wait and must not lose a line (log followers): the caller only
        moves its offset after this returns True; on False (the queue stayed full while
        stopping, counted and logged) it keeps the batch's lines unread so that the collector
        that follows it (after a reload or a restart) reads them again.
        """
        while not stop.is_set():
            try:
                self._queue.put(batch, timeout=self._put_timeout)
            except queue.Full:
                continue
            return True
        try:
            self._queue.put(batch, timeout=max(self._put_timeout, STOP_PUT_TIMEOUT))
        except queue.Full:
            self.status.dropped(batch.collector)
            log.warning("queue_full_at_stop", collector=batch.collector, items=len(batch.items))
            return False
        return True

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the writer thread (to touch the engine or store from elsewhere)."""
        self._queue.put(fn)

    def submit_findings(self, findings: Sequence[Finding]) -> None:
        """Have the writer apply findings made elsewhere (scheduled inspections, drills)."""
        batch = tuple(findings)
        self._queue.put(lambda: self._apply(batch))

    def on_changes(self, listener: Callable[[Sequence[Change]], None]) -> None:
        """Be told of hazard changes after they commit (the ticket dispatcher wakes on this)."""
        self._listeners.append(listener)

    # -- the writer ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 2.0) -> None:
        """Drain what is queued (up to `drain_timeout`), then stop and join the writer."""
        deadline = time.monotonic() + drain_timeout
        while not self._queue.empty() and time.monotonic() < deadline and self._thread:
            time.sleep(0.01)  # the writer is draining; this is shutdown, not a test wait
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=max(deadline - time.monotonic(), 0.5))

    def _run(self) -> None:
        next_housekeeping = self.clock.monotonic()
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=RETRY_INTERVAL if self._retained else 0.5)
            except queue.Empty:
                item = None
            try:
                if callable(item):
                    item()
                elif item is not None:
                    self._process(item)
                if self._retained:
                    self._apply([])
                if self.clock.monotonic() >= next_housekeeping:
                    next_housekeeping = self.clock.monotonic() + self._housekeeping_interval
                    self._housekeeping()
            except Exception:  # the writer must survive anything one batch does
                log.exception("writer_error")

    def apply_now(self, findings: Sequence[Finding]) -> None:
        """Apply findings at once; only from the writer thread (e.g. inside call_soon)."""
        self._apply(findings)

    def process_now(self, batch: Batch) -> None:
        """Process a batch synchronously (tests and one-shot commands; not thread-safe)."""
        self._process(batch)

    def _process(self, batch: Batch) -> None:
        samples = [i for i in batch.items if isinstance(i, Sample)]
        events = [i for i in batch.items if isinstance(i, Event)]
        findings: list[Finding] = []
        if batch.complete:
            findings += self.engine.on_batch(batch.declared, samples)
        for event in events:
            findings += self.engine.on_event(event)
        self._apply(findings)

    def _apply(self, findings: Iterable[Finding]) -> None:
        self._retained.extend(findings)
        changes: list[Change] = []
        applied = 0
        while self._retained:
            chunk = list(itertools.islice(self._retained, TRANSACTION_SIZE))
            try:
                results = self.store.apply_many(chunk)
            except sqlite3.Error as exc:
                self.status.store_write_error()
                log.error("store_write_failed", error=str(exc), retained=len(self._retained))
                self.store.relieve(exc)  # a full disk: free the reserve, fold the WAL back
                break
            for _ in chunk:
                self._retained.popleft()
            applied += len(chunk)
            for finding, change in zip(chunk, results, strict=True):
                if change is None:
                    continue
                changes.append(change)
                if change.action is not Action.OCCUR:  # one line per transition, not per repeat
                    log.info(
                        "hazard_" + change.action.value,
                        hazard_id=change.hazard_id,
                        rule=finding.rule,
                        severity=finding.severity.value,
                        state=change.state.value,
                    )
        if applied:
            self.status.findings_processed(applied)
        self._notify(changes)

    def _housekeeping(self) -> None:
        self.engine.housekeeping()
        self.store.keep_reserve()  # after a full disk: the reserve comes back once there is room
        try:
            self._notify(self.store.check_deadlines())
            if self.clock.monotonic() >= self._next_prune:
                self._next_prune = self.clock.monotonic() + PRUNE_INTERVAL
                pruned = self.store.prune(archive_dir=self.store.path.parent / "archive")
                if pruned:
                    log.info("hazards_pruned", count=pruned)
        except sqlite3.Error as exc:
            self.status.store_write_error()
            log.error("housekeeping_failed", error=str(exc))
            self.store.relieve(exc)

    def _notify(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for listener in self._listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("change_listener_failed")
