"""`sentinel hazards ...`: list, show, act on and export hazard records.

Works on the store while the agent runs (its own SQLite connection; WAL). Every lifecycle
command records who ran it as the kernel knows them (the login uid, which survives sudo and su;
sentinel.hazards.identity), and `--by NAME` only as the display name beside it. JSON output keys
are those of DESIGN §3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sentinel.cli import audit
from sentinel.cli.common import (
    EXIT_OK,
    CliError,
    check_output,
    clip,
    load_part,
    positive_int,
    printable,
    store_errors,
    write_report,
)
from sentinel.config.views import HazardsView
from sentinel.hazards.identity import Actor, named, os_actor
from sentinel.hazards.lifecycle import ACTIVE_STATES, Action, State
from sentinel.hazards.reading import StoreReader
from sentinel.hazards.records import HazardRecord
from sentinel.hazards.schema import STORE_FILE

if TYPE_CHECKING:
    from sentinel.config.store_view import StoreView
    from sentinel.hazards.changes import Change
    from sentinel.hazards.store import HazardStore

_ACTIONS = {
    "ack": (Action.ACK, "acknowledge a hazard"),
    "start": (Action.START, "start rectifying a hazard"),
    "resolve": (Action.RESOLVE, "mark a hazard rectified"),
    "close": (Action.CLOSE, "verify and close a resolved hazard (not by who resolved it)"),
    "reopen": (Action.REOPEN, "reopen a resolved hazard"),
    "cancel": (Action.CANCEL, "cancel a false positive (--note gives the reason)"),
    "note": (Action.NOTE, "add a note to the audit trail"),
    "assign": (Action.ASSIGN, "give a hazard to another owner (--to NAME)"),
}


_BY_HELP = "the name shown in the ledger (default: your login); who you are is taken from the kernel"


def configure(
    command: str, hazards: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `hazards` subcommands."""
    hsub = hazards.add_subparsers(dest="hazards_command", required=True, parser_class=type(hazards))

    lst = hsub.add_parser("list", help="list hazards, newest first")
    add_config(lst)
    lst.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in State],
        default=[],
        help="only these states (repeatable; default: all)",
    )
    lst.add_argument("--open", action="store_true", help="only open, acknowledged and rectifying")
    lst.add_argument("--limit", type=positive_int, default=None, metavar="N", help="at most N records")
    lst.add_argument("--json", action="store_true", help="full records as a JSON list")
    lst.set_defaults(func=cmd_list)

    show = hsub.add_parser("show", help="one hazard with its checklist and history")
    add_config(show)
    show.add_argument("id", type=positive_int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    for name, (action, help_text) in _ACTIONS.items():
        p = hsub.add_parser(name, help=help_text)
        add_config(p)
        p.add_argument("id", type=positive_int)
        p.add_argument("--by", metavar="NAME", help=_BY_HELP)
        p.add_argument("--note", default="", metavar="TEXT")
        if action == Action.ASSIGN:
            p.add_argument("--to", required=True, metavar="NAME", help="the new owner")
        p.set_defaults(func=cmd_act, action=action)

    check = hsub.add_parser("check", help="tick a rectification item as done")
    add_config(check)
    check.add_argument("id", type=positive_int)
    check.add_argument("item", type=positive_int, help="item number (see `hazards show`)")
    check.add_argument("--by", metavar="NAME", help=_BY_HELP)
    check.add_argument("--note", default="", metavar="TEXT")
    check.add_argument(
        "--funding", default="", metavar="TEXT", help="what the measure cost and who paid (ledger)"
    )
    check.set_defaults(func=cmd_check)

    whoami = hsub.add_parser("whoami", help="the identity your lifecycle commands are recorded as")
    add_config(whoami)
    whoami.add_argument("--by", metavar="NAME", help=_BY_HELP)
    whoami.add_argument("--json", action="store_true")
    whoami.set_defaults(func=cmd_whoami)

    audit.configure(hsub, add_config, _store)

    export = hsub.add_parser("export", help="the rectification ledger for the safety committee")
    add_config(export)
    export.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown")
    export.add_argument("--state", action="append", choices=[s.value for s in State], default=[])
    export.add_argument("--since", metavar="DATE", help="only hazards seen since (YYYY-MM-DD or ISO time)")
    export.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(func=cmd_export)


def load_config(args: argparse.Namespace) -> HazardsView:
    """[agent] and [hazards]: all that reading hazards needs (the hazard commands start without
    the collectors; `check-config` validates the rest; lifecycle commands read [[sinks]] too)."""
    return load_part(args, HazardsView)


def _check_store(args: argparse.Namespace, cfg: HazardsView | StoreView) -> None:
    path = cfg.agent.state_dir / STORE_FILE
    reading = args.hazards_command in ("list", "show", "export", "whoami", "verify", "trail")
    if not path.exists() and args.hazards_command not in ("list", "export", "whoami"):
        raise CliError(f"no hazard store in {cfg.agent.state_dir} (has the agent run yet?)")
    if not reading and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        # the audit trail must only hold what authorised people did: refuse before touching it
        raise CliError(
            f"refused: you may not change the hazard store {path} "
            "(run lifecycle commands as the agent's user or root)",
            code=1,
        )


def _reader(args: argparse.Namespace) -> tuple[HazardsView, StoreReader]:
    """The store's read side (list, show, export): no writer parts, no ticketing."""
    cfg = load_config(args)
    _check_store(args, cfg)
    with store_errors(cfg.agent.state_dir):
        return cfg, StoreReader(cfg.agent.state_dir / STORE_FILE, config=cfg.hazards)


def _store(args: argparse.Namespace) -> tuple[StoreView, HazardStore]:
    """The whole store, ticketing to the config's sinks (lifecycle commands)."""
    # start-up time: the writer parts and the ticketing load only for a command that writes
    from sentinel.agent.store import open_store
    from sentinel.config.store_view import StoreView

    cfg = load_part(args, StoreView)
    _check_store(args, cfg)
    with store_errors(cfg.agent.state_dir):
        return cfg, open_store(cfg)


def cmd_list(args: argparse.Namespace) -> int:
    """Print hazards as a table or JSON."""
    _cfg, store = _reader(args)
    states = list(args.state) + ([s.value for s in State if s in ACTIVE_STATES] if args.open else [])
    try:
        records = store.records(states=states, limit=args.limit, full=args.json)
    finally:
        store.close()
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2, sort_keys=True, ensure_ascii=False))
        return EXIT_OK
    print(
        f"{'ID':>5}  {'SEVERITY':<9} {'STATE':<13} {'CATEGORY':<19} {'OWNER':<16} "
        f"{'DEADLINE':<{DEADLINE_WIDTH}} TITLE"
    )
    for r in records:
        deadline = short_time(r.deadline) + (" !" if r.overdue else "")
        drill = " [drill]" if r.drill else ""
        print(
            f"{r.id:>5}  {r.severity.value:<9} {r.state.value:<13} {r.category.value:<19} "
            f"{clip(r.owner, 16):<16} {deadline:<{DEADLINE_WIDTH}} {printable(r.title)}{drill}"
        )
    return EXIT_OK


DEADLINE_WIDTH = len("2026-01-31 14:05Z !")
"""The DEADLINE column: a deadline to the minute in UTC and the overdue mark (`--json` keeps the
full RFC 3339 time)."""


def short_time(iso: str | None) -> str:
    """`2026-01-31T14:05:09.123456Z` as `2026-01-31 14:05Z` (a deadline needs no seconds)."""
    if not iso:
        return "-"
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def cmd_show(args: argparse.Namespace) -> int:
    """Print one record with checklist and history."""
    _cfg, store = _reader(args)
    try:
        record = store.get(args.id)
    finally:
        store.close()
    if record is None:
        raise CliError(f"no hazard #{args.id}", code=1)
    if args.json:
        print(json.dumps(record.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
        return EXIT_OK
    print(render_record(record))
    return EXIT_OK


def render_record(r: HazardRecord) -> str:
    """Human-readable form of one record."""
    lines = [
        f"hazard #{r.id}: {printable(r.title)}" + ("  [drill]" if r.drill else ""),
        f"  uid {r.uid}",
        f"  state {r.state.value}, severity {r.severity.value}, category {r.category.value}, rule {r.rule}",
        f"  subject {printable(r.subject)} on terminal {r.terminal}",
        f"  owner {r.owner}, deadline {r.deadline or 'none'}"
        + (" (OVERDUE)" if r.overdue else "")
        + f", escalation level {r.escalation_level} ({r.escalated_to})",
        f"  first seen {r.first_seen}, last seen {r.last_seen}, {r.occurrences} occurrence(s)",
    ]
    if r.related:
        lines.append(f"  recurs after hazards {', '.join(f'#{i}' for i in r.related)}")
    if r.resolved_by:
        lines.append(f"  resolved by {_who(r.resolved_by, r.resolved_by_id)} at {r.resolved_at}")
    if r.closed_by:
        lines.append(f"  verified and closed by {_who(r.closed_by, r.closed_by_id)} at {r.closed_at}")
    lines.append("  rectification:")
    for item in r.rectification:
        mark = "x" if item.done else " "
        done = f" (done by {_who(item.done_by, item.done_by_id)} at {item.done_at})" if item.done else ""
        if item.funding:
            done += f"; funding {printable(item.funding)}"
        if item.verified_by:
            done += f"; verified by {_who(item.verified_by, item.verified_by_id)} at {item.verified_at}"
        kind = " [long-term]" if item.kind == "long_term" else ""
        lines.append(f"    {item.item}. [{mark}] {printable(item.text)}{kind}{done}")
    if not r.rectification:
        lines.append("    (none)")
    lines.append("  evidence (most recent last):")
    for ev in r.evidence[-5:]:
        lines.append("    " + printable(json.dumps(ev, sort_keys=True, ensure_ascii=False)))
    lines.append("  history:")
    for h in r.history:
        move = f" {h.from_state or ''}->{h.to_state}" if h.to_state else ""
        note = f": {printable(h.note)}" if h.note else ""
        who = _who(h.actor, h.identity.id if h.identity else None)
        lines.append(f"    {h.at}  {who:<12} {h.action}{move}{note}")
    return "\n".join(lines)


def _who(display: str | None, actor_id: str | None) -> str:
    """`alice2 (os:alice)`: the typed name, and who it was when that differs."""
    return printable(named(display, actor_id))


def _actor(args: argparse.Namespace, cfg: HazardsView) -> Actor:
    """Who runs this command. SUDO_USER is believed (without a login uid) for root and for the
    store's owner, the accounts a person reaches through sudo."""
    trusted = {0}
    with contextlib.suppress(OSError):
        trusted.add((cfg.agent.state_dir / STORE_FILE).stat().st_uid)
    return os_actor(args.by, sudo_trusted_uids=trusted)


def _done(change: Change, actor: Actor, what: str) -> str:
    return f"hazard #{change.hazard_id}: {what} done by {actor.shown_as()}; state {change.state.value}"


def _write(args: argparse.Namespace, change: Callable[[HazardStore], object]) -> None:
    """Run one write on the store; refusals and store errors become one line and exit 1."""
    # start-up time: the lifecycle's refusals load with the writer, for a command that writes
    from sentinel.hazards.changes import HazardError

    _cfg, store = _store(args)
    try:
        change(store)
    except HazardError as exc:
        raise CliError(str(exc), code=1) from None
    except sqlite3.Error as exc:
        raise CliError(f"cannot write the hazard store: {exc}", code=1) from None
    finally:
        store.close()


def cmd_act(args: argparse.Namespace) -> int:
    """Apply one lifecycle action."""
    done: list[Change] = []
    actor = _actor(args, load_config(args))
    _write(
        args,
        lambda store: done.append(
            store.act(args.id, args.action, actor=actor, note=args.note, owner=getattr(args, "to", ""))
        ),
    )
    print(_done(done[0], actor, args.action.value))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Tick a rectification item."""
    done: list[Change] = []
    actor = _actor(args, load_config(args))
    _write(
        args,
        lambda store: done.append(
            store.tick(args.id, args.item, actor=actor, note=args.note, funding=args.funding)
        ),
    )
    print(_done(done[0], actor, f"item {args.item}"))
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    """Print the identity lifecycle commands would record."""
    actor = _actor(args, load_config(args))
    if args.json:
        print(json.dumps(actor.to_json(), indent=2, sort_keys=True))
        return EXIT_OK
    basis = {
        "loginuid": f"login uid {actor.loginuid} (kept across sudo and su)",
        "sudo": f"SUDO_USER, running as uid {actor.uid} (no login uid)",
        "uid": f"uid {actor.uid} (no login uid{', SUDO_USER not believed' if actor.sudo_user else ''})",
    }[actor.basis]
    print(f"{actor.id}, shown as {actor.display!r}; from the {basis}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write the ledger."""
    # start-up time: the export formats load only for `hazards export`
    from sentinel.hazards import export

    since = _parse_since(args.since) if args.since else None
    check_output(args.output)
    cfg, store = _reader(args)
    try:
        records = list(reversed(store.records(states=args.state, since=since, full=True)))
    finally:
        store.close()
    if args.format == "csv":
        text = export.to_csv(records)
    elif args.format == "json":
        text = export.to_json(records)
    else:
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = export.to_markdown(
            records, terminal=cfg.agent.terminal_id, branch=cfg.agent.branch, generated=generated
        )
    write_report(args.output, text)
    return EXIT_OK


def _parse_since(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f'--since: expected a date like "2026-01-31", got "{text}"') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
