"""Backup and restore of the hub database.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot while
  the hub keeps running; restore copies a backup back the same way, after checking that it is a
  hub database this code can read (the hub must be stopped for a restore).
- PostgreSQL: `pg_dump --format=custom` and `pg_restore --clean --if-exists`, with the password
  (if any) handed over in PGPASSWORD, never on a command line.

Backup files are created 0600. The master key (keys.py) is NOT in the database: back it up apart
(sealed); without it every terminal must be enrolled again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import sqlalchemy as sa

from sentinel.core.files import open_private
from sentinel.hub.db import Database
from sentinel.hub.schema import schema_version

PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/bin"))


class BackupError(Exception):
    """A backup or restore that could not be done (the message says why)."""


def _tool(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install Debian's postgresql-client")
    return found


def _run(tool: str, args: list[str], env: dict[str, str]) -> None:
    """Run a PostgreSQL client tool; BackupError with the end of its stderr if it fails."""
    result = subprocess.run(  # noqa: S603 - Debian's client tools, arguments from our own URL
        args, capture_output=True, text=True, env=env, check=False, timeout=3600
    )
    if result.returncode != 0:
        raise BackupError(f"{tool} failed: {result.stderr.strip()[-500:]}")


def _private_file(path: Path) -> None:
    """Create (or empty) the backup file 0600 before a tool writes it, never through a link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))


def _pg_args(db: Database) -> tuple[list[str], dict[str, str]]:
    url = db.url
    args = [
        "--host",
        url.host or "127.0.0.1",
        "--port",
        str(url.port or 5432),
        "--dbname",
        url.database or "",
    ]
    if url.username:
        args += ["--username", url.username]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if db.password:
        env["PGPASSWORD"] = db.password
    return args, env


def backup(db: Database, target: Path) -> Path:
    """Write a consistent backup of the live database to `target` (0600)."""
    _private_file(target)
    if db.is_sqlite:
        source_path = db.sqlite_path
        if source_path is None or not source_path.exists():
            raise BackupError(f"no database at {source_path}")
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)  # page by page, consistent, without stopping the writer
        finally:
            dest.close()
            source.close()
        return target
    args, env = _pg_args(db)
    _run("pg_dump", [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), *args], env)
    return target


def _check_sqlite_backup(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"{path}: not intact: {ok}")
        row = conn.execute("SELECT value FROM hub_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a hub database: {exc}") from None
    finally:
        conn.close()
    if row is None or int(row[0]) > schema_version():
        raise BackupError(f"{path}: schema version {row and row[0]} is not one this hub can read")


def restore(db: Database, source: Path) -> None:
    """Replace the database's content with the backup at `source` (stop the hub first)."""
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    if db.is_sqlite:
        _check_sqlite_backup(source)
        target = db.sqlite_path
        if target is None:
            raise BackupError("the SQLite database has no file")
        db.dispose()
        if not target.exists():
            _private_file(target)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dest = sqlite3.connect(target)
        try:
            src.backup(dest)
        finally:
            dest.close()
            src.close()
        return
    args, env = _pg_args(db)
    db.dispose()
    _run(
        "pg_restore",
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            *args,
            str(source),
        ],
        env,
    )
    with db.read() as c:
        version = c.execute(sa.text("SELECT value FROM hub_meta WHERE key = 'schema_version'")).scalar()
    if version is None:
        raise BackupError("the restored database has no hub schema")
