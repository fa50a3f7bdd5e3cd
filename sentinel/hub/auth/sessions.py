"""Server-side sessions and their CSRF tokens.

The cookie carries 32 random bytes; the table keeps only their SHA-256, so a copy of the
database (a backup, a replica) gives no one a session. A session ends at the first of: logout,
`session_idle` without a request, `session_lifetime` after login, a password change, the user
being disabled. Each session has its own CSRF token, compared in constant time on every
state-changing request (synchronizer token pattern); a new login always makes a new session,
so a token planted before login is worthless after it (no session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from sentinel.hub.auth import tables
from sentinel.hub.db import Database

TOUCH_EVERY = 60.0
"""Seconds between writes of last_seen_at (a page view is not a write each time)."""


def digest(token: str) -> str:
    """What the table keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (False if either is empty)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: whose it is and its form token. The cookie token is not kept here."""

    token_hash: str
    user_id: int
    csrf: str
    via: str
    created_at: float
    expires_at: float


class Sessions:
    """Creates, finds, refreshes and ends sessions."""

    def __init__(self, db: Database, *, lifetime: float, idle: float) -> None:
        self.db = db
        self.lifetime = lifetime
        self.idle = idle

    def create(self, user_id: int, *, via: str, address: str, now: float) -> tuple[str, Session]:
        """A new session: (the token for the cookie, the session)."""
        token = secrets.token_urlsafe(32)
        session = Session(digest(token), user_id, secrets.token_urlsafe(32), via, now, now + self.lifetime)
        with self.db.write() as conn:
            conn.execute(
                sa.insert(tables.sessions).values(
                    token_hash=session.token_hash,
                    user_id=user_id,
                    csrf=session.csrf,
                    via=via,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=session.expires_at,
                    address=address[:64],
                )
            )
        return token, session

    def find(self, token: str, *, now: float) -> Session | None:
        """The live session for a cookie token (refreshing its idle clock), or None."""
        if not token or len(token) > 128:
            return None
        token_hash = digest(token)
        with self.db.read() as conn:
            row = (
                conn.execute(sa.select(tables.sessions).where(tables.sessions.c.token_hash == token_hash))
                .mappings()
                .first()
            )
        if row is None:
            return None
        if row["expires_at"] <= now or row["last_seen_at"] + self.idle <= now:
            self.end(token)
            return None
        if now - row["last_seen_at"] >= TOUCH_EVERY:
            with self.db.write() as conn:
                conn.execute(
                    sa.update(tables.sessions)
                    .where(tables.sessions.c.token_hash == token_hash)
                    .values(last_seen_at=now)
                )
        return Session(
            token_hash, int(row["user_id"]), row["csrf"], row["via"], row["created_at"], row["expires_at"]
        )

    def end(self, token: str) -> None:
        """Log out: the session is gone."""
        with self.db.write() as conn:
            conn.execute(sa.delete(tables.sessions).where(tables.sessions.c.token_hash == digest(token)))

    def end_all(self, user_id: int) -> int:
        """End every session of a user; how many there were."""
        with self.db.write() as conn:
            return int(
                conn.execute(sa.delete(tables.sessions).where(tables.sessions.c.user_id == user_id)).rowcount
            )

    def prune(self, *, now: float) -> int:
        """Drop expired sessions; how many."""
        with self.db.write() as conn:
            return int(
                conn.execute(
                    sa.delete(tables.sessions).where(
                        sa.or_(
                            tables.sessions.c.expires_at <= now,
                            tables.sessions.c.last_seen_at <= now - self.idle,
                        )
                    )
                ).rowcount
            )
