"""Injectable clocks: monotonic time for intervals and durations, wall time for records.

Rule timing (`for`, windows) uses the monotonic clock so that a wall-clock jump cannot fire or
clear a rule; records and deadlines use wall time because people read them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What every component that needs time takes as a parameter."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def time(self) -> float:
        """time.time()."""
        return time.time()


SYSTEM_CLOCK = SystemClock()
