"""The monitor's lifecycle: baseline checks at start, restarts, dropped batches, watch limits."""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from sentinel.core.model import Sample
from sentinel.core.status import AgentStatus
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.rules.engine import RuleEngine
from sentinel.sources.integrity import realtime
from sentinel.sources.integrity.baseline import BaselineFiles
from sentinel.sources.integrity.changes import PATH_KINDS
from sentinel.sources.integrity.config import ScanConfig, WatchConfig
from sentinel.testing import FakeClock, wait_until
from tests.sources.integrity.conftest import config_for
from tests.sources.integrity.rules_helper import shipped_rules
from tests.support.records import as_json


def etc_tree(tmp: Path) -> Any:
    (tmp / "etc").mkdir()
    (tmp / "etc" / "passwd").write_text("root\n")
    (tmp / "etc" / "group").write_text("root\n")
    return config_for(WatchConfig(tmp / "etc", policy="critical"))


def metric(collector: Any, name: str, **labels: str) -> float | None:
    wanted = tuple(sorted(labels.items()))
    return next((s.value for s in collector.current() if s.name == name and s.labels == wanted), None)


def test_first_start_takes_the_baseline_silently(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """No baseline and no key: the key and a signed baseline are created, nothing is reported."""
    collector, rec = run_fim(etc_tree(tmp))
    files = BaselineFiles(tmp / "state")
    assert files.load().entries.keys() == {
        str(tmp / "etc"),
        str(tmp / "etc" / "passwd"),
        str(tmp / "etc" / "group"),
    }
    assert rec.snapshot() == []
    assert metric(collector, "sentinel_fim_rescans_total", reason="startup") == 0  # it just scanned
    assert metric(collector, "sentinel_fim_baseline_valid") == 1
    assert metric(collector, "sentinel_fim_baseline_info", digest=files.load().digest[:16]) == 1


def test_the_monitor_reports_its_sight_and_last_run(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """Up with a last-run time once started (status and SentinelCollectorStalled read it)."""
    collector, _rec = run_fim(etc_tree(tmp))
    sight = collector.sight()
    assert sight.up and sight.reason == "" and sight.last_run_at is not None
    assert metric(collector, "sentinel_detector_up", detector="integrity") == 1


def test_without_auto_init_a_missing_baseline_is_no_tampering(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """auto_init = false and no baseline yet: no tamper event, no baseline written, validity 0,
    and changes are still reported against what was there at start."""
    config = dataclasses.replace(etc_tree(tmp), auto_init=False)
    collector, rec = run_fim(config)
    assert not BaselineFiles(tmp / "state").baseline.exists()
    assert metric(collector, "sentinel_fim_baseline_valid") == 0
    (tmp / "etc" / "passwd").write_text("root\nevil\n")
    rec.wait_for("modified", tmp / "etc" / "passwd")
    assert [e.kind for e in rec.snapshot()] == ["modified"]


def test_changes_while_stopped_are_reported_at_start(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """What changed while the monitor was down is reported by the startup rescan."""
    config = etc_tree(tmp)
    first, _ = run_fim(config)
    first.stop()
    (tmp / "etc" / "passwd").write_text("root\nevil\n")
    (tmp / "etc" / "group").unlink()
    (tmp / "etc" / "sudoers").write_text("ALL ALL=(ALL) NOPASSWD: ALL\n")
    second, rec = run_fim(config)
    assert rec.wait_for("modified", tmp / "etc" / "passwd").get("how") == "rescan:startup"
    assert metric(second, "sentinel_fim_rescans_total", reason="startup") == 1
    rec.wait_for("deleted", tmp / "etc" / "group")
    rec.wait_for("created", tmp / "etc" / "sudoers")


@pytest.mark.parametrize("startup_scan", ["quick", "off"])
def test_a_root_added_to_the_config_is_adopted_once(
    tmp: Path, run_fim: Callable[..., Any], startup_scan: str
) -> None:
    """What a newly watched root already holds is adopted silently by the first scan covering it
    (the startup rescan, or with that off the first fallback scan); later creations are reported."""
    config = etc_tree(tmp)
    first, _ = run_fim(config)
    first.stop()
    (tmp / "app").mkdir()
    (tmp / "app" / "old.bin").write_text("installed before\n")
    widened = config_for(
        *config.watch, WatchConfig(tmp / "app", policy="readonly", realtime=False), startup_scan=startup_scan
    )
    second, rec = run_fim(widened)
    wait_until(lambda: (metric(second, "sentinel_fim_rescans_total", reason="fallback") or 0) >= 1)
    (tmp / "app" / "new.bin").write_text("dropped in later\n")
    rec.wait_for("created", tmp / "app" / "new.bin", timeout=5)
    assert rec.kinds(tmp / "app" / "old.bin") == []
    assert rec.kinds(tmp / "app") == []


def test_reported_changes_are_not_repeated_after_restart(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """A change reported before a restart is remembered (observed.fim), not reported again."""
    config = etc_tree(tmp)
    first, rec1 = run_fim(config)
    (tmp / "etc" / "passwd").write_text("changed\n")
    rec1.wait_for("modified", tmp / "etc" / "passwd")
    first.stop()
    (tmp / "etc" / "group").write_text("changed too\n")
    _, rec2 = run_fim(config)
    rec2.wait_for("modified", tmp / "etc" / "group")
    assert rec2.kinds(tmp / "etc" / "passwd") == []


def test_tampered_baseline_detected_at_start(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """One changed byte in the baseline: baseline_tampered at start, valid 0, later changes still seen."""
    config = etc_tree(tmp)
    first, _ = run_fim(config)
    first.stop()
    files = BaselineFiles(tmp / "state")
    data = bytearray(files.baseline.read_bytes())
    data[-5] ^= 0x01
    files.baseline.write_bytes(bytes(data))
    collector, rec = run_fim(config)
    event = rec.wait_for("baseline_tampered", files.baseline)
    assert event.get("reason") == "signature"
    assert metric(collector, "sentinel_fim_baseline_valid") == 0
    (tmp / "etc" / "passwd").write_text("after\n")
    rec.wait_for("modified", tmp / "etc" / "passwd")


def test_missing_key_detected_at_start(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """A baseline without its key is reported, not silently re-created."""
    config = etc_tree(tmp)
    first, _ = run_fim(config)
    first.stop()
    BaselineFiles(tmp / "state").key.unlink()
    _, rec = run_fim(config)
    assert (
        rec.wait_for("baseline_tampered", BaselineFiles(tmp / "state").baseline).get("reason")
        == "key_missing"
    )


def test_baseline_changed_while_running_is_detected(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """Overwriting the baseline under a running monitor is seen at once."""
    _collector, rec = run_fim(etc_tree(tmp))
    files = BaselineFiles(tmp / "state")
    files.baseline.write_bytes(files.baseline.read_bytes() + b" ")
    rec.wait_for("baseline_tampered", files.baseline)


def test_dropped_batch_is_found_again(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """A batch dropped by a full pipeline queue is rolled back and re-reported by a rescan."""
    clock = FakeClock()
    store = HazardStore(tmp / "h.db", config=HazardsConfig(), terminal="t1", branch="b", clock=clock)
    pipeline = Pipeline(
        store=store,
        engine=RuleEngine(shipped_rules(), clock=clock, terminal="t1"),
        status=AgentStatus(clock=clock),
        capacity=1,
        put_timeout=0.05,
    )
    pipeline.submit(Batch("other", (), frozenset(), complete=False))  # the queue is now full
    config = etc_tree(tmp)
    collector, _ = run_fim(config)
    collector.reporter.emit = lambda items: pipeline.submit(
        Batch("integrity", tuple(items), frozenset(), complete=False)
    )
    (tmp / "etc" / "passwd").write_text("evil\n")
    wait_until(lambda: metric(collector, "sentinel_fim_rescans_total", reason="queue_drop"), timeout=5)
    pipeline.start()
    try:
        wait_until(store.records, timeout=10)
        [record] = as_json(store.records())
        assert (record["rule"], record["subject"]) == ("fim_critical_change", str(tmp / "etc" / "passwd"))
    finally:
        pipeline.stop()
        store.close()


def test_a_dropped_change_is_not_remembered_as_reported(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """Stopped after a dropped batch, before its retry: the change is reported at the next start
    (the record of what was reported is rolled back with the reference)."""
    config = etc_tree(tmp)
    first, _ = run_fim(config)
    first.reporter.emit = lambda items: False  # every batch meets a full queue
    (tmp / "etc" / "passwd").write_text("evil\n")
    wait_until(lambda: metric(first, "sentinel_fim_changes_total", kind="modified", policy="critical"))
    first.stop()  # joins the realtime thread: the drop and its rollback are done
    _, rec = run_fim(config)
    assert rec.wait_for("modified", tmp / "etc" / "passwd").get("how") == "rescan:startup"


class _LimitedFD(realtime._ReportingInotifyFD):
    """An inotify reader that runs out of watches for directories named `deep`."""

    def add_callback(self, path: bytes, mask: Any, callback: Any, id_: Any) -> Any:
        if path.endswith(b"/deep"):
            self._on_watch_failed(os.fsdecode(path), "ENOSPC")
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return super().add_callback(path, mask, callback, id_)


class _LimitedObserver(realtime.FimObserver):
    def __init__(self, on_overflow: Any, on_watch_failed: Any) -> None:
        super().__init__(on_overflow, on_watch_failed)
        self._fd.stop()
        self._fd.join()
        self._fd = _LimitedFD(on_overflow, on_watch_failed)
        self._fd.start()
        self._emitter_kwargs["inotify_fd"] = self._fd


def test_watch_limit_falls_back_to_scanning(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """A directory inotify cannot watch is reported, counted, and its changes found by scanning."""
    (tmp / "app" / "deep").mkdir(parents=True)
    (tmp / "app" / "deep" / "lib").write_text("x")
    config = config_for(
        WatchConfig(tmp / "app", policy="readonly"), scan=ScanConfig(cpu_share=1.0, fallback_interval=0.2)
    )
    collector, rec = run_fim(config, observer_factory=_LimitedObserver)
    rec.wait_for("watch_limit", "inotify")
    assert metric(collector, "sentinel_fim_unwatched_paths") == 1
    (tmp / "app" / "deep" / "lib").write_text("changed")
    assert rec.wait_for("modified", tmp / "app" / "deep" / "lib", timeout=5).get("how") == "rescan:fallback"


def test_overflow_hook_counts_and_rescans(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """An IN_Q_OVERFLOW from the kernel is counted and triggers a rescan that finds what was missed."""
    collector, rec = run_fim(etc_tree(tmp))
    observer = collector.watcher.observer
    observer._fd.stop()  # stop reading: this change is "lost" like events after an overflow
    observer._fd.join()
    (tmp / "etc" / "passwd").write_text("missed\n")
    observer._fd.handle_event(InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))
    assert rec.wait_for("modified", tmp / "etc" / "passwd").get("how") == "rescan:overflow"
    assert metric(collector, "sentinel_fim_overflows_total") == 1


def test_metrics_are_declared(tmp: Path, run_fim: Callable[..., Any]) -> None:
    """Every sample the monitor exports has a declared MetricSpec with its labels."""
    collector, rec = run_fim(etc_tree(tmp))
    (tmp / "etc" / "passwd").write_text("x\n")
    rec.wait_for("modified", tmp / "etc" / "passwd")
    specs = {m.name: m for m in collector.metrics}
    for sample in collector.current():
        assert isinstance(sample, Sample)
        assert tuple(k for k, _ in sample.labels) == tuple(sorted(specs[sample.name].labels))
    assert metric(collector, "sentinel_fim_changes_total", kind="modified", policy="critical") == 1


def test_change_counters_start_at_zero_for_every_kind_the_config_can_report(
    tmp: Path, run_fim: Callable[..., Any]
) -> None:
    """Before the first change every (kind, policy) series is there at 0, so that `increase()`
    sees the first change after a start (Prometheus' instrumentation guide); `ignore` has none."""
    (tmp / "etc").mkdir()
    (tmp / "data").mkdir()
    (tmp / "skip").mkdir()
    config = config_for(
        WatchConfig(tmp / "etc", policy="critical"),
        WatchConfig(tmp / "data", policy="data"),
        WatchConfig(tmp / "skip", policy="ignore"),
    )
    collector, _rec = run_fim(config)
    series = {s.labels: s.value for s in collector.current() if s.name == "sentinel_fim_changes_total"}
    expected = {(("kind", k), ("policy", p)) for k in PATH_KINDS for p in ("critical", "data")}
    assert set(series) == expected
    assert set(series.values()) == {0}
