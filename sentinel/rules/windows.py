"""Approved change windows: when an IT change is expected (docs/change.md).

A window comes from one of three places:

- `[[changes.windows]]` in the config: `cron` + `duration` (a recurring slot, e.g. every Saturday
  02:00 for 4 hours, in `[changes] timezone` or the terminal's local time) or `start` + `end`
  (RFC 3339), each with an optional change `ticket`;
- a drop-in directory (`[changes] drop_in`) that change management writes: `*.toml` or `*.json`
  files holding `windows = [{start, end, ticket}, ...]` (or cron ones), read when they change;
  a file that cannot be read or parsed is logged and left out, never fatal;
- ad-hoc windows opened on the terminal (`sentinel change open --ticket CHG-123 --for 2h`), kept
  in the hazard store's audit table and handed in by the agent (`adhoc`).

Event rules with `change_window = "inside"` or `"outside"` ask `at(time)`.
"""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from sentinel.core.cron import Cron, CronError, check_cron
from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, KeyPath, field, non_negative, parse_duration
from sentinel.core.timefmt import iso

log = structlog.get_logger("sentinel.rules")

METRICS = (
    MetricSpec(
        "sentinel_change_window_open", "gauge", "1 while an approved change window is open on the terminal."
    ),
)
MAX_DROP_IN_FILES = 200
MAX_DROP_IN_BYTES = 256 * 1024


def parse_time(text: str) -> float | None:
    """An RFC 3339 time with an offset (`2026-12-05T02:00:00+08:00`, `...Z`) as seconds, or None."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _check_time(value: str) -> str | None:
    if value and parse_time(value) is None:
        return f'expected an RFC 3339 time with an offset like "2026-12-05T02:00:00+08:00", got "{value}"'
    return None


def _check_cron(value: str) -> str | None:
    return check_cron(value) if value else None


def _check_zone(value: str) -> str | None:
    if not value:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f'unknown time zone "{value}" (an IANA name like "Asia/Shanghai")'
    return None


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """One `[[changes.windows]]` entry: `cron` + `duration`, or `start` + `end`."""

    ticket: str = ""
    cron: str = field("", check=_check_cron)
    duration: Duration = field(Duration(0), check=non_negative)
    start: str = field("", check=_check_time)
    end: str = field("", check=_check_time)
    note: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Exactly one of the two forms, with what it needs."""
        if self.cron and (self.start or self.end):
            return [((), 'use either "cron" + "duration" or "start" + "end"')]
        if self.cron and self.duration <= 0:
            return [(("duration",), 'a "cron" window needs a "duration"')]
        if not self.cron and not (self.start and self.end):
            return [((), 'needs "cron" + "duration" or "start" + "end"')]
        if self.start and self.end and (parse_time(self.end) or 0) <= (parse_time(self.start) or 0):
            return [(("end",), 'must be after "start"')]
        return []


@dataclass(frozen=True, slots=True)
class ChangesConfig:
    """`[changes]`: approved change windows (docs/change.md)."""

    windows: tuple[WindowConfig, ...] = ()
    drop_in: tuple[Path, ...] = ()  # directories change management writes window files into
    timezone: str = field("", check=_check_zone)  # for cron windows; default: the terminal's


@dataclass(frozen=True, slots=True)
class Window:
    """One approved window, as it applies at a moment."""

    start: float
    end: float
    ticket: str = ""
    source: str = "config"  # config | drop-in file name | ad-hoc #id
    by: str = ""

    def describe(self) -> str:
        """`2026-12-05T02:00:00Z..2026-12-05T06:00:00Z (config)` for evidence."""
        return f"{iso(self.start)}..{iso(self.end)} ({self.source})"


class WindowLookup(Protocol):
    """What the event rules ask."""

    def at(self, when: float) -> Window | None:
        """The approved window covering `when`, or None."""
        ...


class NoWindows:
    """No windows: every change is outside one."""

    def at(self, when: float) -> Window | None:
        """None."""
        return None


NO_WINDOWS: WindowLookup = NoWindows()


@dataclass(frozen=True, slots=True)
class _Rule:
    """One window definition: fixed (start, end) or recurring (cron, duration)."""

    ticket: str
    source: str
    start: float | None = None
    end: float | None = None
    cron: Cron | None = None
    duration: float = 0.0

    def covering(self, when: float, zone: ZoneInfo | None) -> Window | None:
        if self.cron is None:
            assert self.start is not None and self.end is not None
            return (
                Window(self.start, self.end, self.ticket, self.source)
                if self.start <= when < self.end
                else None
            )
        local = datetime.fromtimestamp(when, zone)
        naive = local.replace(tzinfo=None)
        begin = self.cron.next_after(naive - timedelta(seconds=self.duration) - timedelta(minutes=1))
        if begin is None or begin > naive:
            return None
        start = begin.replace(tzinfo=zone).timestamp() if zone else begin.timestamp()
        if not start <= when < start + self.duration:
            return None
        return Window(start, start + self.duration, self.ticket, self.source)


def _duration(value: object) -> float:
    """`"4h"`, 3600 or a Duration as seconds (ValueError when it is none of those)."""
    if isinstance(value, int | float):
        return float(value)
    return float(parse_duration(str(value)))


def _rule(entry: dict[str, Any], source: str) -> _Rule:
    """A window from a config table or a drop-in entry; raises ValueError when it is not one."""
    ticket = str(entry.get("ticket", ""))
    if entry.get("cron"):
        duration = _duration(entry.get("duration", 0))
        if duration <= 0:
            raise ValueError('a "cron" window needs a "duration"')
        try:
            cron = Cron.parse(str(entry["cron"]))
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return _Rule(ticket, source, cron=cron, duration=duration)
    start, end = parse_time(str(entry.get("start", ""))), parse_time(str(entry.get("end", "")))
    if start is None or end is None or end <= start:
        raise ValueError('needs "start" and "end" (RFC 3339 with an offset), "end" after "start"')
    return _Rule(ticket, source, start=start, end=end)


def _entries(path: Path, size: int) -> list[dict[str, Any]]:
    """The `windows` tables of one drop-in file (ValueError when it holds none)."""
    if size > MAX_DROP_IN_BYTES:
        raise ValueError(f"over {MAX_DROP_IN_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    entries = data.get("windows", []) if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError('expected "windows" = a list of tables')
    return entries


class ChangeWindows:
    """The windows of `[changes]`, its drop-in directories and the ad-hoc ones, asked at a time."""

    def __init__(self, config: ChangesConfig, *, adhoc: Callable[[], Sequence[Window]] = lambda: ()) -> None:
        self.config = config
        self._adhoc = adhoc
        self._zone = ZoneInfo(config.timezone) if config.timezone else None
        self._fixed = [
            _rule(
                {"ticket": w.ticket, "cron": w.cron, "duration": w.duration, "start": w.start, "end": w.end},
                "config",
            )
            for w in config.windows
        ]
        self._lock = threading.Lock()
        self._files: dict[Path, tuple[tuple[int, int], list[_Rule]]] = {}
        self.errors = 0

    def at(self, when: float) -> Window | None:
        """The window covering `when` (ad-hoc first, then drop-in files, then the config)."""
        for window in self._adhoc():
            if window.start <= when < window.end:
                return window
        for rule in (*self._dropped_in(), *self._fixed):
            found = rule.covering(when, self._zone)
            if found is not None:
                return found
        return None

    def _dropped_in(self) -> list[_Rule]:
        out: list[_Rule] = []
        with self._lock:
            seen: set[Path] = set()
            for path in self._drop_in_files():
                seen.add(path)
                try:
                    st = path.stat()
                except OSError:
                    continue
                stamp = (st.st_mtime_ns, st.st_size)
                cached = self._files.get(path)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, self._read(path, st.st_size))
                    self._files[path] = cached
                out += cached[1]
            for gone in set(self._files) - seen:
                del self._files[gone]
        return out

    def _drop_in_files(self) -> Iterable[Path]:
        for directory in self.config.drop_in:
            try:
                names = sorted(e.name for e in os.scandir(directory) if e.is_file(follow_symlinks=False))
            except OSError:
                continue
            wanted = [n for n in names if n.endswith((".toml", ".json")) and not n.startswith(".")]
            yield from (directory / n for n in wanted[:MAX_DROP_IN_FILES])

    def _read(self, path: Path, size: int) -> list[_Rule]:
        """The windows of one drop-in file; [] (logged, counted) when it is unusable."""
        try:
            return [_rule(e, path.name) for e in _entries(path, size)]
        except (OSError, ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self.errors += 1
            log.warning("change_window_file_unusable", path=str(path), error=str(exc))
            return []


def window_samples(windows: WindowLookup, now: float) -> list[Sample]:
    """`sentinel_change_window_open` at `now` (read at scrape time)."""
    return [Sample.of("sentinel_change_window_open", 1 if windows.at(now) is not None else 0)]
