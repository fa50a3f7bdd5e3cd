"""What an operator meets first at the command line: hints that name the right command, usage
errors that name the bad value, listings that fit their headers, failures before side effects."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.agent.wiring import open_store
from sentinel.cli import main as cli
from sentinel.config.loader import load
from sentinel.core.model import Category, Finding, Severity
from tests.support.agent import write_config
from tests.support.net import free_port


@pytest.fixture
def config(tmp: Path) -> Path:
    """A quiet config in a temporary directory."""
    return write_config(tmp, health=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`sentinel ARGV` in-process: (exit code, stdout, stderr), usage errors included."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors and --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["nope"], "(see 'sentinel --help')"),
        (["hazards", "ack", "one"], "(see 'sentinel hazards ack --help')"),
        (["hazards"], "(see 'sentinel hazards --help')"),
        (["baseline", "update", "--by", "x"], "(see 'sentinel baseline update --help')"),
    ],
)
def test_a_usage_error_names_the_command_to_ask_for_help(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    """The hint is the command the operator typed, never `sentinel sentinel` or a bare `ack`."""
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.rstrip().endswith(hint), err


def test_a_missing_default_config_says_how_to_run_from_a_checkout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp: Path
) -> None:
    """No --config, no SENTINEL_CONFIG, nothing installed: the error names the way out."""
    from sentinel.config import loader

    monkeypatch.delenv("SENTINEL_CONFIG", raising=False)
    monkeypatch.setattr(loader, "DEFAULT_CONFIG", tmp / "etc" / "sentinel.toml")
    code, _out, err = run(capsys, "status")
    assert code == 2
    assert "--config config/sentinel.toml" in err and "SENTINEL_CONFIG" in err, err


def test_drill_list_json_is_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`drill list --json` lists every scenario with whether it can run here."""
    code, out, _err = run(capsys, "drill", "list", "--json", "--config", str(config))
    assert code == 0
    listing = json.loads(out)
    assert {s["name"] for s in listing} >= {"threshold", "brute_force", "file_change"}
    assert all(set(s) == {"name", "description", "available", "unavailable_reason"} for s in listing)


def test_an_unknown_drill_scenario_is_named_before_anything_else(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo is a usage error (exit 2) naming it, not "the agent is not running"."""
    code, _out, err = run(capsys, "drill", "--scenario", "nope", "--config", str(config))
    assert code == 2
    assert "unknown scenario 'nope'" in err and "not running" not in err, err


@pytest.mark.parametrize("limit", ["-1", "0", "ten"])
def test_a_limit_below_one_is_refused(config: Path, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    """`--limit` takes a whole number of at least 1 (hazards and tickets alike)."""
    for command in (["hazards", "list"], ["tickets", "list"]):
        code, _out, err = run(capsys, *command, "--limit", limit, "--config", str(config))
        assert code == 2 and "--limit" in err, (command, err)


def test_the_deadline_column_fits_its_header(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every row's cells start where the header's do, overdue mark included."""
    cfg = load(config)
    store = open_store(cfg)
    try:
        for i, severity in enumerate((Severity.CRITICAL, Severity.MINOR)):
            store.apply(
                Finding(
                    rule=f"r{i}",
                    subject="s",
                    state="firing",
                    severity=severity,
                    category=Category.STABILITY,
                    title=f"title {i}",
                    time=1.0,  # long past: the deadline is overdue (" !")
                )
            )
    finally:
        store.close()
    code, out, _err = run(capsys, "hazards", "list", "--config", str(config))
    assert code == 0
    header, *rows = out.splitlines()
    title_at = header.index("TITLE")
    assert len(rows) == 2
    for row in rows:
        assert row[title_at:].startswith("title "), (header, row)
        assert row[title_at - 1] == " " and "!" in row  # overdue, and still aligned


def test_an_unwritable_report_fails_before_raising_hazards(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect -o /proc/x.md` exits 1 naming the file, and the store holds no hazard from it."""
    root = tmp / "root" / "etc"
    root.mkdir(parents=True)
    (root / "motd").write_text("hello\n")
    (tmp / "checks.d").mkdir()
    (tmp / "checks.d" / "c.toml").write_text(
        '[[checks]]\nid = "motd"\ntitle = "notice"\ncategory = "data_security"\nseverity = "major"\n'
        'remediation = "write it"\ntype = "lines"\npaths = ["/etc/motd"]\npattern = "authorised"\n'
    )
    config = write_config(tmp, health=False, extra=f'\n[inspect]\nroot = "{tmp / "root"}"\n')
    code, out, err = run(capsys, "inspect", "-o", "/proc/x.md", "--config", str(config))
    assert code == 1 and "cannot write /proc/x.md" in err and out == "", err
    code, out, _err = run(capsys, "hazards", "list", "--json", "--config", str(config))
    assert json.loads(out) == []
    code, out, err = run(capsys, "inspect", "-o", str(tmp / "report.md"), "--config", str(config))
    assert code == 1 and "motd" in (tmp / "report.md").read_text()  # a failed check: problems found


def test_a_port_conflict_names_the_address(tmp: Path) -> None:
    """`sentinel run` on a taken port: one line with host:port, exit 1, no traceback."""
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        config = write_config(tmp, port=port, health=False)
        result = subprocess.run(
            [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    line = [x for x in result.stderr.splitlines() if x.startswith("sentinel:")]
    assert line == [
        f"sentinel: cannot start: cannot listen on 127.0.0.1:{port} for /metrics: Address already in use"
        " (another agent or program listens there; see [metrics] listen)"
    ], result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr
