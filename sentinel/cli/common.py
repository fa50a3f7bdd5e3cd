"""What every command group shares: exit codes, the one-line error, the argument parser, config
loading, safe printing and writing a report to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

if TYPE_CHECKING:
    from sentinel.config.schema import Config

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
        self.exit(EXIT_USAGE, f"sentinel: {message} (see 'sentinel {self.prog.split()[-1]} --help')\n")


def add_config(p: argparse.ArgumentParser) -> None:
    """The `--config FILE` option every command takes."""
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="config file (default: $SENTINEL_CONFIG or /etc/sentinel/sentinel.toml)",
    )


def load_config(args: argparse.Namespace) -> Config:
    """The config named by --config (or the default), as CliError on failure."""
    # start-up time: the config pulls in every collector's settings; only commands that need it pay
    from sentinel.config import loader

    try:
        return loader.load(getattr(args, "config", None))
    except loader.ConfigError as exc:
        raise CliError("\n".join(exc.errors)) from None


def load_part(args: argparse.Namespace, part: type[T]) -> T:
    """Only the sections of `part` (a sentinel.config.views dataclass), as CliError on failure:
    for the commands that must start fast and read little (status, hazards)."""
    # start-up time: the loader (tomllib, the settings builder) only once a command needs a config
    from sentinel.config import loader

    try:
        return loader.load_part(getattr(args, "config", None), part)
    except loader.ConfigError as exc:
        raise CliError("\n".join(exc.errors)) from None


def printable(text: str) -> str:
    """Text as it can be shown on a terminal (core.model.visible)."""
    # start-up time: `sentinel --help` needs none of the value types
    from sentinel.core.model import visible

    return visible(text)


def clip(text: str, width: int) -> str:
    """`printable(text)`, cut to `width` characters with an ellipsis."""
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def write_report(output: str | None, text: str) -> None:
    """Print `text`, or write it to `output` (`--output FILE`); a file that cannot be written is
    a CliError (exit 1)."""
    if not output:
        print(text, end="")
        return
    # start-up time: the file-writing helper only for a command that writes a report
    from sentinel.core.files import write_text_atomic

    try:  # replaced, never written through: `--output /tmp/x` may be a link someone planted
        write_text_atomic(Path(output).absolute(), text, mode=0o644)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}", code=EXIT_PROBLEMS) from None
