"""Helpers for the file integrity tests: a collector on a real temporary tree, its events."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.model import Event
from sentinel.sources.integrity.config import IntegrityConfig, ScanConfig, WatchConfig
from sentinel.sources.integrity.monitor import IntegrityCollector
from sentinel.testing import wait_until


class Recorder:
    """A thread-safe emit callback that keeps every event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def __call__(self, items: Sequence[Any]) -> bool:
        with self._lock:
            self.events += [i for i in items if isinstance(i, Event)]
        return True

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def wait_for(self, kind: str, subject: str | Path, timeout: float = 2.0) -> Event:
        """The first event of `kind` about `subject`, waiting up to `timeout` seconds."""

        def found() -> Event | None:
            return next((e for e in self.snapshot() if e.kind == kind and e.subject == str(subject)), None)

        try:
            return wait_until(found, timeout=timeout, interval=0.01)  # type: ignore[no-any-return]
        except TimeoutError:
            got = [(e.kind, e.subject) for e in self.snapshot()]
            raise AssertionError(f"no {kind} for {subject} within {timeout}s; got {got}") from None

    def kinds(self, subject: str | Path) -> list[str]:
        return [e.kind for e in self.snapshot() if e.subject == str(subject)]


def config_for(*watches: WatchConfig, **kwargs: Any) -> IntegrityConfig:
    """An integrity config for tests: unthrottled scans, short fallback interval."""
    scan = kwargs.pop("scan", ScanConfig(cpu_share=1.0, fallback_interval=0.5))  # type: ignore[arg-type]
    return IntegrityConfig(watch=tuple(watches), scan=scan, **kwargs)


@pytest.fixture
def run_fim(tmp: Path) -> Iterator[Callable[..., tuple[IntegrityCollector, Recorder]]]:
    """Start collectors on tmp trees (state in tmp/state); every one is stopped at the end."""
    started: list[IntegrityCollector] = []

    def start(config: IntegrityConfig, **kwargs: Any) -> tuple[IntegrityCollector, Recorder]:
        collector = IntegrityCollector(config, state_dir=tmp / "state", **kwargs)
        recorder = Recorder()
        collector.start(recorder)
        started.append(collector)
        assert collector.wait_ready(20)
        return collector, recorder

    yield start
    for collector in started:
        collector.stop()
