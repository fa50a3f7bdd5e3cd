"""`sentinel hub user …` as sentinel.hub.cli calls it: `user_main(config_path, argv)`.

The commands themselves live in sentinel.hub.auth.cli; this loads hub.toml, opens the database
(migrating it, so the first user can be made on a fresh hub) and runs one of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sentinel.hub.auth import cli as user_cli


def user_main(config_path: str | None, argv: Sequence[str]) -> int:
    """Run `sentinel hub user ARGV…`; the exit code (0 done, 1 refused, 2 usage or config)."""
    # start-up time: the user commands open the hub only when they run
    from sentinel.hub.config import HubConfigError, load
    from sentinel.hub.hub import Hub
    from sentinel.hub.inventory import InventoryError

    parser = argparse.ArgumentParser(prog="sentinel hub")
    user_cli.register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["user", *argv])
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else user_cli.EXIT_USAGE
    try:
        config = load(config_path)
        hub = Hub(config)
    except HubConfigError as exc:
        print(f"sentinel hub: {'; '.join(exc.problems)}", file=sys.stderr)
        return user_cli.EXIT_USAGE
    except InventoryError as exc:
        print(f"sentinel hub: {'; '.join(exc.problems)}", file=sys.stderr)
        return user_cli.EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"sentinel hub: cannot open the hub: {exc}", file=sys.stderr)
        return user_cli.EXIT_USAGE
    try:
        hub.migrate()
        return user_cli.run(args, hub)
    finally:
        hub.db.dispose()
