"""Hub users: argon2id password hashes, lockout after repeated failures, grants per org unit.

Logging in never tells an unknown name from a wrong password (both cost one argon2 verify and
give the same answer), and a locked account is refused before its hash is even checked, so a
guesser learns nothing and burns no CPU past the lockout.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import argon2
import sqlalchemy as sa
from argon2.profiles import RFC_9106_LOW_MEMORY

from sentinel.hub.auth import tables
from sentinel.hub.auth.roles import Grant, Role
from sentinel.hub.db import Database

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
LOCALES = ("zh_CN", "en")


class UserError(Exception):
    """A user command or form that cannot be carried out; the message says why."""


def check_name(name: str) -> str:
    """A valid user name (lower-case letters, digits, . _ @ -; at most 64), else UserError."""
    if not _NAME.match(name):
        raise UserError(
            f"user name {name!r}: use lower-case letters, digits, '.', '_', '@' or '-' (at most 64)"
        )
    return name


def check_password(password: str, name: str) -> str:
    """A password good enough for a bank's ledger (length, not the name), else UserError."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if name and name.lower() in password.lower():
        raise UserError("a password must not contain the user name")
    return password


@dataclass(frozen=True, slots=True)
class User:
    """One person as the pages and commands see them (never the hash)."""

    id: int
    name: str
    display: str
    locale: str
    disabled: bool
    locked_until: float | None
    failed_logins: int
    has_password: bool
    created_at: float
    last_login_at: float | None
    grants: tuple[Grant, ...]

    @property
    def actor_id(self) -> str:
        """The identity the terminals record for this person (CONTRACTS §3)."""
        return f"hub:{self.name}"

    @property
    def label(self) -> str:
        """What the pages show: the display name, else the user name."""
        return self.display or self.name

    def locked(self, now: float) -> bool:
        """Whether logins are refused at `now` because of repeated failures."""
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of one password login: the user, or why not (for the log, never the page)."""

    user: User | None
    reason: str  # "ok" | "unknown" | "bad_password" | "locked" | "disabled" | "no_password"
    locked_now: bool = False  # this failure locked the account


class Users:
    """The users table and its rules (lockout, grants, hashing)."""

    def __init__(
        self,
        db: Database,
        *,
        hasher: argon2.PasswordHasher | None = None,
        lockout_attempts: int = 5,
        lockout_period: float = 900.0,
    ) -> None:
        self.db = db
        self.hasher = hasher or argon2.PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        self.lockout_attempts = lockout_attempts
        self.lockout_period = lockout_period
        self._dummy_hash: str | None = None

    # -- reading ------------------------------------------------------------------------------

    def get(self, name: str) -> User | None:
        """The user called `name`, or None."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(tables.users).where(tables.users.c.name == name)).mappings().first()
            return _user(conn, row) if row else None

    def by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(tables.users).where(tables.users.c.id == user_id)).mappings().first()
            return _user(conn, row) if row else None

    def list(self) -> list[User]:
        """Every user, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(tables.users).order_by(tables.users.c.name)).mappings().all()
            return [_user(conn, row) for row in rows]

    def count(self) -> int:
        """How many users exist (the first one is made by `sentinel hub user add`)."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables.users)).scalar() or 0)

    # -- commands -----------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        password: str | None,
        display: str = "",
        grants: Sequence[Grant] = (),
        locale: str = "",
        by: str = "",
        now: float,
    ) -> User:
        """Create a user (password None: single sign-on only); UserError if the name is taken."""
        check_name(name)
        if locale and locale not in LOCALES:
            raise UserError(f"locale {locale!r}: choose one of {', '.join(LOCALES)}")
        hashed = self.hasher.hash(check_password(password, name)) if password is not None else None
        with self.db.write() as conn:
            if conn.execute(sa.select(tables.users.c.id).where(tables.users.c.name == name)).first():
                raise UserError(f"user {name!r} already exists")
            key = conn.execute(
                sa.insert(tables.users).values(
                    name=name,
                    display=display,
                    password_hash=hashed,
                    locale=locale,
                    disabled=False,
                    failed_logins=0,
                    created_at=now,
                    created_by=by,
                    password_changed_at=now if hashed else None,
                )
            ).inserted_primary_key
            assert key is not None
            user_id = int(key[0])
            for grant in grants:
                _put_grant(conn, user_id, grant)
        user = self.get(name)
        assert user is not None
        return user

    def set_password(self, name: str, password: str, *, now: float) -> None:
        """Replace a password, clear the lockout and end the user's sessions."""
        hashed = self.hasher.hash(check_password(password, name))
        with self.db.write() as conn:
            user_id = self._id(conn, name)
            conn.execute(
                sa.update(tables.users)
                .where(tables.users.c.id == user_id)
                .values(password_hash=hashed, password_changed_at=now, failed_logins=0, locked_until=None)
            )
            conn.execute(sa.delete(tables.sessions).where(tables.sessions.c.user_id == user_id))

    def grant(self, name: str, grant: Grant) -> None:
        """Give `name` a role on a unit (replacing any role it had there)."""
        with self.db.write() as conn:
            _put_grant(conn, self._id(conn, name), grant)

    def revoke(self, name: str, unit: str) -> bool:
        """Take away the user's role on a unit; False if there was none."""
        with self.db.write() as conn:
            user_id = self._id(conn, name)
            gone = conn.execute(
                sa.delete(tables.user_roles).where(
                    tables.user_roles.c.user_id == user_id, tables.user_roles.c.unit == unit
                )
            ).rowcount
            return bool(gone)

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (ending every session) or enable a user."""
        with self.db.write() as conn:
            user_id = self._id(conn, name)
            conn.execute(
                sa.update(tables.users).where(tables.users.c.id == user_id).values(disabled=disabled)
            )
            if disabled:
                conn.execute(sa.delete(tables.sessions).where(tables.sessions.c.user_id == user_id))

    def unlock(self, name: str) -> None:
        """Lift a lockout now."""
        with self.db.write() as conn:
            user_id = self._id(conn, name)
            conn.execute(
                sa.update(tables.users)
                .where(tables.users.c.id == user_id)
                .values(failed_logins=0, locked_until=None)
            )

    def set_locale(self, user_id: int, locale: str) -> None:
        """The language the user's pages are shown in."""
        if locale not in LOCALES:
            raise UserError(f"locale {locale!r}: choose one of {', '.join(LOCALES)}")
        with self.db.write() as conn:
            conn.execute(sa.update(tables.users).where(tables.users.c.id == user_id).values(locale=locale))

    def set_display(self, name: str, display: str) -> None:
        """The name shown beside the user name in the trail."""
        with self.db.write() as conn:
            user_id = self._id(conn, name)
            conn.execute(sa.update(tables.users).where(tables.users.c.id == user_id).values(display=display))

    # -- logging in ---------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, *, now: float) -> LoginResult:
        """Check a password login, counting failures and locking after `lockout_attempts`."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(tables.users).where(tables.users.c.name == name)).mappings().first()
        if row is None:
            self._burn(password)
            return LoginResult(None, "unknown")
        if row["locked_until"] is not None and row["locked_until"] > now:
            return LoginResult(None, "locked")
        if row["password_hash"] is None:
            self._burn(password)
            return LoginResult(None, "no_password")
        try:
            self.hasher.verify(row["password_hash"], password)
        except argon2.exceptions.VerificationError:
            return self._failed(int(row["id"]), now)
        except argon2.exceptions.InvalidHashError:
            return self._failed(int(row["id"]), now)
        if row["disabled"]:
            return LoginResult(None, "disabled")
        rehash = self.hasher.check_needs_rehash(row["password_hash"])
        with self.db.write() as conn:
            values: dict[str, object] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
            if rehash:
                values["password_hash"] = self.hasher.hash(password)
            conn.execute(sa.update(tables.users).where(tables.users.c.id == row["id"]).values(**values))
        return LoginResult(self.by_id(int(row["id"])), "ok")

    def sso_login(self, name: str, *, now: float) -> LoginResult:
        """A login asserted by the trusted proxy: the user must exist and be enabled."""
        user = self.get(name)
        if user is None:
            return LoginResult(None, "unknown")
        if user.disabled:
            return LoginResult(None, "disabled")
        with self.db.write() as conn:
            conn.execute(
                sa.update(tables.users).where(tables.users.c.id == user.id).values(last_login_at=now)
            )
        return LoginResult(user, "ok")

    def _failed(self, user_id: int, now: float) -> LoginResult:
        with self.db.write() as conn:
            failures = int(
                conn.execute(
                    sa.update(tables.users)
                    .where(tables.users.c.id == user_id)
                    .values(failed_logins=tables.users.c.failed_logins + 1)
                    .returning(tables.users.c.failed_logins)
                ).scalar_one()
            )
            if failures >= self.lockout_attempts:
                conn.execute(
                    sa.update(tables.users)
                    .where(tables.users.c.id == user_id)
                    .values(locked_until=now + self.lockout_period, failed_logins=0)
                )
                return LoginResult(None, "bad_password", locked_now=True)
        return LoginResult(None, "bad_password")

    def _burn(self, password: str) -> None:
        """Spend what a real verify costs, so timing does not tell which names exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not a password of anyone")
        with contextlib.suppress(argon2.exceptions.VerificationError):
            self.hasher.verify(self._dummy_hash, password)

    def _id(self, conn: sa.Connection, name: str) -> int:
        user_id = conn.execute(sa.select(tables.users.c.id).where(tables.users.c.name == name)).scalar()
        if user_id is None:
            raise UserError(f"no user {name!r}")
        return int(user_id)


def _put_grant(conn: sa.Connection, user_id: int, grant: Grant) -> None:
    conn.execute(
        sa.delete(tables.user_roles).where(
            tables.user_roles.c.user_id == user_id, tables.user_roles.c.unit == grant.unit
        )
    )
    conn.execute(sa.insert(tables.user_roles).values(user_id=user_id, unit=grant.unit, role=grant.role.label))


def _user(conn: sa.Connection, row: sa.RowMapping) -> User:
    grants = tuple(
        Grant(g.unit, Role.parse(g.role))
        for g in conn.execute(
            sa.select(tables.user_roles.c.unit, tables.user_roles.c.role)
            .where(tables.user_roles.c.user_id == row["id"])
            .order_by(tables.user_roles.c.unit)
        )
    )
    return User(
        id=int(row["id"]),
        name=row["name"],
        display=row["display"] or "",
        locale=row["locale"] or "",
        disabled=bool(row["disabled"]),
        locked_until=row["locked_until"],
        failed_logins=int(row["failed_logins"]),
        has_password=row["password_hash"] is not None,
        created_at=float(row["created_at"]),
        last_login_at=row["last_login_at"],
        grants=grants,
    )
