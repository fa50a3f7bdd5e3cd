"""The status board reads each collector's sight when it is read: `sentinel status`, status.json and
/metrics agree on who is blind and when streaming collectors last ran."""

from __future__ import annotations

from sentinel.core.status import AgentStatus
from sentinel.exposition.collectors import collector_health
from sentinel.testing import FakeClock


def test_a_blind_detector_is_down_with_its_reason_and_last_run() -> None:
    """A streaming detector's probe says blind: status shows it down, why, and its last look."""
    status = AgentStatus(clock=FakeClock())
    status.register("usb", "streaming", sight=lambda: (False, "no USB bus to watch", 1234.5))
    status.register("health", "polled")
    rows = {c["name"]: c for c in status.snapshot()["collectors"]}
    assert rows["usb"]["up"] is False and rows["usb"]["sees"] is False
    assert rows["usb"]["reason"] == "no USB bus to watch"
    assert rows["usb"]["last_run_at"] == 1234.5
    assert rows["health"]["up"] is True and rows["health"]["reason"] == ""
    samples = {(s.name, s.label("collector")): s.value for s in collector_health(status)._samples()}
    assert samples[("sentinel_collector_last_run_timestamp_seconds", "usb")] == 1234.5


def test_a_failing_probe_is_blindness_not_a_broken_status() -> None:
    """A probe that raises makes the collector down with the error as reason."""
    status = AgentStatus(clock=FakeClock())

    def broken() -> tuple[bool, str, float | None]:
        raise RuntimeError("boom")

    status.register("x", "streaming", sight=broken)
    (row,) = status.snapshot()["collectors"]
    assert row["up"] is False and row["reason"] == "sight probe failed: boom"
