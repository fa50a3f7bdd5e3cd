"""`sentinel tickets list [--pending|--dead] [--json]`, `sentinel tickets retry ID|--all`."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable

from sentinel.cli.common import EXIT_OK, CliError, load_config, open_hazard_store, positive_int
from sentinel.hazards.schema import STORE_FILE
from sentinel.tickets.outbox import Outbox


def configure(
    command: str, tickets: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `tickets` subcommands."""
    tsub = tickets.add_subparsers(dest="tickets_command", required=True, parser_class=type(tickets))
    lst = tsub.add_parser("list", help="tickets, newest first")
    add_config(lst)
    which = lst.add_mutually_exclusive_group()
    which.add_argument("--pending", action="store_true", help="only those waiting for delivery")
    which.add_argument("--dead", action="store_true", help="only those a sink rejected for good")
    lst.add_argument("--limit", type=positive_int, default=200, metavar="N", help="at most N rows (200)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    retry = tsub.add_parser("retry", help="send dead-lettered tickets again")
    add_config(retry)
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "id", nargs="?", type=positive_int, help="one ticket's id (see `tickets list --dead`)"
    )
    target.add_argument("--all", action="store_true", help="every dead-lettered ticket")
    retry.set_defaults(func=cmd_retry)


def _outbox(args: argparse.Namespace) -> Outbox:
    config = load_config(args)
    open_hazard_store(config).close()  # creates or migrates the store, as the agent would
    try:
        return Outbox(config.agent.state_dir / STORE_FILE)
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot open the ticket outbox in {config.agent.state_dir}: {exc}") from None


def cmd_list(args: argparse.Namespace) -> int:
    """Print outbox rows."""
    outbox = _outbox(args)
    try:
        rows = outbox.listing(pending=args.pending, dead=args.dead, limit=args.limit)
    finally:
        outbox.close()
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"{'ID':>6}  {'HAZARD':>6}  {'SINK':<14} {'TRANSITION':<17} {'STATE':<10} {'TRIES':>5}  LAST ERROR")
    for r in rows:
        state = "delivered" if r["delivered_at"] else ("dead" if r["dead"] else "pending")
        print(
            f"{r['id']:>6}  {r['hazard_id']:>6}  {r['sink']:<14} {r['transition']:<17} {state:<10} "
            f"{r['attempts']:>5}  {r['last_error'] or ''}"
        )
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    """Put dead rows back in line; the running agent delivers them."""
    outbox = _outbox(args)
    try:
        count = outbox.retry(None if args.all else args.id, time.time())
    finally:
        outbox.close()
    if count == 0:
        raise CliError("no dead-lettered ticket matched" + ("" if args.all else f" id {args.id}"), code=1)
    print(f"{count} ticket(s) queued for delivery again")
    return EXIT_OK
