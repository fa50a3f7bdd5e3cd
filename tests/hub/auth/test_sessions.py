"""Server-side sessions: digests only in the table, idle and absolute expiry, logout."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from sentinel.hub.auth import tables
from sentinel.hub.auth.sessions import Sessions, digest
from sentinel.hub.auth.users import Users


@pytest.fixture
def user_id(hub: Any, clock: Any) -> int:
    users = Users(hub.db, hasher=PasswordHasher.from_parameters(CHEAPEST))
    return users.add("olga", password="correct horse battery staple", now=clock.time()).id


def test_the_table_keeps_a_digest_of_the_token_never_the_token(hub: Any, user_id: int, clock: Any) -> None:
    """A copy of the database gives no session: only sha256(token) is stored."""
    sessions = Sessions(hub.db, lifetime=3600, idle=600)
    token, session = sessions.create(user_id, via="password", address="127.0.0.1", now=clock.time())
    with hub.db.read() as c:
        rows = c.execute(sa.select(tables.sessions)).mappings().all()
    assert len(rows) == 1
    assert token not in str(dict(rows[0]))
    assert rows[0]["token_hash"] == digest(token) == session.token_hash
    assert sessions.find(session.token_hash, now=clock.time()) is None  # the digest is not a token


def test_a_session_ends_after_the_idle_time(hub: Any, user_id: int, clock: Any) -> None:
    """No request for `idle` seconds ends the session; requests keep it alive."""
    sessions = Sessions(hub.db, lifetime=86400, idle=600)
    token, _ = sessions.create(user_id, via="password", address="", now=clock.time())
    for _ in range(5):
        clock.advance(300)
        assert sessions.find(token, now=clock.time()) is not None
    clock.advance(601)
    assert sessions.find(token, now=clock.time()) is None


def test_a_session_ends_at_its_lifetime_however_active(hub: Any, user_id: int, clock: Any) -> None:
    """The absolute lifetime is not extended by activity."""
    sessions = Sessions(hub.db, lifetime=1000, idle=600)
    token, _ = sessions.create(user_id, via="password", address="", now=clock.time())
    clock.advance(500)
    assert sessions.find(token, now=clock.time()) is not None
    clock.advance(501)
    assert sessions.find(token, now=clock.time()) is None


def test_logout_ends_the_session_and_prune_drops_expired_ones(hub: Any, user_id: int, clock: Any) -> None:
    """end() forgets one session; prune() removes the expired rest."""
    sessions = Sessions(hub.db, lifetime=1000, idle=600)
    one, _ = sessions.create(user_id, via="password", address="", now=clock.time())
    sessions.create(user_id, via="password", address="", now=clock.time())
    sessions.end(one)
    assert sessions.find(one, now=clock.time()) is None
    clock.advance(2000)
    assert sessions.prune(now=clock.time()) == 1


def test_each_session_has_its_own_csrf_token(hub: Any, user_id: int, clock: Any) -> None:
    """Two logins, two different form tokens, neither equal to the cookie token."""
    sessions = Sessions(hub.db, lifetime=1000, idle=600)
    t1, s1 = sessions.create(user_id, via="password", address="", now=clock.time())
    t2, s2 = sessions.create(user_id, via="password", address="", now=clock.time())
    assert len({t1, t2, s1.csrf, s2.csrf}) == 4
