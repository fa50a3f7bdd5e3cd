"""Clock synchronisation, as the kernel sees it: `adjtimex(2)` with no modes (read-only).

Whatever keeps the clock in step (chrony, systemd-timesyncd, ntpd) tells the kernel through
adjtimex; the kernel sets STA_UNSYNC when nobody has for a while (its maxerror passed 16 s).
`timedatectl`'s "System clock synchronized" is this same flag. Reading it needs no privilege,
no daemon and no D-Bus, so it works on every terminal. Log timestamps, certificates and
transaction records depend on it, hence a hazard when it stays unsynchronised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration

STA_UNSYNC = 0x0040
STA_NANO = 0x2000
TIME_ERROR = 5
PER_MICRO = 1e6  # dividing (not multiplying by 1e-6) keeps 2000 µs exactly 0.002 s
PER_NANO = 1e9


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (glibc, Linux); ctypes pads it as the C compiler does."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


@dataclass(frozen=True, slots=True)
class ClockState:
    """What adjtimex reports: its return value, status bits, and error estimates (raw units)."""

    result: int
    status: int
    offset: int  # microseconds, or nanoseconds with STA_NANO
    maxerror: int  # microseconds
    esterror: int  # microseconds

    @property
    def synchronised(self) -> bool:
        """The kernel considers the clock synchronised."""
        return self.result != TIME_ERROR and not self.status & STA_UNSYNC

    @property
    def offset_seconds(self) -> float:
        """The offset in seconds, whichever unit the kernel used."""
        return self.offset / (PER_NANO if self.status & STA_NANO else PER_MICRO)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def read_adjtimex() -> ClockState:
    """Call adjtimex(2) read-only through libc; OSError when it fails."""
    libc = _libc()
    timex = _Timex()  # modes = 0: read, never adjust
    result = int(libc.adjtimex(ctypes.byref(timex)))
    if result == -1:
        errno = ctypes.get_errno()
        raise OSError(errno, f"adjtimex failed (errno {errno})")
    return ClockState(result, timex.status, timex.offset, timex.maxerror, timex.esterror)


@dataclass(frozen=True, slots=True)
class TimesyncConfig:
    """`[collectors.timesync]`."""

    enabled: bool = True
    interval: Duration = field(Duration(60), check=positive)


METRICS = (
    MetricSpec(
        "sentinel_timesync_synchronised", "gauge", "1 when the kernel considers the clock synchronised."
    ),
    MetricSpec("sentinel_timesync_offset_seconds", "gauge", "Time offset the kernel is still correcting."),
    MetricSpec("sentinel_timesync_maxerror_seconds", "gauge", "The kernel's maximum error estimate."),
    MetricSpec("sentinel_timesync_estimated_error_seconds", "gauge", "The kernel's estimated error."),
)


class TimesyncCollector:
    """Polled collector of the kernel's clock synchronisation state."""

    name = "timesync"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(self, config: TimesyncConfig, *, adjtimex: Callable[[], ClockState] = read_adjtimex) -> None:
        self.interval = float(config.interval)
        self._adjtimex = adjtimex

    def collect(self) -> Iterable[Sample]:
        """One reading (an OSError propagates: the runner counts it as a failed run)."""
        state = self._adjtimex()
        return [
            Sample.of("sentinel_timesync_synchronised", 1 if state.synchronised else 0),
            Sample.of("sentinel_timesync_offset_seconds", state.offset_seconds),
            Sample.of("sentinel_timesync_maxerror_seconds", state.maxerror / PER_MICRO),
            Sample.of("sentinel_timesync_estimated_error_seconds", state.esterror / PER_MICRO),
        ]


COLLECTOR = Registration("timesync", TimesyncConfig, build=lambda s, _ctx: TimesyncCollector(s))
