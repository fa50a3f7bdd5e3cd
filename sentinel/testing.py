"""What a user's own tests of Sentinel code (a collector of their own, a rule) can reuse.

- FakeClock: deterministic monotonic and wall time, advanced by hand.
- wait_until(): a bounded wait on a condition, instead of a sleep.

The test harness that starts real agents, receivers and certificates lives in tests/support/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_wall: float = 1_800_000_000.0, start_mono: float = 1000.0) -> None:
        self._wall = start_wall
        self._mono = start_mono
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        with self._lock:
            return self._mono

    def time(self) -> float:
        """Fake wall-clock seconds."""
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (an NTP step or a hand-set clock); may be negative."""
        with self._lock:
            self._wall += seconds


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
