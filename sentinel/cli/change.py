"""`sentinel change open|close|list`: ad-hoc change windows on this terminal (docs/change.md).

- `open --ticket CHG-123 --for 2h [--from TIME] --by NAME [--note TEXT]`: package operations
  starting inside the window are recorded as info (the `package_change` rule), not as a major
  "change outside an approved window". Recorded in the hazard store's `change_windows` table
  with who opened it (the login uid, which survives sudo, and `--by`).
- `close ID --by NAME`: end a window early.
- `list [--all] [--json]`: open windows (all recent ones with `--all`); config and drop-in
  windows are listed too.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_config, printable
from sentinel.core.settings import parse_duration
from sentinel.core.timefmt import iso
from sentinel.hazards import change_log, identity
from sentinel.hazards.schema import STORE_FILE
from sentinel.rules.windows import ChangeWindows, parse_time

MAX_WINDOW = 7 * 86400.0


def configure(
    command: str, change: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `change` subcommands."""
    sub = change.add_subparsers(dest="change_command", required=True, parser_class=type(change))
    opened = sub.add_parser("open", help="open an approved change window on this terminal")
    add_config(opened)
    opened.add_argument("--ticket", required=True, metavar="ID", help="the change ticket (CHG-123)")
    opened.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="how long: 30m, 2h")
    opened.add_argument("--from", dest="start", metavar="TIME", help="RFC 3339 start (default: now)")
    opened.add_argument("--by", metavar="NAME", help="who opens it (default: your login)")
    opened.add_argument("--note", default="", metavar="TEXT")
    opened.add_argument("--json", action="store_true")
    opened.set_defaults(func=cmd_open)
    closed = sub.add_parser("close", help="close an open change window now")
    add_config(closed)
    closed.add_argument("id", type=int)
    closed.add_argument("--by", metavar="NAME", help="who closes it (default: your login)")
    closed.add_argument("--json", action="store_true")
    closed.set_defaults(func=cmd_close)
    listed = sub.add_parser("list", help="change windows: open now (--all: the recent ones)")
    add_config(listed)
    listed.add_argument("--all", action="store_true")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(func=cmd_list)


def os_actor(by: str | None) -> dict[str, Any]:
    """Who runs this command as the kernel knows it (sentinel.hazards.identity), `--by` shown."""
    return identity.os_actor(by).to_json()


def _store(args: argparse.Namespace) -> Any:
    cfg = load_config(args)
    return cfg, cfg.agent.state_dir / STORE_FILE


def cmd_open(args: argparse.Namespace) -> int:
    """Open a window; print its id."""
    _cfg, path = _store(args)
    try:
        duration = float(parse_duration(args.duration))
    except ValueError:
        raise CliError(f'--for: expected a duration like "2h" or "30m", got "{args.duration}"') from None
    if not 0 < duration <= MAX_WINDOW:
        raise CliError("--for: a window lasts more than nothing and at most 7 days")
    now = time.time()
    # whole seconds: an operation is judged at its start, which dpkg logs to the second
    start = float(int(now)) if not args.start else parse_time(args.start)
    if start is None:
        raise CliError(f'--from: expected an RFC 3339 time with an offset, got "{args.start}"')
    ticket = args.ticket.strip()
    if not ticket:
        raise CliError("--ticket: the change ticket is required")
    actor = os_actor(args.by)
    try:
        window_id = change_log.open_window(
            path, ticket=ticket, start=start, end=start + duration, actor=actor, note=args.note, at=now
        )
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot record the window in {path}: {exc}", code=EXIT_PROBLEMS) from None
    result = {
        "id": window_id,
        "ticket": ticket,
        "start": iso(start),
        "end": iso(start + duration),
        "by": actor,
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        until = iso(start + duration)
        print(f"change window #{window_id} open for {printable(ticket)}: {iso(start)} until {until}")
    return EXIT_OK


def cmd_close(args: argparse.Namespace) -> int:
    """Close a window early."""
    _cfg, path = _store(args)
    try:
        row = change_log.close_window(path, args.id, actor=os_actor(args.by), at=time.time())
    except change_log.ChangeWindowError as exc:
        raise CliError(str(exc), code=EXIT_PROBLEMS) from None
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot close the window in {path}: {exc}", code=EXIT_PROBLEMS) from None
    if args.json:
        print(json.dumps(row.to_json(), indent=2, sort_keys=True))
    else:
        print(f"change window #{row.id} ({printable(row.ticket)}) closed")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """The windows open now (or recent ones), ad-hoc and from the config."""
    cfg, path = _store(args)
    now = time.time()
    rows = change_log.windows(path, since=None if args.all else now)
    adhoc = [r.to_json() for r in rows if args.all or (r.starts_at <= now < r.until)]
    current = ChangeWindows(cfg.changes).at(now)
    configured = (
        {
            "start": iso(current.start),
            "end": iso(current.end),
            "ticket": current.ticket,
            "source": current.source,
        }
        if current is not None
        else None
    )
    if args.json:
        print(json.dumps({"adhoc": adhoc, "configured_now": configured}, indent=2, sort_keys=True))
        return EXIT_OK
    if not adhoc and configured is None:
        print("no change window open")
    for w in adhoc:
        state = "closed" if w["closed_at"] else "open"
        who = printable(str(w["opened_by"].get("display", "")))
        print(f"#{w['id']}  {printable(w['ticket'])}  {w['start']} .. {w['end']}  by {who}  {state}")
    if configured is not None:
        print(
            f"config  {printable(configured['ticket'] or '-')}  {configured['start']} .. {configured['end']}"
        )
    return EXIT_OK
