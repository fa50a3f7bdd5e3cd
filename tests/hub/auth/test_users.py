"""Users on SQLite and PostgreSQL: argon2id hashes, lockout, disabling, password changes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from sentinel.hub.auth import tables
from sentinel.hub.auth.roles import Grant, Role
from sentinel.hub.auth.sessions import Sessions
from sentinel.hub.auth.users import UserError, Users

PASSWORD = "correct horse battery staple"


@pytest.fixture
def users(hub: Any) -> Users:
    return Users(
        hub.db, hasher=PasswordHasher.from_parameters(CHEAPEST), lockout_attempts=3, lockout_period=600
    )


def test_a_password_is_kept_only_as_an_argon2id_hash(hub: Any, users: Users, clock: Any) -> None:
    """The table holds an argon2id hash, never the password."""
    users.add("olga", password=PASSWORD, grants=[Grant("east", Role.OFFICER)], now=clock.time())
    with hub.db.read() as c:
        stored = c.execute(sa.select(tables.users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_the_right_password_logs_in_and_a_wrong_one_does_not(users: Users, clock: Any) -> None:
    """authenticate() accepts the password and refuses anything else."""
    users.add("olga", password=PASSWORD, now=clock.time())
    assert users.authenticate("olga", PASSWORD, now=clock.time()).user is not None
    assert users.authenticate("olga", PASSWORD + "x", now=clock.time()).reason == "bad_password"
    assert users.authenticate("nobody", PASSWORD, now=clock.time()).reason == "unknown"


def test_repeated_failures_lock_the_account_for_the_period(users: Users, clock: Any) -> None:
    """Three failures lock the account: even the right password is refused until the period ends."""
    users.add("olga", password=PASSWORD, now=clock.time())
    results = [users.authenticate("olga", "wrong password!", now=clock.time()) for _ in range(3)]
    assert [r.locked_now for r in results] == [False, False, True]
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "locked"
    clock.advance(599)
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "locked"
    clock.advance(2)
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "ok"


def test_a_success_resets_the_failure_count(users: Users, clock: Any) -> None:
    """Failures must be consecutive to lock."""
    users.add("olga", password=PASSWORD, now=clock.time())
    for _ in range(2):
        users.authenticate("olga", "wrong password!", now=clock.time())
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "ok"
    for _ in range(2):
        users.authenticate("olga", "wrong password!", now=clock.time())
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "ok"


def test_unlock_lifts_a_lockout(users: Users, clock: Any) -> None:
    """`user unlock` lets the user in again at once."""
    users.add("olga", password=PASSWORD, now=clock.time())
    for _ in range(3):
        users.authenticate("olga", "wrong password!", now=clock.time())
    users.unlock("olga")
    assert users.authenticate("olga", PASSWORD, now=clock.time()).reason == "ok"


def test_a_disabled_user_cannot_log_in_and_loses_their_sessions(hub: Any, users: Users, clock: Any) -> None:
    """Disabling ends every session of the user and refuses their password."""
    user = users.add("olga", password=PASSWORD, now=clock.time())
    sessions = Sessions(hub.db, lifetime=3600, idle=600)
    token, _ = sessions.create(user.id, via="password", address="127.0.0.1", now=clock.time())
    users.set_disabled("olga", True)
    assert sessions.find(token, now=clock.time()) is None
    assert users.authenticate("olga", PASSWORD, now=clock.time()).user is None
    users.set_disabled("olga", False)
    assert users.authenticate("olga", PASSWORD, now=clock.time()).user is not None


def test_a_new_password_ends_the_sessions_and_replaces_the_old(hub: Any, users: Users, clock: Any) -> None:
    """passwd: old password refused, new accepted, sessions gone."""
    user = users.add("olga", password=PASSWORD, now=clock.time())
    sessions = Sessions(hub.db, lifetime=3600, idle=600)
    token, _ = sessions.create(user.id, via="password", address="127.0.0.1", now=clock.time())
    users.set_password("olga", "a whole new passphrase", now=clock.time())
    assert sessions.find(token, now=clock.time()) is None
    assert users.authenticate("olga", PASSWORD, now=clock.time()).user is None
    assert users.authenticate("olga", "a whole new passphrase", now=clock.time()).user is not None


def test_an_sso_only_user_has_no_password_login(users: Users, clock: Any) -> None:
    """A user made without a password can only come through the trusted proxy."""
    users.add("sam", password=None, now=clock.time())
    assert users.authenticate("sam", "", now=clock.time()).reason == "no_password"
    assert users.sso_login("sam", now=clock.time()).user is not None


def test_grants_replace_per_unit_and_can_be_revoked(users: Users, clock: Any) -> None:
    """One role per unit: granting again replaces it; revoking removes it."""
    users.add("olga", password=PASSWORD, grants=[Grant("east", Role.VIEWER)], now=clock.time())
    users.grant("olga", Grant("east", Role.VERIFIER))
    users.grant("olga", Grant("0201", Role.OFFICER))
    user = users.get("olga")
    assert user is not None
    assert sorted((g.unit, g.role) for g in user.grants) == [("0201", Role.OFFICER), ("east", Role.VERIFIER)]
    assert users.revoke("olga", "east")
    assert not users.revoke("olga", "east")


@pytest.mark.parametrize(
    ("name", "password"),
    [("Olga", PASSWORD), ("olga smith", PASSWORD), ("olga", "short"), ("olga", "olga-is-my-password")],
)
def test_bad_names_and_weak_passwords_are_refused(users: Users, clock: Any, name: str, password: str) -> None:
    """Names are lower-case tokens; passwords have 12+ characters and do not contain the name."""
    with pytest.raises(UserError):
        users.add(name, password=password, now=clock.time())


def test_a_name_is_taken_once(users: Users, clock: Any) -> None:
    """Adding an existing name is refused."""
    users.add("olga", password=PASSWORD, now=clock.time())
    with pytest.raises(UserError, match="already exists"):
        users.add("olga", password=PASSWORD, now=clock.time())
