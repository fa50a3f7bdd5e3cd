"""Roles per org unit: a grant covers its unit and everything below, and nothing beside it."""

from __future__ import annotations

import pytest

from sentinel.hub.auth.roles import REQUIRED_ROLE, Grant, HubAction, Role, may, may_read, role_at
from sentinel.hub.model import ACTION_NAMES

RIVERSIDE = ["HO", "east", "0101"]
HILLSIDE = ["HO", "west", "0201"]


def test_every_hub_action_of_the_store_has_a_required_role() -> None:
    """The role table covers exactly the actions the store queues."""
    assert {a.value for a in HubAction} == set(ACTION_NAMES) == {a.value for a in REQUIRED_ROLE}


def test_a_grant_covers_the_units_below_and_not_the_siblings() -> None:
    """An officer of east is an officer in 0101 and nobody in 0201."""
    grants = [Grant("east", Role.OFFICER)]
    assert role_at(grants, RIVERSIDE) is Role.OFFICER
    assert role_at(grants, HILLSIDE) is None
    assert not may_read(grants, HILLSIDE)
    assert role_at(grants, ["HO"]) is None  # not upwards either


def test_the_highest_grant_on_the_path_wins() -> None:
    """A viewer of the head office who verifies in 0101 verifies there."""
    grants = [Grant("HO", Role.VIEWER), Grant("0101", Role.VERIFIER)]
    assert role_at(grants, RIVERSIDE) is Role.VERIFIER
    assert role_at(grants, HILLSIDE) is Role.VIEWER


@pytest.mark.parametrize("action", list(HubAction))
def test_a_viewer_may_do_nothing(action: HubAction) -> None:
    """Viewers only read."""
    assert not may([Grant("HO", Role.VIEWER)], RIVERSIDE, action)


def test_an_officer_rectifies_but_only_a_verifier_closes() -> None:
    """Officers: ack, assign, start, note, tick, resolve. Verifiers add close, reopen, cancel."""
    officer, verifier = [Grant("east", Role.OFFICER)], [Grant("east", Role.VERIFIER)]
    officer_may = {a.value for a in HubAction if may(officer, RIVERSIDE, a)}
    verifier_may = {a.value for a in HubAction if may(verifier, RIVERSIDE, a)}
    assert officer_may == {"ack", "assign", "start", "note", "tick", "resolve"}
    assert verifier_may == officer_may | {"close", "reopen", "cancel"}
    assert all(may([Grant("HO", Role.ADMIN)], HILLSIDE, a) for a in HubAction)


def test_role_names_parse_and_unknown_ones_are_refused() -> None:
    """Role.parse names the choices on a typo."""
    assert Role.parse(" Verifier ") is Role.VERIFIER
    with pytest.raises(ValueError, match="viewer, officer, verifier, admin"):
        Role.parse("boss")
