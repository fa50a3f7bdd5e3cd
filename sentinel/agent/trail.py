"""The agent's watch over its own trail: verify the hash chain at start and every
`[hazards] verify_interval`; a break raises one critical `data_security` hazard.

The verification reads through its own read-only connection on its own thread (a long chain
never holds up the writer or a scrape). A broken trail stays broken — the altered rows are the
evidence — so the hazard is raised (through the writer, like any finding) when a verification
first finds breaks and again whenever the set of breaks changes, not on every run.

The same watch anchors the file-integrity baseline in the trail: the baseline's HMAC key lives
beside it, so root can re-sign a baseline at will — but not add the link `sentinel baseline`
writes. A baseline on disk whose digest is not the trail's last recorded one was replaced
outside `sentinel baseline`: a critical hazard too. A baseline the trail has never recorded
(the agent's own first one, or one older than the trail) is recorded as adopted by the agent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from sentinel.config.schema import Config
from sentinel.core.clock import Clock
from sentinel.core.db import open_database
from sentinel.core.model import Category, Finding, MetricSpec, Sample, Severity, freeze_fields
from sentinel.hazards import links
from sentinel.hazards.baselines import record_update
from sentinel.hazards.chain import Verdict
from sentinel.hazards.identity import AGENT
from sentinel.hazards.schema import STORE_FILE
from sentinel.sources.integrity.baseline import BaselineError, BaselineFiles

log = structlog.get_logger("sentinel.trail")

RULE = "audit_trail_broken"
BASELINE_RULE = "baseline_unrecorded"
ADOPTED = "the baseline in use when the trail first saw it (the agent's own, or older than the trail)"
RECHECK = 2.0  # `sentinel baseline update` writes the file, then its trail row: wait that out once
RECTIFICATION = (
    "Keep a copy of hazards.db as evidence, and treat this terminal's records as untrusted until checked",
    "Compare the trail with the central copy: `sentinel hazards verify --expect-file LINKS` "
    "(the chain links of the tickets the hub holds); `sentinel hazards trail` lists every row",
    "Find who could write the state directory when the rows changed (root, the agent's account): "
    "logins, sudo logs, the journal",
)
METRICS = (
    MetricSpec(
        "sentinel_audit_chain_verified",
        "gauge",
        "1 when the last verification found the hash-chained trail intact, 0 when broken.",
    ),
    MetricSpec("sentinel_audit_chain_breaks", "gauge", "Breaks the last verification of the trail found."),
    MetricSpec(
        "sentinel_audit_chain_last_verified_timestamp_seconds",
        "gauge",
        "When the trail was last verified (Unix time; 0 before the first verification).",
    ),
    MetricSpec(
        "sentinel_audit_chain_verify_duration_seconds",
        "gauge",
        "How long the last verification of the trail took.",
    ),
)
"""What the watch exports (the chain head itself: sentinel.exposition.hazards)."""


def unrecorded_baseline_finding(on_disk: str, recorded: str, files: BaselineFiles, now: float) -> Finding:
    """The critical finding for a baseline replaced outside `sentinel baseline`."""
    return Finding(
        rule=BASELINE_RULE,
        subject=str(files.baseline),
        state="firing",
        severity=Severity.CRITICAL,
        category=Category.DATA_SECURITY,
        title=f"The integrity baseline was replaced outside `sentinel baseline` (digest {on_disk[:16]})",
        time=now,
        evidence=freeze_fields({"digest": on_disk, "recorded_digest": recorded, "path": str(files.baseline)}),
        rectification=(
            "Whoever can write the state directory re-signed the baseline: find who (logins, sudo logs)",
            "Take a new baseline on a terminal known to be clean, with `sentinel baseline update --reason`",
        ),
        auto_resolve=False,
    )


def broken_trail_finding(verdict: Verdict, store: Path, now: float) -> Finding:
    """The critical data_security finding for a broken trail (one per store: the subject)."""
    first = verdict.first
    assert first is not None
    return Finding(
        rule=RULE,
        subject=str(store),
        state="firing",
        severity=Severity.CRITICAL,
        category=Category.DATA_SECURITY,
        title=f"The hazard audit trail was altered: {first.message}"[:300],
        time=now,
        evidence=freeze_fields(
            {
                "first_row": first.seq if first.seq is not None else -1,
                "first_problem": first.code,
                "breaks": len(verdict.breaks),
                "rows": verdict.rows,
                "head_seq": verdict.head_seq,
                "head_hash": verdict.head_hash,
                "store_id": verdict.store_id,
            }
        ),
        rectification=RECTIFICATION,
        auto_resolve=False,
    )


class TrailWatch:
    """A service (start/stop) that verifies the trail and reports what it found."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float,
        submit: Callable[[list[Finding]], None],
        clock: Clock,
        baseline: BaselineFiles | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.baseline = baseline
        self._sleep = sleep
        self._baseline_raised: tuple[str, str] | None = None
        self.interval = interval
        self._submit = submit
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last: Verdict | None = None
        self._last_at = 0.0
        self._last_duration = 0.0
        self._raised_for: tuple[tuple[int | None, str], ...] | None = None

    def start(self) -> None:
        """Verify now, then every interval, on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="trail-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join (a verification under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                self.check()
                self.check_baseline()
            except (sqlite3.Error, OSError) as exc:
                log.error("trail_verify_failed", error=str(exc))
            if self._stop.wait(self.interval):
                return

    def check(self) -> Verdict:
        """One verification: record it, log it, and raise the hazard when the breaks are new."""
        started = time.monotonic()
        conn = open_database(self.path, readonly=True)
        try:
            verdict = links.verify(conn)
        finally:
            conn.close()
        with self._lock:
            self.last, self._last_at = verdict, self.clock.time()
            self._last_duration = time.monotonic() - started
        if verdict.ok:
            log.info(
                "trail_verified",
                rows=verdict.rows,
                head_seq=verdict.head_seq,
                seconds=round(self._last_duration, 3),
            )
            return verdict
        signature = tuple((b.seq, b.code) for b in verdict.breaks)
        first = verdict.first
        assert first is not None
        log.error("trail_broken", breaks=len(verdict.breaks), first_row=first.seq, problem=first.message)
        if signature != self._raised_for:
            self._raised_for = signature
            self._submit([broken_trail_finding(verdict, self.path, self._last_at)])
        return verdict

    def check_baseline(self) -> str:
        """Anchor the baseline in the trail: "recorded", "adopted", "unrecorded" or "none"."""
        if self.baseline is None or not self.baseline.baseline.exists():
            return "none"
        try:
            on_disk = self.baseline.verify("baseline")
        except BaselineError:
            return "none"  # invalid or unreadable: the integrity monitor raises that itself
        recorded = self._recorded_digest()
        if recorded is None:
            record_update(
                self.path,
                at=self.clock.time(),
                actor=AGENT,
                action="adopt",
                reason=ADOPTED,
                old_digest="",
                new_digest=on_disk,
                entries=0,
                summary={},
            )
            log.info("baseline_adopted", digest=on_disk[:16])
            return "adopted"
        if recorded == on_disk:
            return "recorded"
        self._sleep(RECHECK)  # an update in progress records its row right after the file
        recorded = self._recorded_digest() or ""
        if recorded == on_disk:
            return "recorded"
        log.error("baseline_unrecorded", digest=on_disk[:16], recorded=recorded[:16])
        if (on_disk, recorded) != self._baseline_raised:
            self._baseline_raised = (on_disk, recorded)
            self._submit([unrecorded_baseline_finding(on_disk, recorded, self.baseline, self.clock.time())])
        return "unrecorded"

    def _recorded_digest(self) -> str | None:
        conn = open_database(self.path, readonly=True)
        try:
            row = conn.execute("SELECT new_digest FROM baseline_updates ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            conn.close()
        return str(row[0]) if row else None

    def summary(self) -> dict[str, Any] | None:
        """The last verification for status.json (`sentinel status`); None before the first."""
        with self._lock:
            verdict, at = self.last, self._last_at
        if verdict is None:
            return None
        first = verdict.first
        return {
            "verified_at": at,
            "ok": verdict.ok,
            "breaks": len(verdict.breaks),
            "first_break": first.message if first else None,
            "head": {"seq": verdict.head_seq, "hash": verdict.head_hash},
        }

    def samples(self) -> Iterator[Sample]:
        """The METRICS series (nothing verified yet: verified 0 is not claimed, only the time 0)."""
        with self._lock:
            verdict, at, duration = self.last, self._last_at, self._last_duration
        yield Sample.of("sentinel_audit_chain_last_verified_timestamp_seconds", at)
        if verdict is None:
            return
        yield Sample.of("sentinel_audit_chain_verified", 1 if verdict.ok else 0)
        yield Sample.of("sentinel_audit_chain_breaks", len(verdict.breaks))
        yield Sample.of("sentinel_audit_chain_verify_duration_seconds", duration)


def trail_watch_for(config: Config, submit: Callable[[list[Finding]], None], clock: Clock) -> TrailWatch:
    """The agent's watch over its store's trail, and over the baseline when files are watched."""
    watched = config.integrity.enabled and bool(config.integrity.watch)
    return TrailWatch(
        config.agent.state_dir / STORE_FILE,
        interval=config.hazards.verify_interval,
        submit=submit,
        clock=clock,
        baseline=BaselineFiles(config.agent.state_dir) if watched else None,
    )
