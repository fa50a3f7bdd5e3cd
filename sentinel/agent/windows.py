"""The agent's change windows: `[changes]` and its drop-in directories (sentinel.rules.windows)
plus the ad-hoc windows `sentinel change open` recorded in the hazard store."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence

import structlog

from sentinel.config.schema import Config
from sentinel.core.clock import Clock
from sentinel.hazards import change_log
from sentinel.hazards.schema import STORE_FILE
from sentinel.rules.windows import ChangeWindows, Window

log = structlog.get_logger("sentinel.agent")

ADHOC_TTL = 1.0  # seconds the ad-hoc windows read from the store are reused


class AdhocWindows:
    """The open ad-hoc windows, read from the store at most once per ADHOC_TTL."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self._path = config.agent.state_dir / STORE_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._windows: tuple[Window, ...] = ()

    def __call__(self) -> Sequence[Window]:
        with self._lock:
            if time.monotonic() - self._read_at < ADHOC_TTL:
                return self._windows
            self._read_at = time.monotonic()
            try:
                rows = change_log.windows(self._path, since=self._clock.time() - 7 * 86400)
            except (sqlite3.Error, OSError) as exc:
                log.warning("change_windows_unreadable", error=str(exc))
                return self._windows
            self._windows = tuple(
                Window(r.starts_at, r.until, r.ticket, f"ad-hoc #{r.id}", str(r.opened_by.get("display", "")))
                for r in rows
                if r.until > r.starts_at
            )
            return self._windows


def change_windows(config: Config, clock: Clock) -> ChangeWindows:
    """The windows the agent's rules judge package operations by."""
    return ChangeWindows(config.changes, adhoc=AdhocWindows(config, clock))
