"""`sentinel <command> [--config FILE]`: the command-line entry point.

Exit codes: 0 ok; 1 a check found problems (or the agent is not running, for `status`);
2 usage or config error. Errors go to stderr as one line each, never a traceback.

Only the chosen command's group module is imported (and, through it, the parts of Sentinel it
needs): `sentinel --help` and every command start without the collectors, the store or
prometheus_client.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sentinel import __version__
from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, Parser, add_config
from sentinel.core.files import UnsafePathError

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("sentinel.cli.run", "run the agent in the foreground"),
    "check-config": ("sentinel.cli.run", "validate the config and exit"),
    "status": ("sentinel.cli.status", "is the agent running, and how is it"),
    "hazards": ("sentinel.cli.hazards", "hazard records: list, show, lifecycle, export"),
    "inspect": ("sentinel.cli.inspect", "inspect this terminal's posture, health, baseline and hazards"),
    "drill": ("sentinel.cli.drill", "run an emergency drill against the running agent"),
    "tickets": ("sentinel.cli.tickets", "the ticket outbox: what was delivered, what waits, what failed"),
    "baseline": ("sentinel.cli.baseline", "file-integrity baseline: init, check, update, show"),
    "logtest": (
        "sentinel.cli.logtest",
        "what the auth detector makes of log lines, and which rules they count toward",
    ),
    "hub": (
        "sentinel.cli.hub",
        "the fleet ledger: serve, enroll, migrate, backup, restore, report, export, user",
    ),
    "inventory": (
        "sentinel.cli.inventory",
        "software and peripheral inventory; accept the equipment present",
    ),
    "change": ("sentinel.cli.change", "change windows: open, close, list"),
}
"""Command -> (the group module that implements it, its one-line help). Each group module has
`configure(command, parser, add_config)`, which adds the command's arguments and handler."""


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command tree. Every command is listed (for `--help`); only the one named in `argv` gets
    its arguments, and only its group module is imported."""
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = Parser(prog="sentinel", description="Security monitoring agent for branch terminals.")
    parser.add_argument("--version", action="version", version=f"sentinel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command, (module, help_text) in COMMANDS.items():
        group = sub.add_parser(command, help=help_text)
        if command == chosen:
            importlib.import_module(module).configure(command, group, add_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch; turn known failures into one stderr line and an exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["hub"]:  # the hub has its own parser and --config (hub.toml)
        # start-up time: the hub group loads only when it is chosen
        from sentinel.cli import hub

        return hub.run(arguments[1:])
    args = build_parser(arguments).parse_args(arguments)
    hook = None
    if "structlog" in sys.modules:
        _configure_logging()
    else:  # a command that never loads structlog (status, hazards) does not pay for it
        hook = _OnFirstImport("structlog", _configure_logging)
        sys.meta_path.insert(0, hook)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"sentinel: {line}", file=sys.stderr)
        return exc.code
    except UnsafePathError as exc:  # a write another account could have redirected: refused
        print(f"sentinel: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
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
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)


def _configure_logging() -> None:
    """One-shot commands keep stdout for their output: warnings to stderr (`run` reconfigures
    from its config)."""
    # start-up time: structlog loads only once a command runs, never for --help or a usage error
    from sentinel.core import logging as sentinel_logging

    sentinel_logging.configure("warning", "console", stream=sentinel_logging.CurrentStream("stderr"))


class _OnFirstImport:
    """A sys.meta_path finder that lets the ordinary finders load `name`, then calls `then()`:
    structlog is configured the moment anything a command uses imports it, and not at all when
    nothing does."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """The ordinary spec of `name`, its loader wrapped to call `then()` once it has run."""
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, then = loader.exec_module, self.then

        def exec_module(module: Any) -> None:
            run(module)
            then()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
