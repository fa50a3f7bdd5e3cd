"""The hub's one schema (SQLAlchemy Core MetaData) for SQLite and PostgreSQL, and its migrations.

Tables (all prefixed `hub_`):

    hub_meta          key/value: schema_version, created_at
    hub_org_units     head office, primary branches, branches (from the inventory)
    hub_terminals     one row per terminal: org, enrolment, last seen, version, digests, lag
    hub_enrolments    key ids of a terminal's secrets (derived from the master key, never stored)
    hub_hazards       the fleet ledger: one row per (terminal, hazard uid), the latest snapshot
    hub_history       every history row of every hazard, merged from the tickets
    hub_transitions   every ticketed transition, once (idempotency key unique)
    hub_actions       actions people queued for terminals: pending -> applied | refused
    hub_nonces        request ids seen inside the replay window (agent API)
    hub_drill_runs    drill runs and their stage results, as terminals report them
    hub_checks        inspection posture: the latest result of each check on each terminal

Migrations: `hub_meta.schema_version` holds the version. MIGRATIONS[n-1] brings a database from
version n-1 to n, in one transaction, under a lock (PostgreSQL advisory lock, SQLite write lock),
so several hub processes starting at once migrate once. A step that creates tables creates the
tables of this MetaData whose `info["since"]` is its version: another module (the web engineer's
users/sessions/roles) adds its tables to METADATA with `info={"since": N}` and a step N here.
A database newer than this code is refused.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

METADATA = sa.MetaData()
ACTIVE = ("open", "acknowledged", "rectifying")
"""States in which the deadline runs (sentinel.hazards.lifecycle.ACTIVE_STATES, as SQL values)."""

TABLE_MODULES: tuple[str, ...] = ("sentinel.hub.auth.tables", "sentinel.hub.web.queries")
"""Modules that add tables to METADATA (imported before create/migrate), e.g. the web tables."""

_ACTIVE_SQL = "state IN ('open', 'acknowledged', 'rectifying')"


def _since(version: int) -> dict[str, int]:
    return {"since": version}


def _partial(sql: str) -> dict[str, Any]:
    """A partial index on both dialects."""
    return {"sqlite_where": sa.text(sql), "postgresql_where": sa.text(sql)}


meta = sa.Table(
    "hub_meta",
    METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    info=_since(1),
)

org_units = sa.Table(
    "hub_org_units",
    METADATA,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # head_office | primary_branch | branch
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("parent_id", sa.String(64)),  # None for the head office
    sa.CheckConstraint("kind IN ('head_office', 'primary_branch', 'branch')", name="ck_org_kind"),
    info=_since(1),
)

terminals = sa.Table(
    "hub_terminals",
    METADATA,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("branch_id", sa.String(64), nullable=False),
    sa.Column("primary_id", sa.String(64), nullable=False),
    sa.Column("in_inventory", sa.Boolean, nullable=False, default=True),
    sa.Column("silent_after", sa.Double, nullable=False),  # seconds
    sa.Column("enrolled_at", sa.Double),
    sa.Column("store_id", sa.String(64)),
    sa.Column("agent_version", sa.String(64)),
    sa.Column("baseline_digest", sa.String(128)),
    sa.Column("chain_seq", sa.BigInteger),
    sa.Column("chain_hash", sa.String(128)),
    sa.Column("last_ticket_at", sa.Double),  # hub time of the last accepted ticket
    sa.Column("last_poll_at", sa.Double),  # hub time of the last signed agent API request
    sa.Column("last_seen_at", sa.Double),  # the later of the two
    sa.Column("last_lag", sa.Double),  # seconds between the transition and its arrival
    sa.Column("tickets", sa.BigInteger, nullable=False, default=0),
    sa.Index("ix_terminals_branch", "branch_id", "name"),
    sa.Index("ix_terminals_primary", "primary_id", "name"),
    sa.Index("ix_terminals_seen", "last_seen_at"),
    info=_since(1),
)

enrolments = sa.Table(
    "hub_enrolments",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("terminal", sa.String(128), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False, unique=True),  # random; the secret is derived
    sa.Column("fingerprint", sa.String(32), nullable=False),  # sha256(secret)[:16], to compare copies
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Double),  # set when a newer secret replaces it (rotation grace)
    sa.Column("revoked_at", sa.Double),
    sa.Index("ix_enrolments_terminal", "terminal", "id"),
    info=_since(1),
)

hazards = sa.Table(
    "hub_hazards",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("terminal", sa.String(128), nullable=False),
    sa.Column("uid", sa.String(64), nullable=False),  # the hazard's fleet-unique uid (issue 20)
    sa.Column("local_id", sa.BigInteger, nullable=False),  # its id in the terminal's own store
    sa.Column("store_id", sa.String(64)),
    sa.Column("branch_id", sa.String(64), nullable=False),
    sa.Column("primary_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, default=-1),  # history sequence of `record`
    sa.Column("fingerprint", sa.String(64), nullable=False, default=""),
    sa.Column("rule", sa.String(128), nullable=False, default=""),
    sa.Column("category", sa.String(32), nullable=False, default=""),
    sa.Column("severity", sa.String(16), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False, default=""),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("subject", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.Text, nullable=False, default=""),
    sa.Column("first_seen", sa.Double),
    sa.Column("last_seen", sa.Double),
    sa.Column("deadline", sa.Double),
    sa.Column("escalation_level", sa.Integer, nullable=False, default=0),
    sa.Column("recurrence_count", sa.Integer, nullable=False, default=0),
    sa.Column("occurrences", sa.BigInteger, nullable=False, default=0),
    sa.Column("drill", sa.Boolean, nullable=False, default=False),
    sa.Column("recurring", sa.Boolean, nullable=False, default=False),  # has a long-term item
    sa.Column("resolved_by", sa.Text),
    sa.Column("resolved_at", sa.Double),
    sa.Column("closed_by", sa.Text),
    sa.Column("closed_at", sa.Double),
    sa.Column("record", sa.Text, nullable=False, default="{}"),  # the latest ticket's hazard JSON
    sa.Column("updated_at", sa.Double, nullable=False),  # hub time of the last change
    sa.UniqueConstraint("terminal", "uid", name="uq_hazards_terminal_uid"),
    # The ledger page (1,000,000 hazards, p95 < 200 ms): newest first by last_seen within an org
    # unit, with one equality filter; keyset pagination on (last_seen, id).
    sa.Index("ix_hazards_seen", "last_seen", "id"),
    sa.Index("ix_hazards_branch_seen", "branch_id", "last_seen", "id"),
    sa.Index("ix_hazards_primary_seen", "primary_id", "last_seen", "id"),
    sa.Index("ix_hazards_terminal_seen", "terminal", "last_seen", "id"),
    sa.Index("ix_hazards_state_seen", "state", "last_seen", "id"),
    sa.Index("ix_hazards_branch_state", "branch_id", "state", "last_seen"),
    sa.Index("ix_hazards_primary_state", "primary_id", "state", "last_seen"),
    sa.Index("ix_hazards_severity_seen", "severity", "last_seen"),
    sa.Index("ix_hazards_category_seen", "category", "last_seen"),
    sa.Index("ix_hazards_fingerprint", "terminal", "fingerprint"),
    # the overdue/escalation board and the overdue filter: active hazards by deadline
    sa.Index("ix_hazards_active_deadline", "deadline", **_partial(_ACTIVE_SQL)),
    sa.Index("ix_hazards_recurring", "last_seen", **_partial("recurring")),
    sa.Index("ix_hazards_drill", "last_seen", **_partial("drill")),
    info=_since(1),
)

history = sa.Table(
    "hub_history",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column(
        "hazard_pk", sa.BigInteger, sa.ForeignKey("hub_hazards.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("row_key", sa.String(80), nullable=False),  # "s<seq>" or a digest of the row
    sa.Column("seq", sa.BigInteger),  # the terminal's history sequence, when the row says it
    sa.Column("at", sa.Double),
    sa.Column("actor_id", sa.Text, nullable=False, default=""),
    sa.Column("actor_display", sa.Text, nullable=False, default=""),
    sa.Column("actor_source", sa.String(16), nullable=False, default=""),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16)),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("hash", sa.String(128)),
    sa.UniqueConstraint("hazard_pk", "row_key", name="uq_history_row"),
    sa.Index("ix_history_hazard", "hazard_pk", "at", "seq"),
    info=_since(1),
)

transitions = sa.Table(
    "hub_transitions",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # the ticket's idempotency key
    sa.Column(
        "hazard_pk", sa.BigInteger, sa.ForeignKey("hub_hazards.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("terminal", sa.String(128), nullable=False),
    sa.Column("transition", sa.String(32), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("actor_id", sa.Text, nullable=False, default=""),
    sa.Column("actor_display", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.Double),  # when it happened on the terminal
    sa.Column("received_at", sa.Double, nullable=False),  # when the hub accepted it
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Index("ix_transitions_hazard", "hazard_pk", "seq"),
    sa.Index("ix_transitions_received", "received_at"),
    info=_since(1),
)

actions = sa.Table(
    "hub_actions",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("uid", sa.String(64), nullable=False, unique=True),  # what the terminal remembers
    sa.Column("terminal", sa.String(128), nullable=False),
    sa.Column(
        "hazard_pk", sa.BigInteger, sa.ForeignKey("hub_hazards.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("hazard_uid", sa.String(64), nullable=False),
    sa.Column("local_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.Text, nullable=False, default=""),  # assign
    sa.Column("item", sa.Integer),  # tick: the rectification item
    sa.Column("requested_by", sa.Text, nullable=False),  # the hub user name (actor id hub:<name>)
    sa.Column("requested_display", sa.Text, nullable=False, default=""),
    sa.Column("requested_at", sa.Double, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, default="pending"),
    sa.Column("lease_until", sa.Double),  # handed to a poll until then; re-offered after
    sa.Column("offered", sa.Integer, nullable=False, default=0),  # how many polls received it
    sa.Column("result_at", sa.Double),
    sa.Column("reason", sa.Text, nullable=False, default=""),  # why the terminal refused it
    sa.Column("result_seq", sa.BigInteger),  # the history sequence the terminal wrote for it
    sa.CheckConstraint("state IN ('pending', 'applied', 'refused')", name="ck_action_state"),
    sa.Index("ix_actions_pending", "terminal", "state", "id"),
    sa.Index("ix_actions_hazard", "hazard_pk", "id"),
    sa.Index("ix_actions_state", "state", "requested_at"),
    info=_since(1),
)

nonces = sa.Table(
    "hub_nonces",
    METADATA,
    sa.Column("nonce", sa.String(200), primary_key=True),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Index("ix_nonces_expiry", "expires_at"),
    info=_since(1),
)

drill_runs = sa.Table(
    "hub_drill_runs",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("terminal", sa.String(128), nullable=False),
    sa.Column("run_key", sa.String(128), nullable=False),  # store id + local run id
    sa.Column("branch_id", sa.String(64), nullable=False),
    sa.Column("primary_id", sa.String(64), nullable=False),
    sa.Column("scenario", sa.String(128), nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False, default=""),
    sa.Column("stages", sa.Text, nullable=False, default="[]"),
    sa.UniqueConstraint("terminal", "run_key", name="uq_drill_run"),
    sa.Index("ix_drills_branch", "branch_id", "started_at"),
    info=_since(1),
)

checks = sa.Table(
    "hub_checks",
    METADATA,
    sa.Column("terminal", sa.String(128), primary_key=True),
    sa.Column("check", sa.String(128), primary_key=True),
    sa.Column("branch_id", sa.String(64), nullable=False),
    sa.Column("primary_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pass | fail | error | skip
    sa.Column("severity", sa.String(16), nullable=False, default=""),
    sa.Column("category", sa.String(32), nullable=False, default=""),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.Double, nullable=False),
    sa.Index("ix_checks_branch", "branch_id", "check"),
    info=_since(1),
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `apply(conn)` brings version-1 to version."""

    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def create_tables(version: int) -> Callable[[sa.Connection], None]:
    """A step that creates every METADATA table whose info["since"] is `version`."""

    def step(conn: sa.Connection) -> None:
        tables = [t for t in METADATA.sorted_tables if t.info.get("since") == version]
        METADATA.create_all(conn, tables=tables)

    return step


STEP_HOOKS: dict[int, list[Callable[[sa.Connection], None]]] = {}
"""More work for a step, registered by a TABLE_MODULES module when it is imported (so this module
never imports those back): e.g. sentinel/hub/web/queries.py's indexes for step 2."""


def _web_step(conn: sa.Connection) -> None:
    """Step 2 (the web engineer's): sentinel/hub/auth/tables.py, and sentinel/hub/web/queries.py's
    indexes for the ledger's counts (created with hub_hazards on a fresh database)."""
    create_tables(2)(conn)
    for hook in STEP_HOOKS.get(2, ()):
        hook(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the fleet ledger, terminals, actions", create_tables(1)),
    Migration(2, "hub users, roles per org unit, sessions; live-count indexes", _web_step),
)
"""Every step, in order. Append; never edit a released step."""


class SchemaTooNew(Exception):
    """The database was written by a newer hub; refuse rather than damage it."""


def load_table_modules() -> None:
    """Import the modules that add their tables to METADATA."""
    for name in TABLE_MODULES:
        importlib.import_module(name)


def schema_version() -> int:
    """The version this code brings a database to."""
    return len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The database's version (0 for an empty database)."""
    if not sa.inspect(conn).has_table("hub_meta"):
        return 0
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def migrate(engine: sa.Engine) -> tuple[int, int]:
    """Bring the database to schema_version(); return (version before, version after)."""
    load_table_modules()
    target = schema_version()
    with engine.begin() as conn:
        _lock(conn)
        found = current_version(conn)
        if found > target:
            raise SchemaTooNew(
                f"the hub database has schema version {found}; this hub knows up to {target} "
                "(upgrade Sentinel)"
            )
        for step in MIGRATIONS[found:]:
            step.apply(conn)
            _set_version(conn, step.version)
    return found, target


def _lock(conn: sa.Connection) -> None:
    """Serialise migrations between hub processes starting together."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(2104202101)"))
    elif conn.dialect.name == "sqlite":
        # take the write lock now, so that a second process waits instead of racing
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS hub_migration_lock (x INTEGER)")


def _set_version(conn: sa.Connection, version: int) -> None:
    updated = conn.execute(
        sa.update(meta).where(meta.c.key == "schema_version").values(value=str(version))
    ).rowcount
    if not updated:
        conn.execute(sa.insert(meta).values(key="schema_version", value=str(version)))
        conn.execute(sa.insert(meta).values(key="created_at", value=str(time.time())))
