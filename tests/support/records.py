"""Hazard records as their JSON contract, for tests that assert on what the CLI and tickets show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from sentinel.hazards.records import HazardRecord


@overload
def as_json(value: HazardRecord) -> dict[str, Any]: ...
@overload
def as_json(value: None) -> None: ...
@overload
def as_json(value: Sequence[HazardRecord]) -> list[dict[str, Any]]: ...


def as_json(value: HazardRecord | Sequence[HazardRecord] | None) -> Any:
    """`record.to_json()` of one record, of each of a list, or None."""
    if value is None:
        return None
    if isinstance(value, HazardRecord):
        return value.to_json()
    return [r.to_json() for r in value]
