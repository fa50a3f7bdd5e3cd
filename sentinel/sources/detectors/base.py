"""What every suspicious-event detector shares: its metrics, its counters and its state file.

Detectors (auth, usb, listeners, processes, outbound, accounts) emit `Event`s; the rule engine
decides what they mean. Each one also reports how much it saw and whether its source works:

- `sentinel_events_total{detector,kind}`: events emitted, by kind,
- `sentinel_events_malformed_total{detector}`: input it could not use (binary, over-long lines,
  invalid UTF-8, truncated JSON) — counted and skipped, never fatal,
- `sentinel_detector_up{detector}`: 1 while its source can be read.

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
    MetricSpec("sentinel_detector_up", "gauge", "1 while the detector can read its source.", ("detector",)),
)


class DetectorStats:
    """Thread-safe counters of one detector, turned into samples at scrape time."""

    def __init__(self, detector: str, kinds: Iterable[str] = ()) -> None:
        self.detector = detector
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter(dict.fromkeys(kinds, 0))  # zero series exist from start
        self._malformed = 0
        self._up = False

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

    def set_up(self, up: bool) -> None:
        """Record whether the source is readable right now."""
        with self._lock:
            self._up = up

    @property
    def up(self) -> bool:
        """Whether the source was readable at the last attempt."""
        with self._lock:
            return self._up

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
