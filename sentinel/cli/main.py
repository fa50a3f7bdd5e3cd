"""`sentinel <command> [--config FILE]`: the command-line entry point.

Exit codes: 0 ok; 1 a check found problems (or the agent is not running, for `status`);
2 usage or config error. Errors go to stderr as one line each, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sentinel import __version__
from sentinel.config import loader as config_mod
from sentinel.core import logging as sentinel_logging

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A problem to report as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"sentinel: {message} (see 'sentinel {self.prog.split()[-1]} --help')\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $SENTINEL_CONFIG or /etc/sentinel/sentinel.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    from sentinel.cli.baseline import add_baseline_commands
    from sentinel.cli.drill import add_drill_command
    from sentinel.cli.hazards import add_hazard_commands
    from sentinel.cli.inspect import add_inspect_command
    from sentinel.cli.tickets import add_ticket_commands

    parser = _Parser(prog="sentinel", description="Security monitoring agent for branch terminals.")
    parser.add_argument("--version", action="version", version=f"sentinel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the agent in the foreground")
    _add_config(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate the config and exit")
    _add_config(check)
    check.set_defaults(func=cmd_check_config)

    status = sub.add_parser("status", help="is the agent running, and how is it")
    _add_config(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    add_hazard_commands(sub, _add_config)
    add_inspect_command(sub, _add_config)
    add_drill_command(sub, _add_config)
    add_ticket_commands(sub, _add_config)
    add_baseline_commands(sub, _add_config)
    return parser


def load_config(args: argparse.Namespace) -> config_mod.Config:
    """The config named by --config (or the default), as CliError on failure."""
    try:
        return config_mod.load(getattr(args, "config", None))
    except config_mod.ConfigError as exc:
        raise CliError("\n".join(exc.errors)) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate; print a one-line summary."""
    cfg = load_config(args)
    rules = cfg.enabled_rules
    print(
        f"{cfg.source}: ok ({len(rules)} rules enabled, state_dir {cfg.agent.state_dir}, "
        f"metrics on {cfg.metrics.listen})"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent until SIGTERM/SIGINT."""
    from sentinel.agent.lifecycle import Agent, AlreadyRunning

    cfg = load_config(args)
    sentinel_logging.configure(cfg.agent.log_level, cfg.agent.log_format)
    agent = Agent(cfg)
    agent.install_signal_handlers()
    try:
        return agent.run()
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot start: {exc}", code=EXIT_PROBLEMS) from None


def cmd_status(args: argparse.Namespace) -> int:
    """Report whether the agent runs, and its last written status."""
    from sentinel.agent.lifecycle import holder_pid
    from sentinel.agent.status import read_status
    from sentinel.agent.wiring import STORE_FILE

    cfg = load_config(args)
    pid = holder_pid(cfg.agent.state_dir)
    snapshot = read_status(cfg.agent.state_dir) if pid else None
    hazards = _open_by_severity(cfg, cfg.agent.state_dir / STORE_FILE)
    result: dict[str, Any] = {
        "running": pid is not None,
        "pid": pid,
        "state_dir": str(cfg.agent.state_dir),
        "open_hazards": hazards,
        "agent": snapshot,
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_status(result)
    return EXIT_OK if pid is not None else EXIT_PROBLEMS


def _open_by_severity(cfg: config_mod.Config, path: Any) -> dict[str, int]:
    from sentinel.hazards.store import open_database

    if not path.exists():
        return {}
    conn = open_database(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT severity, COUNT(*) FROM hazards WHERE state IN "
            "('open', 'acknowledged', 'rectifying') GROUP BY severity"
        ).fetchall()
    except Exception:  # a store mid-migration or unreadable: status still answers
        return {}
    finally:
        conn.close()
    return {str(r[0]): int(r[1]) for r in rows}


def _print_status(result: dict[str, Any]) -> None:
    from datetime import UTC, datetime

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
        for c in agent["collectors"]:
            state = "up" if c["up"] else ("disabled" if not c["enabled"] else "DOWN")
            err = f", last error: {c['last_error']}" if c["last_error"] else ""
            print(
                f"  {c['name']:<14} {state:<8} last run {when(c['last_run_at'])} "
                f"({c['last_duration_seconds']:.3f}s), errors {c['errors']}{err}"
            )
    counts = result["open_hazards"]
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "major", "minor", "info"))
    print(f"open hazards: {summary}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch; turn known failures into one stderr line and an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # one-shot commands keep stdout for their output; `run` reconfigures from its config
    sentinel_logging.configure("warning", "console", stream=sentinel_logging.CurrentStream("stderr"))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"sentinel: {line}", file=sys.stderr)
        return exc.code
    except PermissionError as exc:  # a one-shot command run without the rights it needs
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"sentinel: permission denied{where}: run as root (sudo) or as the agent's user", file=sys.stderr
        )
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `sentinel hazards list | head`
        return EXIT_OK
