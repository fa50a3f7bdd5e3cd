"""`sentinel hub …`: the fleet ledger's commands (serve, migrate, enroll, revoke, backup, restore,
export, report, user). The group hands its arguments to sentinel.hub.cli, which has its own
parser and `--config` (hub.toml, not the agent's sentinel.toml); docs/hub.md describes them."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any


def configure(command: str, parser: argparse.ArgumentParser, add_config: Callable[..., Any]) -> None:
    """For `sentinel --help` and `sentinel hub …`: everything after `hub` goes to the hub's parser."""
    parser.add_argument("args", nargs=argparse.REMAINDER, help="a hub command; see `sentinel hub --help`")
    parser.set_defaults(func=lambda args: run(args.args))


def run(argv: Sequence[str]) -> int:
    """Run one `sentinel hub` command."""
    # start-up time: the hub (and its extra's libraries) loads only for `sentinel hub`
    from sentinel.hub.cli import main

    return main(list(argv))
