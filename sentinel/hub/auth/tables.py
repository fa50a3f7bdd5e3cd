"""The people tables, added to the hub's one MetaData (sentinel.hub.schema, step 2).

    hub_users        one row per person: name, display, argon2 hash, locale, lockout counters
    hub_user_roles   grants: (user, org unit) -> role; a grant covers the unit and all below it
    hub_sessions     server-side sessions; the cookie carries a random token, the table only
                     its SHA-256 (a copy of the database gives no one a session)

No secret is stored in the clear: passwords as argon2id hashes, session tokens as digests.
"""

from __future__ import annotations

import sqlalchemy as sa

from sentinel.hub.schema import METADATA

_SINCE = {"since": 2}

users = sa.Table(
    "hub_users",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("display", sa.Text, nullable=False, default=""),
    sa.Column("password_hash", sa.Text),  # None: single sign-on only, no password login
    sa.Column("locale", sa.String(8), nullable=False, default=""),  # "" = the hub's default
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Double),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False, default=""),
    sa.Column("password_changed_at", sa.Double),
    sa.Column("last_login_at", sa.Double),
    info=_SINCE,
)

user_roles = sa.Table(
    "hub_user_roles",
    METADATA,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("hub_users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("unit", sa.String(64), primary_key=True),  # an org unit id of the inventory
    sa.Column("role", sa.String(16), nullable=False),
    sa.CheckConstraint("role IN ('viewer', 'officer', 'verifier', 'admin')", name="ck_user_role"),
    info=_SINCE,
)

sessions = sa.Table(
    "hub_sessions",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 hex of the cookie's token
    sa.Column("user_id", sa.Integer, sa.ForeignKey("hub_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),  # the form token of this session
    sa.Column("via", sa.String(16), nullable=False),  # password | sso
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("last_seen_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),  # absolute end (session_lifetime)
    sa.Column("address", sa.String(64), nullable=False, default=""),
    sa.Index("ix_sessions_user", "user_id"),
    sa.Index("ix_sessions_expiry", "expires_at"),
    info=_SINCE,
)
