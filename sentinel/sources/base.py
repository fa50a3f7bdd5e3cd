"""The two shapes a collector can take, and the callback they emit through.

A *polled* collector is called on its interval by the scheduler and returns what it saw. A
*streaming* collector (inotify watcher, log follower) runs its own thread between `start` and
`stop` and pushes items through the `emit` callback, which returns whether the batch was taken:
False means the pipeline dropped it (queue full, counted), and the collector may recover (the
integrity monitor rescans). Both declare the metrics they export so that /metrics can type and
document every sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from sentinel.core.attribution import NO_PACKAGES, PackageOracle
from sentinel.core.clock import Clock
from sentinel.core.model import Event, MetricSpec, Position, Sample

Item = Sample | Event | Position
Emit = Callable[[Sequence[Item]], bool]
"""Hand a batch to the pipeline; False when it was dropped (the queue stayed full)."""


@runtime_checkable
class PolledCollector(Protocol):
    """Called every `interval` seconds; returns the samples and events of one run."""

    name: str
    interval: float
    metrics: Sequence[MetricSpec]

    def collect(self) -> Iterable[Item]:
        """Observe once. May raise: the scheduler contains and counts the error."""
        ...


@runtime_checkable
class StreamingCollector(Protocol):
    """Runs its own thread; pushes items through `emit` as they happen."""

    name: str
    metrics: Sequence[MetricSpec]

    def start(self, emit: Emit) -> None:
        """Begin observing. Raising here disables the collector; the agent goes on."""
        ...

    def stop(self) -> None:
        """Stop observing and join every thread started by `start`."""
        ...

    def current(self) -> Iterable[Sample]:
        """Gauges describing the collector's own state right now (read at scrape time)."""
        ...


Collector = PolledCollector | StreamingCollector

SIGHT_METRIC = MetricSpec(
    "sentinel_detector_up",
    "gauge",
    "1 while the detector can see what it watches (source and privileges).",
    ("detector",),
)
"""Declared by every detector (and the integrity monitor): 0 means blind, `sentinel status` says why."""


@dataclass(frozen=True, slots=True)
class Sight:
    """Whether a collector can see what it is meant to watch, why not, and when it last looked.

    `last_run_at` (wall time) is for streaming collectors, whose runs the agent does not time
    itself; a polled collector leaves it None.
    """

    up: bool
    reason: str = ""
    last_run_at: float | None = None


@runtime_checkable
class Sighted(Protocol):
    """A collector that reports its sight (every detector, the integrity monitor)."""

    def sight(self) -> Sight:
        """What it can see right now; cheap (read at every status write and scrape)."""
        ...


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Context:
    """What the composition root hands every collector it builds."""

    state_dir: Path
    clock: Clock
    packages: PackageOracle = NO_PACKAGES  # the software inventory's answers (sentinel.core.attribution)


def _enabled_flag(settings: Any) -> bool:
    return bool(settings.enabled)


@dataclass(frozen=True, slots=True)
class Registration(Generic[S]):
    """One collector: its name (metrics label, status), settings and how to build it."""

    name: str
    settings: type[S]
    build: Callable[[S, Context], Collector]
    enabled: Callable[[S], bool] = _enabled_flag
    section: str = ""  # where its settings live in the config; default `collectors.<name>`
    group: str = ""  # the package it was found in (host, detectors, integrity)
    # the software inventory: built before the others, and what this returns for the built
    # collector is the `packages` oracle of every later Context
    oracle: Callable[[Any], PackageOracle | None] | None = None

    @property
    def path(self) -> str:
        """The dotted config path of its settings (`collectors.auth`, `integrity`)."""
        return self.section or f"collectors.{self.name}"
