"""The timesync collector: the kernel's STA_UNSYNC flag, faked and real."""

from __future__ import annotations

from sentinel.sources.host.timesync import (
    STA_NANO,
    STA_UNSYNC,
    TIME_ERROR,
    ClockState,
    TimesyncCollector,
    TimesyncConfig,
    read_adjtimex,
)
from tests.sources.conftest import value


def test_synchronised_clock() -> None:
    """No STA_UNSYNC and TIME_OK: synchronised; offset in microseconds."""
    state = ClockState(result=0, status=0x2001, offset=-1500, maxerror=20_000, esterror=100)
    items = list(TimesyncCollector(TimesyncConfig(), adjtimex=lambda: state).collect())
    assert value(items, "sentinel_timesync_synchronised") == 1
    assert value(items, "sentinel_timesync_offset_seconds") == -1500e-9  # 0x2000 is STA_NANO
    assert value(items, "sentinel_timesync_maxerror_seconds") == 0.02


def test_unsynchronised_clock() -> None:
    """STA_UNSYNC set (nobody disciplines the clock): not synchronised."""
    state = ClockState(
        result=TIME_ERROR, status=STA_UNSYNC, offset=0, maxerror=16_000_000, esterror=16_000_000
    )
    items = list(TimesyncCollector(TimesyncConfig(), adjtimex=lambda: state).collect())
    assert value(items, "sentinel_timesync_synchronised") == 0
    assert value(items, "sentinel_timesync_maxerror_seconds") == 16.0


def test_offset_units_follow_sta_nano() -> None:
    """Microseconds without STA_NANO, nanoseconds with it."""
    assert ClockState(0, 0, 2_000, 0, 0).offset_seconds == 0.002
    assert ClockState(0, STA_NANO, 2_000, 0, 0).offset_seconds == 2e-6


def test_live_machine() -> None:
    """adjtimex answers read-only here; the flag and the return value agree."""
    state = read_adjtimex()
    assert state.result in range(6)
    assert state.synchronised == (state.result != TIME_ERROR and not state.status & STA_UNSYNC)
    assert state.maxerror >= 0
