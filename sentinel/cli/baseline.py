"""`sentinel baseline init|check|update|show`: the file-integrity baseline, like AIDE's init/check/update.

- `init`   scans every watched tree (SHA-256, in parallel) and writes the signed baseline; creates
           the key (0600) if there is none. Refuses to replace a baseline without `--force`.
- `check`  verifies the signature and compares the trees with the baseline; prints the changes
           grouped by kind; exit 1 when there are changes or the baseline is invalid (which is
           also raised as a critical hazard through the configured rules).
- `update` accepts the current state as the new baseline (`--by` and `--reason` are recorded in
           the hazard store's audit trail, table `baseline_updates`).
- `show`   the baseline's metadata, validity and update history (`--entries` lists paths).

Same config as the agent; `--json` output keys are listed in docs/integrity.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sqlite3
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_config, load_part, nonblank, printable
from sentinel.config.baseline_view import BaselineView
from sentinel.hazards.baselines import record_update, updates
from sentinel.hazards.identity import Actor, named, os_actor
from sentinel.hazards.schema import STORE_FILE
from sentinel.sources.integrity.baseline import BaselineError, BaselineFiles
from sentinel.sources.integrity.changes import Change
from sentinel.sources.integrity.check import CheckResult, baseline_of, check, take
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.scanner import ScanStats


def configure(
    command: str, baseline: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The `baseline` subcommands."""
    bsub = baseline.add_subparsers(dest="baseline_command", required=True, parser_class=type(baseline))

    init = bsub.add_parser("init", help="scan the watched trees and write the signed baseline")
    add_config(init)
    init.add_argument("--force", action="store_true", help="replace an existing baseline")
    init.add_argument("--by", metavar="NAME", help="who does this (audit trail; default: your login)")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_init)

    check = bsub.add_parser("check", help="compare the trees with the baseline (exit 1 on changes)")
    add_config(check)
    check.add_argument("--deep", action="store_true", help="rehash every file (not only changed ones)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)

    update = bsub.add_parser("update", help="accept the current state as the new baseline")
    add_config(update)
    update.add_argument(
        "--by", metavar="NAME", help="the name shown in the audit trail (default: your login)"
    )
    update.add_argument(
        "--reason", required=True, type=nonblank, metavar="TEXT", help="why (change ticket, patch day...)"
    )
    update.add_argument("--quick", action="store_true", help="trust unchanged stat instead of rehashing")
    update.add_argument("--json", action="store_true")
    update.set_defaults(func=cmd_update)

    show = bsub.add_parser("show", help="the baseline's metadata, validity and update history")
    add_config(show)
    show.add_argument("--entries", metavar="GLOB", nargs="?", const="*", help="list paths too")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


def _config(args: argparse.Namespace) -> BaselineView:
    """[agent] and [integrity] only: the baseline commands start without the collectors."""
    cfg = load_part(args, BaselineView)
    if not cfg.integrity.watch:
        raise CliError("nothing to baseline: no [[integrity.watch]] entries in the config")
    return cfg


def _actor(by: str | None) -> Actor:
    """Who runs this, as the kernel knows them (the login uid); `--by` is only the shown name."""
    return os_actor(by)


def _audit(cfg: BaselineView, **row: Any) -> None:
    """Record the (re)baseline in the hazard store; a store that cannot be written is an error."""
    try:
        record_update(cfg.agent.state_dir / STORE_FILE, at=datetime.now(UTC).timestamp(), **row)
    except (sqlite3.Error, OSError) as exc:
        message = f"baseline written, but the audit trail could not be: {exc}"
        raise CliError(message, code=EXIT_PROBLEMS) from None


def cmd_init(args: argparse.Namespace) -> int:
    """Take and sign the first baseline."""
    cfg = _config(args)
    files = BaselineFiles(cfg.agent.state_dir)
    if files.baseline.exists() and not args.force:
        raise CliError(f"a baseline exists ({files.baseline}); use `sentinel baseline update` or --force")
    try:
        key = files.create_key()
    except OSError as exc:
        message = f"cannot create the baseline key in {files.directory}: {exc}"
        raise CliError(message, code=EXIT_PROBLEMS) from None
    baseline, stats = take(cfg.integrity, cfg.agent.state_dir)
    files.write(baseline, key)
    files.remove_observed()
    _audit(
        cfg,
        actor=_actor(args.by),
        action="init",
        reason="initial baseline" if not args.force else "baseline replaced (--force)",
        old_digest="",
        new_digest=baseline.digest,
        entries=len(baseline.entries),
        summary={"stats": stats.as_dict()},
    )
    result = {
        "path": str(files.baseline),
        "digest": baseline.digest,
        "entries": len(baseline.entries),
        **stats.as_dict(),
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(
            f"baseline written: {len(baseline.entries)} paths, {stats.hashed} hashed "
            f"({stats.bytes / 1e6:.1f} MB) in {stats.duration:.2f}s; digest {baseline.digest[:16]}"
        )
        _print_skipped(stats)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Compare with the baseline; exit 1 on any change or an invalid baseline."""
    cfg = _config(args)
    result = check(cfg.integrity, cfg.agent.state_dir, deep=args.deep)
    if result.problem == "denied":  # the caller's rights, not the baseline: no tamper hazard
        raise CliError(result.detail, code=EXIT_PROBLEMS)
    hazards: list[int] = []
    if result.problem:
        try:
            hazards = _raise_tamper_hazard(args, result)
        except (sqlite3.Error, OSError, CliError) as exc:  # the verdict stands; say the hazard is missing
            print(f"sentinel: could not record the hazard: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps(_check_json(result, hazards), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _print_check(result, hazards)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _raise_tamper_hazard(args: argparse.Namespace, result: CheckResult) -> list[int]:
    """The failed verification through the whole config's rules into the store, as the agent
    would raise it (a config with errors is a CliError: the hazard cannot be raised)."""
    # start-up time: the rules, the store and the ticketing only for a baseline that failed
    from sentinel.agent.inspection import raise_tamper_hazard

    return raise_tamper_hazard(load_config(args), result)


def _check_json(result: CheckResult, hazards: list[int]) -> dict[str, Any]:
    return {
        "valid": not result.problem,
        "problem": result.problem or None,
        "detail": result.detail or None,
        "hazards": hazards,
        "digest": result.baseline.digest if result.baseline else None,
        "counts": result.counts(),
        "changes": {kind: [_change_json(c) for c in changes] for kind, changes in result.by_kind().items()},
        "stats": result.stats.as_dict(),
    }


def _change_json(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"path": change.path, "policy": change.policy, "changed": list(change.changed)}
    if change.to:
        out["to"] = change.to
    out["old"] = change.old.describe() if change.old else None
    out["new"] = change.new.describe() if change.new else None
    return out


def _print_check(result: CheckResult, hazards: list[int]) -> None:
    if result.problem:
        print(f"BASELINE INVALID: {result.detail}")
        if hazards:
            print(f"raised as hazard {', '.join(f'#{h}' for h in hazards)}")
        return
    grouped = result.by_kind()
    for kind, changes in grouped.items():
        print(f"{kind} ({len(changes)}):")
        for c in changes:
            what = f" -> {printable(c.to)}" if c.to else ""
            attrs = f"  [{', '.join(c.changed)}]" if c.changed else ""
            print(f"  {c.policy:<9} {printable(c.path)}{what}{attrs}")
    s = result.stats
    verdict = "no changes" if not grouped else f"{len(result.changes)} changes"
    print(f"{verdict}: {s.entries} paths checked, {s.hashed} hashed, {s.duration:.2f}s")
    _print_skipped(s)


def cmd_update(args: argparse.Namespace) -> int:
    """Accept the current state; record who, when, why and what changed."""
    cfg = _config(args)
    files = BaselineFiles(cfg.agent.state_dir)
    try:
        key = files.read_key()
        current = files.load("baseline", key)
    except BaselineError as exc:
        advice = (
            ""
            if exc.problem == "denied"
            else ("; inspect the terminal, then start over with `sentinel baseline init --force`")
        )
        raise CliError(f"cannot update: {exc}{advice}", code=EXIT_PROBLEMS) from None
    # one scan both finds what is accepted and becomes the new baseline (deep unless --quick)
    before = check(cfg.integrity, cfg.agent.state_dir, deep=not args.quick, baseline=current)
    assert before.current is not None  # a given baseline is always scanned against
    baseline, stats = baseline_of(cfg.integrity, before.current), before.stats
    files.write(baseline, key)
    files.remove_observed()
    counts = before.counts()
    actor = _actor(args.by)
    _audit(
        cfg,
        actor=actor,
        action="update",
        reason=args.reason,
        old_digest=current.digest,
        new_digest=baseline.digest,
        entries=len(baseline.entries),
        summary={"changes": counts, "stats": stats.as_dict()},
    )
    result = {
        "old_digest": current.digest,
        "new_digest": baseline.digest,
        "entries": len(baseline.entries),
        "accepted": counts,
        **stats.as_dict(),
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        accepted = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no changes"
        print(
            f"baseline updated by {actor.shown_as()}: {accepted}; {len(baseline.entries)} paths; "
            f"digest {baseline.digest[:16]}"
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Metadata, validity, history (and entries on request)."""
    cfg = _config(args)
    files = BaselineFiles(cfg.agent.state_dir)
    info: dict[str, Any] = {"path": str(files.baseline), "key": str(files.key), "valid": False}
    entries: Mapping[str, Entry] = {}
    try:
        baseline = files.load("baseline")
        entries = baseline.present()
        info |= {
            "valid": True,
            "digest": baseline.digest,
            "created_at": _iso(baseline.created_at),
            "entries": len(entries),
            "roots": [{"path": p, "policy": pol} for p, pol in baseline.roots],
        }
    except BaselineError as exc:
        info |= {"problem": exc.problem, "detail": str(exc)}
    try:
        history = updates(cfg.agent.state_dir / STORE_FILE)
    except sqlite3.Error:
        history = []
    info["history"] = [{**h, "at": _iso(h["at"])} for h in history]
    if args.entries:
        info["paths"] = {
            p: entries[p].describe() for p in sorted(entries) if fnmatch.fnmatchcase(p, args.entries)
        }
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False))
        return EXIT_OK if info["valid"] else EXIT_PROBLEMS
    _print_show(info)
    return EXIT_OK if info["valid"] else EXIT_PROBLEMS


def _print_show(info: dict[str, Any]) -> None:
    if info["valid"]:
        print(f"baseline {info['path']}: valid, {info['entries']} paths, taken {info['created_at']}")
        print(f"  digest {info['digest']}")
        for root in info["roots"]:
            print(f"  {root['policy']:<9} {root['path']}")
    else:
        print(f"baseline {info['path']}: INVALID: {info['detail']}")
    print("history:" if info["history"] else "history: (none recorded)")
    for h in info["history"]:
        reason = printable(h["reason"])
        who = printable(named(h["actor"], h.get("actor_id")))
        print(f"  {h['at']}  {h['action']:<7} by {who}: {reason} -> {h['new_digest'][:16]}")
    for path, text in info.get("paths", {}).items():
        print(f"{printable(path)}  {text}")


def _print_skipped(stats: ScanStats) -> None:
    shown = {k: v for k, v in stats.skipped.items() if v}
    if shown:
        print("not fully read: " + ", ".join(f"{n} {k}" for k, n in sorted(shown.items())))
    if stats.absent:  # configured for the fleet, not present on this machine: said once, not a loss
        absent = sorted(stats.absent)
        print(f"absent on this machine ({len(absent)} watched): " + ", ".join(printable(p) for p in absent))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
