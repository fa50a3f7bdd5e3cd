"""Roles per org unit, and what each may do.

A user holds grants: (org unit, role). A grant covers the unit and everything below it in the
inventory (head office → primary branch → branch → terminal). Roles are ordered; each includes
the ones below it:

    viewer    reads the ledger, the hazards, the terminals and the boards
    officer   + acknowledge, assign, start, note, tick a measure, resolve
    verifier  + close (verification), reopen (verification failed), cancel (false positive)
    admin     + manages the users of its units

The terminal enforces four-eyes (whoever resolved cannot close) through its own lifecycle; the
hub also does not offer "close" to the person who resolved.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class Role(enum.IntEnum):
    """A role, ordered: a higher role may do everything a lower one may."""

    VIEWER = 1
    OFFICER = 2
    VERIFIER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """The name used in config, commands and the database."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role from its name; ValueError naming the choices otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {text!r} (choose one of: {choices})") from None


class HubAction(enum.StrEnum):
    """What a person can ask the hub to have a terminal do (DESIGN §3 lifecycle, issue 21 §4)."""

    ACK = "ack"
    ASSIGN = "assign"
    START = "start"
    NOTE = "note"
    TICK = "tick"
    RESOLVE = "resolve"
    CLOSE = "close"
    CANCEL = "cancel"
    REOPEN = "reopen"


REQUIRED_ROLE: dict[HubAction, Role] = {
    HubAction.ACK: Role.OFFICER,
    HubAction.ASSIGN: Role.OFFICER,
    HubAction.START: Role.OFFICER,
    HubAction.NOTE: Role.OFFICER,
    HubAction.TICK: Role.OFFICER,
    HubAction.RESOLVE: Role.OFFICER,
    HubAction.CLOSE: Role.VERIFIER,
    HubAction.REOPEN: Role.VERIFIER,
    HubAction.CANCEL: Role.VERIFIER,
}
"""The lowest role that may ask for each action."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One role on one org unit (and everything below it)."""

    unit: str
    role: Role


def role_at(grants: Iterable[Grant], unit_path: Sequence[str]) -> Role | None:
    """The highest role the grants give on a unit, whose path runs from the top down to it.

    `unit_path` is the chain of unit ids from the head office to the unit itself (a terminal's
    path ends with the terminal); a grant on any unit of the chain applies.
    """
    on_path = set(unit_path)
    best: Role | None = None
    for grant in grants:
        if grant.unit in on_path and (best is None or grant.role > best):
            best = grant.role
    return best


def may(grants: Iterable[Grant], unit_path: Sequence[str], action: HubAction) -> bool:
    """Whether the grants allow `action` on a hazard of the unit at the end of `unit_path`."""
    role = role_at(grants, unit_path)
    return role is not None and role >= REQUIRED_ROLE[action]


def may_read(grants: Iterable[Grant], unit_path: Sequence[str]) -> bool:
    """Whether the grants let the user see anything of this unit."""
    return role_at(grants, unit_path) is not None


def may_administer(grants: Iterable[Grant], unit_path: Sequence[str]) -> bool:
    """Whether the grants let the user manage users on this unit."""
    role = role_at(grants, unit_path)
    return role is not None and role >= Role.ADMIN
