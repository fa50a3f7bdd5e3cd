"""Opening the hub database: one SQLAlchemy engine for SQLite (WAL) or PostgreSQL (psycopg 3).

`Database.write()` is a transaction that takes the write lock at its start on SQLite
(`BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead of failing at commit);
`Database.read()` is a plain one (WAL readers never wait for the writer). On PostgreSQL both are
ordinary READ COMMITTED transactions; the queue claims rows with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sentinel.core.files import open_private
from sentinel.hub.config import HubConfig


class Database:
    """The engine and the two kinds of transaction the hub uses."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        busy_timeout: float = 10.0,
        password: str = "",
        echo: bool = False,
    ) -> None:
        self.url = sa.make_url(url)
        self.password = password  # for pg_dump/pg_restore (PGPASSWORD), never logged
        if self.url.drivername in ("postgresql", "postgres"):
            self.url = self.url.set(drivername="postgresql+psycopg")
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
        if self.is_sqlite:
            self._prepare_sqlite_file()
            self.engine = sa.create_engine(
                self.url,
                echo=echo,
                hide_parameters=True,  # error messages and logs never carry ticket data
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
            )
            sa.event.listen(self.engine, "connect", _sqlite_connect(busy_timeout))
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            connect_args: dict[str, Any] = {"connect_timeout": max(1, int(busy_timeout))}
            if password:
                connect_args["password"] = password
            self.engine = sa.create_engine(
                self.url,
                echo=echo,
                hide_parameters=True,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args=connect_args,
            )

    @classmethod
    def from_config(cls, config: HubConfig) -> Database:
        """The database hub.toml names."""
        password = ""
        if config.database.password_file is not None:
            password = config.database.password_file.read_text(encoding="utf-8").strip()
        return cls(
            config.database_url,
            pool_size=config.database.pool_size,
            busy_timeout=config.database.busy_timeout,
            password=password,
            echo=config.database.echo,
        )

    def _prepare_sqlite_file(self) -> None:
        """Create the file 0600 in a 0700 directory before SQLite does (with the umask's mode)."""
        database = self.url.database
        if not database or database == ":memory:":
            return
        path = Path(database)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(open_private(path, os.O_CREAT | os.O_WRONLY))

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return "sqlite" if self.is_sqlite else "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, if that is the store."""
        return Path(self.url.database) if self.is_sqlite and self.url.database else None

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A read-write transaction, committed at the end of the block (rolled back on error)."""
        with self.engine.connect() as plain:
            conn = plain.execution_options(sentinel_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only transaction (one consistent snapshot on PostgreSQL and SQLite WAL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def lock(self, conn: sa.Connection, name: str) -> None:
        """Serialise a write transaction with every other hub process doing the same `name`
        (PostgreSQL: a transaction-scoped advisory lock; SQLite: `write()` already holds the
        database's only write lock)."""
        if not self.is_sqlite:
            key = int.from_bytes(
                hashlib.sha256(f"sentinel-hub/{name}".encode()).digest()[:8], "big", signed=True
            )
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def insert_ignore(self, table: sa.Table, index: Sequence[str]) -> Any:
        """INSERT … ON CONFLICT (index) DO NOTHING, in the dialect of this database."""
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        return dialect_insert(table).on_conflict_do_nothing(index_elements=list(index))

    def upsert(self, table: sa.Table, index: Sequence[str], update: Sequence[str]) -> Any:
        """INSERT … ON CONFLICT (index) DO UPDATE SET the `update` columns from the new row."""
        dialect_insert = sqlite.insert if self.is_sqlite else postgresql.insert
        stmt = dialect_insert(table)
        return stmt.on_conflict_do_update(
            index_elements=list(index), set_={c: stmt.excluded[c] for c in update}
        )

    def for_update(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (several hubs share a queue); SQLite's
        write transaction already holds the only write lock."""
        return select if self.is_sqlite else select.with_for_update(skip_locked=True)

    def executemany(self, conn: sa.Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Run a Core statement for many rows straight through the driver's executemany.

        The ingest hot path: SQLAlchemy compiles the statement once per key set (the SQL is still
        generated from the one schema), and the rows skip its per-row parameter processing, which
        cost more than the database itself. Values must be plain str/int/float/bool/None."""
        if not rows:
            return
        keys = tuple(rows[0])
        cache_key = (id(stmt), keys)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            sql = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
            order = tuple(sql.positiontup or ()) if conn.dialect.paramstyle == "qmark" else ()
            compiled = self._compiled[cache_key] = (str(sql), order)
        text, order = compiled
        params: list[Any] = [tuple(r[k] for k in order) for r in rows] if order else list(rows)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(text, params)
        finally:
            cursor.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_connect(busy_timeout: float) -> Any:
    def connect(dbapi_conn: Any, _record: Any) -> None:
        # our own BEGIN (below): pysqlite's implicit transactions would start too late
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")  # an acknowledged ticket survives a power cut
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    return connect


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("sentinel_write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
