"""The dispatcher: delivers outbox rows to their sinks, in order per hazard, never losing one.

One thread plans; each sink has a small worker pool (`concurrency`). A row is claimed only when
every earlier row of the same hazard for that sink is delivered or dead-lettered, and never twice
at once. Failures back off exponentially with full jitter (capped at `max_backoff`, honouring
Retry-After); permanent rejections are dead-lettered and kept for `sentinel tickets retry`. The
dispatcher wakes when the writer commits a change and also polls, because the CLI writes outbox
rows from another process.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import MetricSpec, Sample
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import Mark, Outbox, OutboxRow
from sentinel.tickets.sinks.alertmanager import AlertmanagerSink
from sentinel.tickets.sinks.base import Outcome, Sink
from sentinel.tickets.sinks.file import FileSink
from sentinel.tickets.sinks.webhook import WebhookSink

log = structlog.get_logger("sentinel.tickets")

METRICS = (
    MetricSpec("sentinel_tickets_pending", "gauge", "Tickets waiting for delivery.", ("sink",)),
    MetricSpec(
        "sentinel_ticket_oldest_pending_seconds",
        "gauge",
        "Age of the oldest undelivered ticket (0 when none).",
        ("sink",),
    ),
    MetricSpec("sentinel_tickets_dead", "gauge", "Dead-lettered tickets kept for retry.", ("sink",)),
    MetricSpec("sentinel_ticket_deliveries", "counter", "Delivery attempts by outcome.", ("sink", "outcome")),
)
"""What the dispatcher exports (served by sentinel.exposition)."""
POLL_INTERVAL = 1.0
QUEUED_PER_WORKER = 8  # rows handed to a sink's pool per worker (the pool still sends `concurrency` at once)
BASE_BACKOFF = 1.0
# a receiver's Retry-After is honoured up to this: one asking for a year (a bug, or a hostile
# proxy) must not hold a hazard's tickets back for good
RETRY_AFTER_LIMIT = 3600.0


def build_sink(config: SinkConfig) -> Sink:
    """The sink object for one `[[sinks]]` entry."""
    if config.type == "webhook":
        return WebhookSink(config)
    if config.type == "alertmanager":
        return AlertmanagerSink(config)
    return FileSink(config)


def backoff(attempts: int, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2^attempts)), at least 0.1 s."""
    ceiling = min(cap, BASE_BACKOFF * (2 ** min(attempts, 30)))
    return max(0.1, rng.uniform(0, ceiling))


@dataclass(slots=True)
class _Held:
    """A delivery outcome waiting for the store to accept it."""

    sink: str
    row: OutboxRow
    outcome: Outcome
    tries: int = 0
    retry_at: float = 0.0


class Dispatcher:
    """Delivers tickets for every enabled sink."""

    def __init__(
        self,
        store_path: Path,
        sinks: Sequence[SinkConfig],
        *,
        clock: Clock = SYSTEM_CLOCK,
        build: Callable[[SinkConfig], Sink] = build_sink,
        poll_interval: float = POLL_INTERVAL,
        seed: int | None = None,
    ) -> None:
        self.clock = clock
        self.outbox = Outbox(store_path, sinks=[c.name for c in sinks if c.enabled])
        self.sinks: dict[str, Sink] = {}
        self.broken: dict[str, str] = {}
        for config in sinks:
            if not config.enabled:
                continue
            try:
                self.sinks[config.name] = build(config)
            except (OSError, ValueError) as exc:  # e.g. an unreadable secret file: that sink waits
                self.broken[config.name] = str(exc)
                log.error("sink_unavailable", sink=config.name, error=str(exc))
        self._pools = {
            name: ThreadPoolExecutor(max_workers=s.config.concurrency, thread_name_prefix=f"sink:{name}")
            for name, s in self.sinks.items()
        }
        self._in_flight: dict[str, set[int]] = {name: set() for name in self.sinks}
        # outcomes the store could not record (disk full, locked): kept here, retried with the
        # same backoff as a failed delivery; their hazards wait, and nothing is sent again
        self._held: dict[int, _Held] = {}
        self._finished: list[_Held] = []  # delivered or failed, waiting for _record_finished
        self._recording = threading.Lock()  # one writer of outcomes at a time (group commit)
        self._resending: set[str] = set()  # Alertmanager sinks with a re-send queued or running
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll = poll_interval
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        self.outcomes: Counter[tuple[str, str]] = Counter()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start planning deliveries."""
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop planning, let in-flight attempts finish (bounded by their timeouts), close."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        for sink in self.sinks.values():
            sink.close()
        self.outbox.close()

    def wake(self, *_: Any) -> None:
        """Something was committed: look at the outbox now."""
        self._wake.set()

    # -- planning -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before planning: a wake during planning is not lost
            try:
                self.dispatch_once()
                self._resend_firing()
            except Exception:  # the dispatcher must outlive any one bad row or sink
                log.exception("dispatch_failed")
            self._wake.wait(self._poll)

    def dispatch_once(self) -> int:
        """Hand every due row to its sink's workers; returns how many were handed out."""
        self._record_held()
        now = self.clock.time()
        handed = 0
        for name, sink in self.sinks.items():
            with self._lock:
                held = {h.row.hazard_id for h in self._held.values() if h.sink == name}
                running = self._in_flight[name]
                busy = running | held
                # a few rows queued per worker: a worker that finishes takes the next at once,
                # and the planner refills when half have gone (one outbox query per batch of
                # deliveries, not per delivery)
                cap = sink.config.concurrency * QUEUED_PER_WORKER
                room = cap - (len(running) if not sink.batched else 0)
                if not sink.batched and len(running) > cap // 2:
                    room = 0
            if room <= 0 or (sink.batched and running):
                continue
            limit = 500 if sink.batched else room
            rows = self.outbox.due(name, now, limit=limit, busy=busy)
            if not rows:
                continue
            if sink.batched:
                self._submit(name, rows, batch=True)
                handed += len(rows)
                continue
            for row in rows:
                self._submit(name, [row], batch=False)
                handed += 1
        return handed

    def _submit(self, name: str, rows: list[OutboxRow], *, batch: bool) -> None:
        with self._lock:
            self._in_flight[name].update(r.hazard_id for r in rows)
        future = self._pools[name].submit(self._deliver, name, rows, batch)
        future.add_done_callback(functools.partial(self._done, name, rows))

    def _deliver(self, name: str, rows: list[OutboxRow], batch: bool) -> list[Outcome]:
        sink = self.sinks[name]
        if batch and isinstance(sink, FileSink):
            return sink.send_batch(rows)
        return [sink.send(row) for row in rows]

    def _done(self, name: str, rows: list[OutboxRow], future: Future[list[Outcome]]) -> None:
        queued = False
        try:
            if future.cancelled():  # stop() dropped it before it was sent: it stays due as it was
                return
            try:
                outcomes = future.result()
            except Exception as exc:  # a sink bug is a retry, not a lost ticket
                log.exception("sink_raised", sink=name)
                outcomes = [Outcome("retry", f"{type(exc).__name__}: {exc}")] * len(rows)
            finished = [_Held(name, row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]
            for held in finished:
                self.outcomes[(name, held.outcome.kind)] += 1
            with self._lock:
                self._finished += finished
            queued = True
        finally:
            if not queued:
                with self._lock:
                    self._in_flight[name].difference_update(r.hazard_id for r in rows)
        self._record_finished()

    def _record_finished(self) -> None:
        """Record every finished delivery in one transaction (group commit): while one worker
        writes, the others' outcomes queue up and the next writer takes them all, so a burst
        costs a sync to disk per batch, not per ticket. A row's hazard stays in flight until its
        outcome is written (or held), so its next row cannot be planned before."""
        with self._recording:
            with self._lock:
                batch, self._finished = self._finished, []
            if not batch:
                return
            try:
                marks = [self._mark(h.sink, h.row, h.outcome) for h in batch]
                self.outbox.mark(marks)
            except sqlite3.Error as exc:  # unrecorded: held and retried, never re-sent
                for held in batch:
                    self._hold(held, exc)
            else:
                for held, mark in zip(batch, marks, strict=True):
                    self._log_mark(held, mark)
            finally:
                with self._lock:
                    for held in batch:
                        self._in_flight[held.sink].discard(held.row.hazard_id)
        self._wake.set()  # the next row of these hazards may be due now

    def _hold(self, held: _Held, exc: sqlite3.Error) -> None:
        """Keep an outcome the store refused; try to record it again after a backoff."""
        held.tries += 1
        delay = backoff(held.tries, self.sinks[held.sink].config.max_backoff, self._rng)
        held.retry_at = self.clock.monotonic() + delay
        with self._lock:
            self._held[held.row.id] = held
        log.error(
            "ticket_state_write_failed",
            sink=held.sink,
            key=held.row.key,
            outcome=held.outcome.kind,
            retry_in=round(delay, 1),
            error=str(exc),
        )

    def _record_held(self) -> None:
        """Record the held outcomes whose backoff has passed (their hazards move on after)."""
        now = self.clock.monotonic()
        with self._lock:
            due = [h for h in self._held.values() if h.retry_at <= now]
        for held in due:
            try:
                self._record(held.sink, held.row, held.outcome)
            except sqlite3.Error as exc:
                self._hold(held, exc)
                continue
            with self._lock:
                self._held.pop(held.row.id, None)
            log.info("ticket_state_recorded", sink=held.sink, key=held.row.key, tries=held.tries + 1)

    def _record(self, name: str, row: OutboxRow, outcome: Outcome) -> None:
        held = _Held(name, row, outcome)
        mark = self._mark(name, row, outcome)
        self.outbox.mark([mark])
        self._log_mark(held, mark)

    def _mark(self, name: str, row: OutboxRow, outcome: Outcome) -> Mark:
        """What to write for one outcome: delivered now, dead, or retried after a backoff."""
        now = self.clock.time()
        if outcome.kind == "delivered":
            return Mark(row.id, "delivered", now)
        if outcome.kind == "dead":
            return Mark(row.id, "dead", now, outcome.error)
        cap = self.sinks[name].config.max_backoff
        asked = min(outcome.retry_after or 0.0, RETRY_AFTER_LIMIT)
        delay = max(backoff(row.attempts, cap, self._rng), asked)
        return Mark(row.id, "retry", now + delay, outcome.error)

    def _log_mark(self, held: _Held, mark: Mark) -> None:
        row = held.row
        if mark.kind == "delivered":
            log.debug("ticket_delivered", sink=held.sink, hazard_id=row.hazard_id, transition=row.transition)
        elif mark.kind == "dead":
            log.error(
                "ticket_dead_lettered", sink=held.sink, hazard_id=row.hazard_id, key=row.key, error=mark.error
            )
        else:
            log.warning(
                "ticket_retry",
                sink=held.sink,
                hazard_id=row.hazard_id,
                attempts=row.attempts + 1,
                retry_in=round(mark.at - self.clock.time(), 1),
                error=mark.error,
            )

    def _resend_firing(self) -> None:
        """Queue due re-sends on the sink's own workers: a hung Alertmanager (timeout x urls) must
        not stall planning for every other sink, and re-sends count against its concurrency."""
        now = self.clock.time()
        for name, sink in self.sinks.items():
            if not isinstance(sink, AlertmanagerSink):
                continue
            if now - sink.last_resend < sink.config.resend_interval:
                continue
            with self._lock:
                if name in self._resending:  # the last one has not finished yet
                    continue
                self._resending.add(name)
            self._pools[name].submit(self._resend, name, sink)

    def _resend(self, name: str, sink: AlertmanagerSink) -> None:
        try:
            # read when it runs, not when queued: a hazard resolved in between must not fire again
            outcome = sink.resend(self.outbox.firing(name))
            if outcome is not None:
                self.outcomes[(name, f"resend_{outcome.kind}")] += 1
        except Exception:  # a worker's exception would vanish in its Future: log it
            log.exception("resend_failed", sink=name)
        finally:
            with self._lock:
                self._resending.discard(name)

    # -- metrics ------------------------------------------------------------------------------

    def samples(self) -> Iterator[Sample]:
        """The METRICS series: pending, oldest pending age, dead-lettered and deliveries per sink."""
        stats = self.outbox.stats()
        now = self.clock.time()
        names = [*self.sinks, *self.broken]
        rows = [(name, stats.get(name, {"pending": 0.0, "oldest": 0.0, "dead": 0.0})) for name in names]
        for name, s in rows:
            yield Sample.of("sentinel_tickets_pending", s["pending"], sink=name)
        for name, s in rows:
            age = max(0.0, now - s["oldest"]) if s["pending"] else 0.0
            yield Sample.of("sentinel_ticket_oldest_pending_seconds", age, sink=name)
        for name, s in rows:
            yield Sample.of("sentinel_tickets_dead", s["dead"], sink=name)
        for name in names:
            for kind in ("delivered", "retry", "dead"):
                yield Sample.of(
                    "sentinel_ticket_deliveries", self.outcomes[(name, kind)], sink=name, outcome=kind
                )
