"""`sentinel hub …`: serve, migrate, enroll, revoke, backup, restore, export, report, user.

    sentinel hub serve     [--config FILE]                run the hub (uvicorn) on [hub] listen
    sentinel hub migrate                                  create/upgrade the schema, load the inventory
    sentinel hub enroll    TERMINAL [--rotate] [--grace 1d] [--secret-file PATH] [--by NAME]
    sentinel hub enroll    --list [--json]                enrolments (fingerprints, never secrets)
    sentinel hub revoke    TERMINAL
    sentinel hub backup    FILE                           SQLite online backup / pg_dump
    sentinel hub restore   FILE                           (stop the hub first)
    sentinel hub export    [--unit ID] (--year Y | --since D --until D) [--format markdown|csv|json]
                           [--output F]
    sentinel hub report    [--unit ID] --year Y [--kind year-end|year-start] [--format markdown|json]
                           [--output F]
    sentinel hub user …                                   people and roles (sentinel.hub.web.cli)

The config is `--config FILE`, else $SENTINEL_HUB_CONFIG, else /etc/sentinel-hub/hub.toml.
Exit codes: 0 ok, 2 usage or config error (one line on stderr, no traceback), 1 other failures.
Until the house restructure lands this runs as `python -m sentinel.hub`.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel.core.files import write_text_atomic

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A problem to print as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def parser() -> argparse.ArgumentParser:
    """The argument parser of `sentinel hub`."""
    p = argparse.ArgumentParser(prog="sentinel hub", description="The fleet ledger.")
    p.add_argument("--config", help="hub.toml (default $SENTINEL_HUB_CONFIG or /etc/sentinel-hub/hub.toml)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the hub")
    sub.add_parser("migrate", help="create or upgrade the database schema")
    enroll = sub.add_parser("enroll", help="issue a terminal's secret (shown once)")
    enroll.add_argument("terminal", nargs="?")
    enroll.add_argument(
        "--rotate", action="store_true", help="replace the secret; the old one stays valid for --grace"
    )
    enroll.add_argument(
        "--grace", default="1d", help="how long a rotated-out secret still verifies (default 1d)"
    )
    enroll.add_argument("--secret-file", help="write the secret to this file (0600) instead of printing it")
    enroll.add_argument("--by", default="", help="who enrols (default: the login name)")
    enroll.add_argument("--list", action="store_true", help="list enrolments (no secrets)")
    enroll.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="end every secret of a terminal")
    revoke.add_argument("terminal")
    backup = sub.add_parser("backup", help="back up the database")
    backup.add_argument("file")
    restore = sub.add_parser("restore", help="restore the database from a backup (hub stopped)")
    restore.add_argument("file")
    for name in ("export", "report"):
        r = sub.add_parser(name, help="the fleet ledger" if name == "export" else "the inspection report")
        r.add_argument("--unit", help="org unit id (default: the head office)")
        r.add_argument("--year", type=int)
        r.add_argument("--output", help="write here (0600) instead of stdout")
        if name == "export":
            r.add_argument("--since", help="YYYY-MM-DD")
            r.add_argument("--until", help="YYYY-MM-DD (exclusive)")
            r.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
        else:
            r.add_argument("--kind", choices=("year-end", "year-start"), default="year-end")
            r.add_argument("--format", choices=("markdown", "json"), default="markdown")
    user = sub.add_parser("user", help="people and roles (web)")
    user.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _config(path: str | None) -> Any:
    # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
    from sentinel.hub.config import HubConfigError, load

    try:
        return load(path)
    except HubConfigError as exc:
        raise CliError("; ".join(exc.problems)) from None


def _hub(config: Any) -> Any:
    # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
    from sentinel.hub.hub import Hub
    from sentinel.hub.inventory import InventoryError

    try:
        return Hub(config)
    except InventoryError as exc:
        raise CliError("; ".join(exc.problems)) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot start the hub: {exc}") from None


def _write_private(path: Path, text: str) -> None:
    """A secret or an export: 0600, atomically, never through a link (core.files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def _emit(text: str, output: str | None) -> None:
    if output:
        _write_private(Path(output), text)
    else:
        sys.stdout.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `sentinel hub` command; return its exit code."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        print(f"sentinel hub: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_FAIL


def _run(args: argparse.Namespace) -> int:
    if args.command == "user":
        try:  # the web engineer's module: people and roles
            web_cli = importlib.import_module("sentinel.hub.web.cli")
        except ModuleNotFoundError:
            raise CliError("`sentinel hub user` needs the hub's web module") from None
        code: int = web_cli.user_main(args.config, args.args)
        return code
    config = _config(args.config)
    if args.command == "serve":
        # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
        from sentinel.hub.server import serve

        return serve(config)
    hub = _hub(config)
    try:
        if args.command == "migrate":
            before, after = hub.migrate()
            print(
                f"hub database at schema version {after} (was {before}); "
                f"{len(hub.inventory.terminals)} terminal(s) in the inventory"
            )
            return EXIT_OK
        hub.migrate()
        if args.command == "enroll":
            return _enroll(hub, args)
        if args.command == "revoke":
            count = hub.keyring.revoke(args.terminal)
            print(f"revoked {count} secret(s) of {args.terminal}")
            return EXIT_OK if count else EXIT_FAIL
        if args.command in ("backup", "restore"):
            return _backup(hub, args)
        return _report(hub, args)
    finally:
        hub.db.dispose()


def _enroll(hub: Any, args: argparse.Namespace) -> int:
    # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
    from sentinel.core.settings import parse_duration
    from sentinel.core.timefmt import iso
    from sentinel.hub.keys import EnrolmentError

    if args.list:
        rows = hub.keyring.listing()
        if args.json:
            print(json.dumps(rows, indent=2, sort_keys=True))
        else:
            for r in rows:
                status = (
                    "revoked"
                    if r["revoked_at"]
                    else ("expires " + str(iso(r["expires_at"])) if r["expires_at"] else "active")
                )
                print(
                    f"{r['terminal']}\t{r['fingerprint']}\t{iso(r['created_at'])}\t{r['created_by']}\t{status}"
                )
        return EXIT_OK
    if not args.terminal:
        raise CliError("enroll needs a TERMINAL (or --list)")
    try:
        grace = parse_duration(args.grace)
    except ValueError:
        raise CliError(f'--grace: expected a duration like "1d", got "{args.grace}"') from None
    by = args.by or f"os:{getpass.getuser()}"
    try:
        secret = hub.keyring.enroll(
            args.terminal,
            hub.inventory,
            by=by,
            rotate=args.rotate,
            grace=grace,
            silent_after=hub.config.terminals.silent_after,
        )
    except EnrolmentError as exc:
        raise CliError(str(exc)) from None
    if args.secret_file:
        _write_private(Path(args.secret_file), secret + "\n")
        print(f"enrolled {args.terminal}; secret written to {args.secret_file} (0600)", file=sys.stderr)
    else:
        print(secret)
        print(
            f"enrolled {args.terminal}: put this secret (shown once) in the terminal's webhook secret_file",
            file=sys.stderr,
        )
    return EXIT_OK


def _backup(hub: Any, args: argparse.Namespace) -> int:
    # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
    from sentinel.hub.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            path = backup(hub.db, Path(args.file))
            print(
                f"backed up the hub database to {path} (the master key is not in it: keep "
                f"{hub.config.hub.key_file} safe apart)"
            )
        else:
            restore(hub.db, Path(args.file))
            print(f"restored the hub database from {args.file}")
    except BackupError as exc:
        raise CliError(str(exc), EXIT_FAIL) from None
    return EXIT_OK


def _report(hub: Any, args: argparse.Namespace) -> int:
    # start-up time: each command loads only what it needs (SQLAlchemy, uvicorn, the pages)
    from sentinel.hub.reports import Period, export_ledger, inspection_report, report_markdown
    from sentinel.hub.store import UnknownUnit

    try:
        if args.year is not None:
            period = Period.year(args.year)
        elif args.command == "export" and args.since and args.until:
            period = Period.between(args.since, args.until)
        else:
            raise CliError(
                "say the period: --year YYYY"
                + (" or --since D --until D" if args.command == "export" else "")
            )
    except ValueError as exc:
        raise CliError(f"bad period: {exc}") from None
    unit = args.unit or hub.inventory.head_office.id
    if hub.inventory.unit(unit) is None:
        raise CliError(f"no org unit {unit!r} in the inventory")
    try:
        if args.command == "export":
            text = export_ledger(hub.store, unit, period, args.format)
        else:
            report = inspection_report(hub.store, unit, period, kind=args.kind)
            text = (
                json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
                if args.format == "json"
                else report_markdown(report)
            )
    except UnknownUnit as exc:
        raise CliError(str(exc)) from None
    _emit(text, args.output)
    return EXIT_OK
