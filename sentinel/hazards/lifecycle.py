"""The hazard state machine, as pure data, so the store, the CLI and the tests share one truth.

    open -> acknowledged -> rectifying -> resolved -> closed
    resolved -> open            (the condition recurs before closing, or a manual reopen)
    any state but closed -> cancelled   (a false positive, with a reason)

Skipping forward is allowed (open -> rectifying, open -> resolved): a technician who fixes a full
disk at once need not click through every state. Going backwards is not, except reopen.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class State(enum.StrEnum):
    """Where a hazard is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RECTIFYING = "rectifying"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Action(enum.StrEnum):
    """What a person (or the agent) can do to a hazard; each is one audit-trail row."""

    RAISE = "raise"
    ACK = "ack"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    CANCEL = "cancel"
    ASSIGN = "assign"
    NOTE = "note"
    CHECK = "check"
    ESCALATE = "escalate"
    OCCUR = "occur"
    SEVERITY = "severity"
    RECUR = "recur"


LIVE_STATES = frozenset({State.OPEN, State.ACKNOWLEDGED, State.RECTIFYING, State.RESOLVED})
"""States in which a new finding with the same fingerprint updates the record."""

ACTIVE_STATES = frozenset({State.OPEN, State.ACKNOWLEDGED, State.RECTIFYING})
"""States in which the deadline runs and escalation applies."""

FINAL_STATES = frozenset(State) - LIVE_STATES
"""States a record never leaves (closed, cancelled): a recurrence opens a new record."""


def states_sql(states: Iterable[State]) -> str:
    """`('open', 'acknowledged', ...)`: the SQL list of `states`, in lifecycle order.

    Every state filter in SQL is written with this, so the states live only in this module.
    The values come from the State enum, never from input.
    """
    wanted = set(states)
    return "(" + ", ".join(f"'{s.value}'" for s in State if s in wanted) + ")"


TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = {
    Action.ACK: (frozenset({State.OPEN}), State.ACKNOWLEDGED),
    Action.START: (frozenset({State.OPEN, State.ACKNOWLEDGED}), State.RECTIFYING),
    Action.RESOLVE: (ACTIVE_STATES, State.RESOLVED),
    Action.CLOSE: (frozenset({State.RESOLVED}), State.CLOSED),
    Action.REOPEN: (frozenset({State.RESOLVED}), State.OPEN),
    Action.CANCEL: (LIVE_STATES, State.CANCELLED),
}
"""Action -> (states it may start from, state it leads to)."""


class IllegalTransition(Exception):
    """An action that the state machine does not allow from the hazard's current state."""


def next_state(current: State, action: Action) -> State:
    """The state `action` leads to from `current`, or IllegalTransition with a clear message."""
    allowed_from, target = TRANSITIONS[action]
    if current not in allowed_from:
        allowed = ", ".join(sorted(s.value for s in allowed_from))
        raise IllegalTransition(
            f"cannot {action.value} a hazard that is {current.value} (allowed from: {allowed})"
        )
    return target


def is_legal(current: State, target: State) -> bool:
    """Whether any action (or the raise itself) moves `current` to `target`."""
    return any(current in src and dst == target for src, dst in TRANSITIONS.values())
