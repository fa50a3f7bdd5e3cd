"""The rectification ledger export, and the CLI around hazards."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.cli import main as cli
from sentinel.core.model import Category, Severity
from sentinel.hazards import export
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.agent import write_config

DOCS_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ledger.md"


def sample_store(store: HazardStore, clock: FakeClock) -> None:
    """Four hazards in different states: the sample the docs show."""
    store.apply(
        finding(
            clock,
            rule="filesystem_space_low",
            subject="/var",
            severity=Severity.MAJOR,
            rectification=("Find what grew on /var", "Archive old logs"),
        )
    )
    store.apply(
        finding(
            clock,
            rule="ssh_bruteforce",
            subject="203.0.113.9",
            severity=Severity.MAJOR,
            category=Category.CYBER_ATTACK,
            auto_resolve=False,
            rectification=("Block 203.0.113.9 at the branch firewall", "Check for a successful login"),
        )
    )
    store.apply(
        finding(
            clock,
            rule="usb_storage",
            subject="0781:5567 SanDisk",
            severity=Severity.CRITICAL,
            category=Category.DATA_SECURITY,
            auto_resolve=False,
            rectification=("Identify who attached the device",),
        )
    )
    clock.advance(3600)
    store.act(1, Action.ACK, by="wang.li")
    store.tick(1, 1, by="wang.li")
    store.tick(1, 2, by="wang.li")
    store.act(1, Action.RESOLVE, by="wang.li", note="logs archived")
    store.act(1, Action.CLOSE, by="zhao.min", note="verified free space 41 %")
    store.act(2, Action.START, by="chen.jie")
    store.tick(2, 1, by="chen.jie")
    clock.advance(5 * 3600)
    store.check_deadlines()


def test_markdown_ledger_matches_the_docs_example(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """The example in docs/examples/ledger.md is exactly what the exporter renders."""
    store = make_store()
    sample_store(store, clock)
    text = export.to_markdown(
        list(reversed(store.records(full=True))),
        terminal="teller-07",
        branch="0101 Xinjiekou",
        generated="2027-01-15 09:00 UTC",
    )
    if os.environ.get("SENTINEL_REGEN_DOCS"):
        DOCS_EXAMPLE.write_text(text, encoding="utf-8")
    assert DOCS_EXAMPLE.read_text(encoding="utf-8") == text
    assert "| 3 | critical | data_security | open |" in text
    assert "Verified and closed by zhao.min" in text
    assert "escalation level 1 (branch)" in text


def test_csv_cells_cannot_become_formulas(store: HazardStore, clock: FakeClock) -> None:
    """A subject or title starting with = + - @ is quoted so spreadsheets show it as text."""
    store.apply(finding(clock, subject='=HYPERLINK("http://evil")', rectification=("@SUM(A1)",)))
    rows = list(csv.DictReader(io.StringIO(export.to_csv(store.records(full=True)))))
    assert rows[0]["subject"].startswith("'=")
    assert rows[0]["measures"].startswith("[ ] @SUM") or rows[0]["measures"].startswith("'")
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), cell


def test_markdown_escapes_table_breakers(store: HazardStore, clock: FakeClock) -> None:
    """A pipe or newline in a subject does not break the table."""
    store.apply(finding(clock, subject="a|b\nc"))
    text = export.to_markdown(store.records(full=True), terminal="t", branch="b", generated="now")
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert "a\\|b c" in row and row.count("|") - row.count("\\|") == 11


@pytest.fixture
def config_path(tmp: Path) -> Path:
    return write_config(tmp)


def test_cli_round_trip(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """list/show/ack/check/export on a store written by the agent's code; errors exit 1 or 2."""
    from sentinel.agent.wiring import open_store
    from sentinel.config.loader import load

    store = open_store(load(config_path), clock=FakeClock())
    store.apply(finding(FakeClock(), subject="/data"))
    store.close()
    args = ["--config", str(config_path)]
    assert cli.main(["hazards", "list", *args]) == 0
    assert "disk on /data" in capsys.readouterr().out
    assert cli.main(["hazards", "ack", "1", "--by", "alice", *args]) == 0
    assert cli.main(["hazards", "check", "1", "2", "--by", "alice", "--note", "rotated", *args]) == 0
    capsys.readouterr()
    assert cli.main(["hazards", "show", "1", *args]) == 0
    shown = capsys.readouterr().out
    assert "2. [x] check log rotation" in shown and "alice" in shown
    assert cli.main(["hazards", "show", "1", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "acknowledged"
    assert cli.main(["hazards", "close", "1", "--by", "bob", *args]) == 1
    assert "cannot close a hazard that is acknowledged" in capsys.readouterr().err
    assert cli.main(["hazards", "show", "99", *args]) == 1
    with pytest.raises(SystemExit) as info:
        cli.main(["hazards", "ack", "1", *args])  # --by missing
    assert info.value.code == 2
    for fmt in ("markdown", "csv", "json"):
        assert cli.main(["hazards", "export", "--format", fmt, *args]) == 0
    out = capsys.readouterr().out
    assert "rectification ledger" in out and "measures_done" in out
    assert cli.main(["hazards", "export", "--since", "yesterday", *args]) == 2
