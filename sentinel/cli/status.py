"""`sentinel status [--json]`: whether the agent runs, how its collectors are, the open hazards,
and the head of the hash-chained trail (with the agent's last verification of it)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.agent.lock import holder_pid
from sentinel.agent.status import read_status
from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, load_part
from sentinel.config.sections import AgentView
from sentinel.core.db import open_database
from sentinel.hazards import STORE_FILE
from sentinel.hazards.lifecycle import ACTIVE_STATES, states_sql


def configure(
    command: str, parser: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Arguments and handler of `status`."""
    add_config(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    """Report whether the agent runs, and its last written status."""
    cfg = load_part(args, AgentView)  # [agent] only: status starts without the collectors
    pid = holder_pid(cfg.agent.state_dir)
    snapshot = read_status(cfg.agent.state_dir) if pid else None
    result: dict[str, Any] = {
        "running": pid is not None,
        "pid": pid,
        "state_dir": str(cfg.agent.state_dir),
        "open_hazards": None,
        "trail": None,
        "agent": snapshot,
    }
    path = cfg.agent.state_dir / STORE_FILE
    try:
        result["open_hazards"] = _open_by_severity(path)
        result["trail"] = _trail_head(path)
    except (sqlite3.Error, OSError) as exc:  # mid-migration, not a database, unreadable: never "0 open"
        result["store_error"] = f"cannot read the hazard store {path}: {exc}"
    if result["trail"] is not None:
        result["trail"]["verification"] = (snapshot or {}).get("trail")
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_status(result)
    return EXIT_OK if pid is not None else EXIT_PROBLEMS


def _open_by_severity(path: Path) -> dict[str, int]:
    """Active hazards by severity, read-only (the store is not opened as a store: no migration)."""
    if not path.exists():
        return {}
    conn = open_database(path, readonly=True)
    try:
        rows = conn.execute(
            f"SELECT severity, COUNT(*) FROM hazards WHERE state IN {states_sql(ACTIVE_STATES)} "  # noqa: S608
            "GROUP BY severity"
        ).fetchall()
    finally:
        conn.close()
    return {str(r[0]): int(r[1]) for r in rows}


def _trail_head(path: Path) -> dict[str, Any] | None:
    """The store's id and its newest link, read-only (None without a store, or a store that
    predates the trail); what a central copy compares with the heads Prometheus scraped."""
    if not path.exists():
        return None
    # start-up time: the chain's code loads only with a store to read
    from sentinel.hazards import links

    conn = open_database(path, readonly=True)
    try:
        store = links.store_id(conn)
        seq, digest = links.head(conn)
    except (sqlite3.Error, TypeError):  # no chain or store id yet (an old store not migrated), unreadable
        return None
    finally:
        conn.close()
    return {"store_id": store, "head": {"seq": seq, "hash": digest}}


def _print_trail(trail: dict[str, Any] | None, when: Callable[[float | None], str]) -> None:
    if trail is None:
        return
    head = trail["head"]
    print(f"trail: store {trail['store_id']}, head row {head['seq']} {head['hash']}")
    checked = trail["verification"]
    if checked is None:
        print("  not verified by a running agent yet (`sentinel hazards verify` checks it now)")
    elif checked["ok"]:
        print(f"  intact when the agent verified it at {when(checked['verified_at'])}")
    else:
        print(
            f"  BROKEN when the agent verified it at {when(checked['verified_at'])}: "
            f"{checked['breaks']} break(s), first: {checked['first_break']}"
        )


def _print_status(result: dict[str, Any]) -> None:
    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "never"

    if not result["running"]:
        print(f"sentinel: not running (state_dir {result['state_dir']})")
    agent = result["agent"]
    if agent:
        print(
            f"sentinel {agent.get('version')}: running, pid {agent['pid']}, "
            f"since {when(agent['started_at'])}, metrics on {agent.get('listen')}"
        )
        print(
            f"queue: {agent['queue']['depth']}/{agent['queue']['capacity']}, dropped "
            f"{sum(agent['dropped'].values())}, store write errors {agent['store_write_errors']}"
        )
        if agent.get("coverage_reduced"):
            print(f"coverage REDUCED: {agent['coverage_reduced']}")
        for c in agent["collectors"]:
            state = "up" if c["up"] else ("disabled" if not c["enabled"] else "DOWN")
            err = f", last error: {c['last_error']}" if c["last_error"] else ""
            print(
                f"  {c['name']:<14} {state:<8} last run {when(c['last_run_at'])} "
                f"({c['last_duration_seconds']:.3f}s), errors {c['errors']}{err}"
            )
            if not c.get("sees", True) and c.get("reason"):
                print(f"  {'':<14} blind: {c['reason']}")
    counts = result["open_hazards"]
    if counts is None:
        print(f"open hazards: unknown ({result['store_error']})")
        return
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "major", "minor", "info"))
    print(f"open hazards: {summary}")
    _print_trail(result["trail"], when)
