"""What a write to the store did, and what it refuses."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.hazards.lifecycle import Action, State


class HazardError(Exception):
    """A request the store refuses (unknown hazard, illegal transition, four-eyes rule...)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one write did to one hazard: the audit action and the resulting state."""

    hazard_id: int
    action: Action
    state: State
    created: bool = False
