"""Bad input to every command: one `sentinel: ...` line per problem on stderr and exit 1 or 2,
never a traceback (cli/main.py's promise) — a bad config, a bad argument, a broken store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.cli import main as cli
from sentinel.cli.common import SQLITE_MAX
from tests.support.agent import write_config

HUGE = str(SQLITE_MAX + 1)
"""One more than SQLite stores: it used to escape as OverflowError from the store."""

EVERY_COMMAND = [
    ["run"],
    ["check-config"],
    ["status"],
    ["hazards", "list"],
    ["hazards", "show", "1"],
    *(["hazards", a, "1"] for a in ("ack", "start", "resolve", "close", "reopen", "cancel", "note")),
    ["hazards", "assign", "1", "--to", "it"],
    ["hazards", "check", "1", "1"],
    ["hazards", "whoami"],
    ["hazards", "export"],
    ["inspect", "--no-hazards"],
    ["drill", "list"],
    ["drill", "history"],
    ["drill"],
    ["tickets", "list"],
    ["tickets", "retry", "--all"],
    ["baseline", "init"],
    ["baseline", "check"],
    ["baseline", "update", "--reason", "patch day"],
    ["baseline", "show"],
]
"""Each leaf command with arguments that are fine by themselves."""

BAD_CONFIGS = {
    "missing": None,
    "a directory": "",
    "invalid TOML": "[agent\nbranch =",
    "an unknown key": '[agent]\nbranch = "0101"\n[bogus]\nx = 1\n',
    "a number out of range": "[agent]\nqueue_size = 0\n",
}


def config_with_fim(tmp: Path) -> Path:
    """A quiet config whose integrity monitor watches one small tree (the baseline commands need one)."""
    (tmp / "watched").mkdir()
    (tmp / "watched" / "teller.conf").write_text("limit = 1000\n")
    watch = f'[integrity]\nenabled = true\n[[integrity.watch]]\npath = "{tmp / "watched"}"\n'
    return write_config(tmp, health=False, extra=watch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`sentinel ARGV` in-process: (exit code, stdout, stderr). Any other exception fails the test:
    it is what the operator would have seen as a traceback."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_errors(code: int, err: str, expected: int, argv: list[str]) -> None:
    """Exit `expected`, and every stderr line is one of Sentinel's error lines."""
    lines = err.splitlines()
    assert code == expected, (argv, code, err)
    assert lines and all(line.startswith("sentinel: ") for line in lines), (argv, err)
    assert "Traceback" not in err, (argv, err)


def bad_config(tmp: Path, kind: str) -> Path:
    path = tmp / "bad.toml"
    text = BAD_CONFIGS[kind]
    if text == "":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    return path


@pytest.mark.parametrize("kind", BAD_CONFIGS)
def test_every_command_refuses_a_bad_config_in_one_line(
    tmp: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = bad_config(tmp, kind)
    for argv in EVERY_COMMAND:
        code, _out, err = run(capsys, *argv, "--config", str(path))
        assert_one_line_errors(code, err, 2, argv)
        assert str(path) in err, (argv, err)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        *((["hazards", action, HUGE], "at most") for action in ("show", "ack", "cancel", "note")),
        (["hazards", "assign", HUGE, "--to", "it"], "at most"),
        (["hazards", "check", "1", HUGE], "argument item: must be at most"),
        (["hazards", "show", "0"], "at least 1"),
        (["hazards", "list", "--limit", HUGE], "--limit: must be at most"),
        (["tickets", "retry", HUGE], "at most"),
        (["tickets", "retry", "-5"], "at least 1"),
        (["tickets", "list", "--limit", "1.5"], "whole number"),
        (["hazards", "export", "--since", "yesterday"], "--since"),
        (["hazards", "export", "--format", "xml"], "invalid choice"),
        *(
            (["drill", "--timeout", t], "--timeout: must be from 1 to 3600")
            for t in ("0", "-1", "nan", "inf", "1e308")
        ),
        (["drill", "--timeout", "soon"], "expected a number of seconds"),
        (["baseline", "update", "--reason", "  "], "--reason: must not be empty"),
        (["baseline", "show", "--entries"], ""),  # a bare --entries lists all: must not fail
    ],
)
def test_a_bad_argument_is_one_usage_line(
    tmp: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    config = config_with_fim(tmp)
    code, _out, err = run(capsys, *argv, "--config", str(config))
    if not says:
        assert "Traceback" not in err and code in (0, 1), (argv, code, err)
        return
    assert_one_line_errors(code, err, 2, argv)
    assert says in err, (argv, err)


STORE_COMMANDS = [
    (["hazards", "list"], 2),
    (["hazards", "show", "1"], 2),
    (["hazards", "ack", "1"], 2),
    (["hazards", "export"], 2),
    (["tickets", "list"], 2),
    (["tickets", "retry", "--all"], 2),
    (["drill", "history"], 2),
    (["drill"], 2),
]


def test_a_store_that_is_not_a_database_is_named_in_one_line(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged hazards.db (a restore gone wrong): every command that opens it says so, and
    `status` says the open hazards are unknown, never "0 open"."""
    config = config_with_fim(tmp)
    (tmp / "state").mkdir(mode=0o700)
    (tmp / "state" / "hazards.db").write_bytes(b"not a database\n" * 64)
    for argv, expected in STORE_COMMANDS:
        code, _out, err = run(capsys, *argv, "--config", str(config))
        assert_one_line_errors(code, err, expected, argv)
        assert "not a database" in err, (argv, err)
    code, out, _err = run(capsys, "status", "--config", str(config))
    assert code == 1  # not running
    assert "open hazards: unknown (cannot read the hazard store" in out and "0 critical" not in out, out


def test_the_installed_entry_point_prints_no_traceback(tmp: Path) -> None:
    """The same through `python -m sentinel`, as the operator runs it."""
    config = write_config(tmp, health=False)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", "show", HUGE, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("sentinel: argument id: must be at most"), result.stderr
    assert "Traceback" not in result.stderr
