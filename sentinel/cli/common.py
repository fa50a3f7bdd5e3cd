"""What every command group shares: exit codes, the one-line error, the argument parser, config
loading, safe printing and writing a report to a file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

if TYPE_CHECKING:
    from sentinel.config.schema import Config
    from sentinel.hazards.store import HazardStore

T = TypeVar("T")

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A problem to report as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse with Sentinel's usage errors: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Report a usage error and exit 2."""
        # `prog` is the whole command path ("sentinel hazards ack"): the hint names that command
        self.exit(EXIT_USAGE, f"sentinel: {message} (see '{self.prog} --help')\n")


def add_config(p: argparse.ArgumentParser) -> None:
    """The `--config FILE` option every command takes."""
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $SENTINEL_CONFIG or /etc/sentinel/sentinel.toml)",
    )


SQLITE_MAX = 2**63 - 1
"""The largest integer SQLite stores: no id, item number or row limit can be larger."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1 to SQLITE_MAX (ids, item numbers, `--limit`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > SQLITE_MAX:
        raise argparse.ArgumentTypeError(f"must be at most {SQLITE_MAX}, got {text}")
    return value


def seconds_between(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from `low` to `high` (NaN and infinity refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not low <= value <= high:  # also false for NaN
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g} seconds, got {text}")
        return value

    return parse


def nonblank(text: str) -> str:
    """An argparse type: text with something in it (`--reason` is recorded for the auditors)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


@contextlib.contextmanager
def store_errors(state_dir: Path) -> Iterator[None]:
    """A hazard store that cannot be opened (not a database, a newer schema, unreadable) as one
    CliError line naming it (exit 2)."""
    # start-up time: the store's schema loads only for commands that open it
    from sentinel.hazards.schema import SchemaTooNew

    try:
        yield
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from None
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"cannot open the hazard store in {state_dir}: {exc}") from None


def open_hazard_store(config: Config) -> HazardStore:
    """The hazard store of `config`, created or migrated as the agent would (store_errors)."""
    # start-up time: the writer parts and the ticketing load only for a command that writes
    from sentinel.agent.store import open_store

    with store_errors(config.agent.state_dir):
        return open_store(config)


def load_config(args: argparse.Namespace) -> Config:
    """The config named by --config (or the default), as CliError on failure."""
    # start-up time: the config pulls in every collector's settings; only commands that need it pay
    from sentinel.config import loader

    explicit = getattr(args, "config", None)
    try:
        return loader.load(explicit)
    except loader.ConfigError as exc:
        raise CliError("\n".join(_with_way_out(explicit, exc.errors))) from None


def load_part(args: argparse.Namespace, part: type[T]) -> T:
    """Only the sections of `part` (a sentinel.config.views dataclass), as CliError on failure:
    for the commands that must start fast and read little (status, hazards)."""
    # start-up time: the loader (tomllib, the settings builder) only once a command needs a config
    from sentinel.config import loader

    explicit = getattr(args, "config", None)
    try:
        return loader.load_part(explicit, part)
    except loader.ConfigError as exc:
        raise CliError("\n".join(_with_way_out(explicit, exc.errors))) from None


def _with_way_out(explicit: str | None, errors: list[str]) -> list[str]:
    """`errors`, and when nothing named a config and none is installed, how to name one (the
    first thing someone trying Sentinel from a checkout meets)."""
    # start-up time: only a config that failed to load pays for the loader here
    from sentinel.config import loader

    path = loader.config_path(explicit)
    if explicit or os.environ.get(loader.CONFIG_ENV) or path.exists():
        return list(errors)
    return [
        *errors,
        f"no config at the installed default {path}: pass --config FILE or set "
        f"{loader.CONFIG_ENV} (in a source checkout: --config config/sentinel.toml)",
    ]


def printable(text: str) -> str:
    """Text as it can be shown on a terminal (core.model.visible)."""
    # start-up time: `sentinel --help` needs none of the value types
    from sentinel.core.model import visible

    return visible(text)


def clip(text: str, width: int) -> str:
    """`printable(text)`, cut to `width` characters with an ellipsis."""
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def check_output(output: str | None) -> None:
    """Fail before doing any work when `--output FILE` cannot be written (exit 1): a report
    that cannot be saved must not raise hazards first. Creates and removes a probe file next to
    `output`, the only test that holds for root too (root may "access" /proc, never create in it)."""
    if not output:
        return
    target = Path(output).absolute()
    if target.is_dir():
        raise CliError(f"cannot write {output}: is a directory", code=EXIT_PROBLEMS)
    # start-up time: the file helpers only for a command that writes a report
    from sentinel.core.files import open_private

    probe = target.with_name(f".{target.name}.{os.getpid()}.probe")
    try:
        os.close(open_private(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}", code=EXIT_PROBLEMS) from None
    probe.unlink(missing_ok=True)


def write_report(output: str | None, text: str) -> None:
    """Print `text`, or write it to `output` (`--output FILE`, replaced in one rename, 0644);
    a file that cannot be written is a CliError (exit 1)."""
    if not output:
        print(text, end="")
        return
    # start-up time: the file-writing helper only for a command that writes a report
    from sentinel.core.files import write_text_atomic

    try:  # replaced, never written through: `--output /tmp/x` may be a link someone planted
        write_text_atomic(Path(output).absolute(), text, mode=0o644)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}", code=EXIT_PROBLEMS) from None
