"""Property-based tests: random findings and commands never break the store's invariants."""

from __future__ import annotations

import tempfile
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.changes import HazardError
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action, State, is_legal
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.support.records import as_json

SUBJECTS = ["/", "/var", "eth0"]
PEOPLE = ["alice", "bob", "carol"]
COMMANDS = [
    Action.ACK,
    Action.START,
    Action.RESOLVE,
    Action.CLOSE,
    Action.REOPEN,
    Action.CANCEL,
    Action.NOTE,
    Action.ASSIGN,
]
HAZARD_IDS = st.integers(1, 4)

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("finding"),
            st.sampled_from(SUBJECTS),
            st.sampled_from(["firing", "cleared"]),
            st.sampled_from(list(Severity)),
            st.booleans(),
        ),
        st.tuples(
            st.just("command"), HAZARD_IDS, st.sampled_from(COMMANDS), st.sampled_from(PEOPLE), st.booleans()
        ),
        st.tuples(st.just("tick"), HAZARD_IDS, st.integers(1, 2), st.sampled_from(PEOPLE)),
        # a whole rectification round on one hazard, so closing (and the four-eyes rule) is reached
        st.tuples(st.just("close_round"), HAZARD_IDS, st.sampled_from(PEOPLE), st.sampled_from(PEOPLE)),
        st.tuples(st.just("advance"), st.integers(1, 40 * 86400)),
    ),
    min_size=1,
    max_size=60,
)


def run_step(store: HazardStore, clock: FakeClock, step: tuple[Any, ...], firing: Counter[str]) -> None:
    """Apply one generated step; refused commands must change nothing (the replay checks that)."""
    kind = step[0]
    if kind == "finding":
        _, subject, state, severity, auto = step
        store.apply(
            Finding(
                rule="r",
                subject=subject,
                state=state,
                severity=severity,
                category=Category.STABILITY,
                title="t",
                time=clock.time(),
                rectification=("fix it",),
                auto_resolve=auto,
            )
        )
        if state == "firing":
            firing[subject] += 1
    elif kind == "command":
        _, hazard_id, action, person, with_note = step
        with suppress(HazardError):
            store.act(hazard_id, action, by=person, note="because" if with_note else "", owner="team-x")
    elif kind == "tick":
        _, hazard_id, item, person = step
        with suppress(HazardError):
            store.tick(hazard_id, item, by=person)
    elif kind == "close_round":
        _, hazard_id, resolver, verifier = step
        for item in (1, 2):
            with suppress(HazardError):
                store.tick(hazard_id, item, by=resolver)
        for action, person in ((Action.RESOLVE, resolver), (Action.CLOSE, verifier)):
            with suppress(HazardError):
                store.act(hazard_id, action, by=person)
    else:
        clock.advance(step[1])
        store.check_deadlines()


def replay(history: list[dict[str, Any]]) -> str | None:
    """The state the audit trail leads to, asserting every step on the way is legal."""
    state: str | None = None
    for row in history:
        if row["to"] is None:
            continue
        if row["action"] == "raise":
            assert state is None and row["to"] == "open"
        elif row["action"] == "recur":
            assert state == "resolved" and row["to"] == "open"
        else:
            assert state is not None and row["from"] == state
            assert is_legal(State(state), State(row["to"])), row
        state = row["to"]
    return state


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_histories_keep_every_invariant(sequence: list[tuple[Any, ...]]) -> None:
    """Legal transitions only; trails replay to the state; one live record a fingerprint; none lost."""
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        store = HazardStore(
            Path(tmp) / "h.db",
            config=HazardsConfig(recurrence_count=2),
            terminal="t",
            branch="b",
            clock=clock,
        )
        firing: Counter[str] = Counter()
        try:
            for step in sequence:
                run_step(store, clock, step, firing)
            records = as_json(store.records(full=True))
            for record in records:
                assert replay(record["history"]) == record["state"]
                if record["state"] == "closed":
                    assert record["closed_by"] != record["resolved_by"]
                    assert all(item["done"] for item in record["rectification"])
            live = Counter(r["subject"] for r in records if r["state"] not in ("closed", "cancelled"))
            assert all(n == 1 for n in live.values())
            occurrences: Counter[str] = Counter()
            for record in records:
                occurrences[record["subject"]] += record["occurrences"]
            assert occurrences == firing
            assert store.integrity_check() == "ok"
        finally:
            store.close()
