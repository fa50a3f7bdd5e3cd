"""`sentinel run` (the agent in the foreground) and `sentinel check-config`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sentinel.agent.lifecycle import Agent
from sentinel.agent.lock import AlreadyRunning
from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_config
from sentinel.core import logging as sentinel_logging
from sentinel.core.files import UnsafePathError


def configure(
    command: str, parser: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Arguments and handler of `run` or `check-config`."""
    add_config(parser)
    parser.set_defaults(func=cmd_run if command == "run" else cmd_check_config)


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
    cfg = load_config(args)
    sentinel_logging.configure(cfg.agent.log_level, cfg.agent.log_format)
    agent = Agent(cfg)
    agent.install_signal_handlers()
    try:
        return agent.run()
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from None
    except UnsafePathError as exc:  # e.g. a state_dir others can write: fix it, then start
        raise CliError(f"cannot start: {exc}") from None
    except OSError as exc:  # one line naming what failed, without "[Errno N]"
        what = f"{exc.strerror}: {exc.filename}" if exc.filename and exc.strerror else (exc.strerror or exc)
        raise CliError(f"cannot start: {what}", code=EXIT_PROBLEMS) from None
