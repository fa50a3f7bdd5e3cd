"""Fixture machines for the device collectors (tests/fixtures/health/README.md)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from sentinel.core.model import Event, Sample

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"


@pytest.fixture
def machine(tmp: Path) -> Callable[[str], Path]:
    """A private copy of a fixture machine (so a test may change it); returns its root."""

    def copy(name: str) -> Path:
        target = tmp / name
        shutil.copytree(FIXTURES / name, target, symlinks=True)
        return target

    return copy


def values(items: Iterable[Sample | Event], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """label tuple -> value of every sample named `name`."""
    return {i.labels: i.value for i in items if isinstance(i, Sample) and i.name == name}


def value(items: Iterable[Sample | Event], name: str, **labels: str) -> float | None:
    """The value of one series, or None when it is absent."""
    wanted = tuple(sorted(labels.items()))
    return values(items, name).get(wanted)
