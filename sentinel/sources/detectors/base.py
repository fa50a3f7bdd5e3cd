"""What every suspicious-event detector shares: its metrics, its counters and its state file.

Detectors (auth, usb, listeners, processes, outbound, accounts) emit `Event`s; the rule engine
decides what they mean. Each one also reports how much it saw and whether its source works:

- `sentinel_events_total{detector,kind}`: events emitted, by kind,
- `sentinel_events_malformed_total{detector}`: input it could not use (binary, over-long lines,
  invalid UTF-8, truncated JSON) — counted and skipped, never fatal,
- `sentinel_detector_up{detector}`: 1 while it can see what it watches; 0 when its source is
  missing or it lacks a privilege, with the reason in `sentinel status` and one log line per
  change (`detector_blind`, then `detector_sight_restored`).

Baselines, cursors and offsets live in `state_dir/detectors/<name>.json`, written atomically, so
a restart neither repeats nor forgets what was seen.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

from sentinel.core.files import write_json_atomic
from sentinel.core.model import Event, MetricSpec, Sample
from sentinel.sources.base import SIGHT_METRIC, Sight
from sentinel.sources.sight import (
    CAP_DAC_READ_SEARCH,
    CAP_SYS_PTRACE,
    missing_capabilities,
    other_users_visible,
    proc_hides,
)

log = structlog.get_logger("sentinel.detectors")

DETECTOR_METRICS = (
    MetricSpec(
        "sentinel_events_total",
        "counter",
        "Suspicious-event detector events emitted, by detector and kind.",
        ("detector", "kind"),
    ),
    MetricSpec(
        "sentinel_events_malformed_total",
        "counter",
        "Input a detector could not parse (binary, over-long, invalid UTF-8, truncated JSON), skipped.",
        ("detector",),
    ),
    SIGHT_METRIC,
)


class DetectorStats:
    """Thread-safe counters of one detector, turned into samples at scrape time."""

    def __init__(self, detector: str, kinds: Iterable[str] = ()) -> None:
        self.detector = detector
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter(dict.fromkeys(kinds, 0))  # zero series exist from start
        self._malformed = 0
        self._up = False
        self._reason = "not started"
        self._said = ""  # the reason last logged, so a blind detector says so once, not every poll
        self._last_run: float | None = None

    def counted(self, events: Iterable[Event]) -> list[Event]:
        """Count events by kind and hand them back (so `return stats.counted(events)` reads well)."""
        out = list(events)
        with self._lock:
            self._events.update(e.kind for e in out)
        return out

    def malformed(self, n: int = 1) -> None:
        """Count input that was skipped because it could not be used."""
        with self._lock:
            self._malformed += n

    def set_up(self, up: bool, reason: str = "") -> None:
        """Record whether the detector can see right now, and why not (logged when it changes)."""
        if not up and not reason:
            reason = "its source cannot be read"
        with self._lock:
            self._up, self._reason = up, "" if up else reason
            said, self._said = self._said, self._reason
        if self._reason and self._reason != said:
            log.warning("detector_blind", detector=self.detector, reason=self._reason)
        elif not self._reason and said:
            log.info("detector_sight_restored", detector=self.detector)

    def ran(self, at: float) -> None:
        """A streaming detector finished one look (its last-run time for /metrics and status)."""
        with self._lock:
            self._last_run = at

    @property
    def up(self) -> bool:
        """Whether the detector could see at the last attempt."""
        with self._lock:
            return self._up

    def sight(self) -> Sight:
        """Up, why not, and the last run a streaming detector recorded."""
        with self._lock:
            return Sight(self._up, self._reason, self._last_run)

    def count(self, kind: str) -> int:
        """Events of one kind so far."""
        with self._lock:
            return self._events[kind]

    @property
    def malformed_count(self) -> int:
        """Malformed inputs so far."""
        with self._lock:
            return self._malformed

    def samples(self) -> list[Sample]:
        """The detector's three metric families as samples."""
        with self._lock:
            events = sorted(self._events.items())
            malformed, up = self._malformed, self._up
        out = [Sample.of("sentinel_events_total", n, detector=self.detector, kind=k) for k, n in events]
        out.append(Sample.of("sentinel_events_malformed_total", malformed, detector=self.detector))
        out.append(Sample.of("sentinel_detector_up", 1 if up else 0, detector=self.detector))
        return out


class SightFromStats:
    """For detectors whose `stats` track their sight: `sight()` is what the status board reads;
    `current()` the counters a streaming detector shows at scrape time."""

    stats: DetectorStats

    def sight(self) -> Sight:
        """Up, why not, and (streaming detectors) when it last looked."""
        return self.stats.sight()

    def current(self) -> Iterable[Sample]:
        """Event counters and sight, read now."""
        return self.stats.samples()


OWNER_CAPABILITIES = (CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH)
"""Listing another user's /proc/<pid>/fd takes the second, reading its links the first."""


def owner_capabilities_missing() -> list[str]:
    """What this process lacks to tell which process owns any socket (listeners, outbound)."""
    return missing_capabilities(OWNER_CAPABILITIES)


def socket_sight(proc_root: Path, missing: list[str]) -> tuple[bool, str]:
    """Whether the socket tables and every socket's owning process can be read."""
    if not (proc_root / "net").is_dir():
        return False, f"{proc_root}/net is missing (ProcSubset=pid?): no socket tables to read"
    if missing:
        return False, f"cannot tell which process owns another user's socket: needs {' and '.join(missing)}"
    hidden = proc_hides(proc_root)
    if hidden or other_users_visible(proc_root) is False:
        return False, f"/proc hides other users' processes ({hidden or 'none visible'}): owners unknown"
    return True, ""


class StateFile:
    """A detector's persistent JSON state under `state_dir/detectors/`."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = state_dir / "detectors" / f"{name}.json"

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none (first run) or it is unreadable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a damaged state file means: learn again, say so
            log.warning("detector_state_unreadable", path=str(self.path), error=str(exc))
            return None
        return data if isinstance(data, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        """Write atomically; a failure is logged (the detector keeps working from memory)."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_json_atomic(self.path, data)
        except OSError as exc:
            log.warning("detector_state_write_failed", path=str(self.path), error=str(exc))


def read_text(path: Path, limit: int = 1 << 20) -> str | None:
    """A small text file's content (at most `limit` bytes), or None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit)
    except OSError:
        return None
    return data.decode("utf-8", "replace")
