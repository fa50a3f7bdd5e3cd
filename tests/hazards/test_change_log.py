"""IT change records in the store: the `change` object an operation's finding carries, and the
audit trail of change windows (`sentinel change open|close|list`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards import change_log
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.schema import MIGRATIONS, migrate
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock


def finding(details: str, at: float) -> Finding:
    return Finding(
        rule="package_change_outside_window",
        subject="dpkg@2026-12-01T00:00:00Z#1",
        state="firing",
        severity=Severity.MAJOR,
        category=Category.IT_CHANGE,
        title="Change outside an approved window: install a 1.0 by alice",
        time=at,
        details=details,
    )


def test_the_record_keeps_the_change_and_its_latest_account(tmp_path: Path) -> None:
    """`change` is the finding's details as JSON; the update after the monitor's checks replaces
    it on the same record (one operation, one record); other records have no `change` key."""
    clock = FakeClock()
    store = HazardStore(tmp_path / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        first = {"operation": "dpkg@2026-12-01T00:00:00Z#1", "files": ["/usr/bin/a"], "verified_files": 0}
        [created] = store.apply_many([finding(json.dumps(first), clock.time())])
        later = {**first, "verified_files": 1}
        store.apply_many([finding(json.dumps(later), clock.time() + 5)])
        record = store.get(created.hazard_id)
        assert record is not None
        data = record.to_json()
        assert data["change"] == later and data["occurrences"] == 2
        other = Finding("r", "s", "firing", Severity.MINOR, Category.STABILITY, "t", clock.time())
        [plain] = store.apply_many([other])
        plain_record = store.get(plain.hazard_id)
        assert plain_record is not None and "change" not in plain_record.to_json()
    finally:
        store.close()


def test_an_older_store_gains_the_column_and_the_table(tmp_path: Path) -> None:
    """A store at schema 3 migrates: existing hazards keep working, `details` is there, empty."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:3], start=1):
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn) == 3
    columns = {row[1] for row in conn.execute("PRAGMA table_info(hazards)")}
    assert "details" in columns
    assert conn.execute("SELECT COUNT(*) FROM change_windows").fetchone()[0] == 0
    conn.close()


def test_windows_are_opened_closed_and_listed_with_who(tmp_path: Path) -> None:
    """Rows carry the actor; closing twice or an unknown id is refused."""
    path = tmp_path / "h.db"
    actor = {"source": "os", "id": "os:alice", "display": "alice"}
    wid = change_log.open_window(
        path, ticket="CHG-1", start=100.0, end=200.0, actor=actor, note="patch", at=90.0
    )
    [row] = change_log.windows(path)
    assert (row.id, row.ticket, row.opened_by["id"], row.until) == (wid, "CHG-1", "os:alice", 200.0)
    closed = change_log.close_window(path, wid, actor={**actor, "display": "bob"}, at=150.0)
    assert closed.until == 150.0 and closed.closed_by is not None and closed.closed_by["display"] == "bob"
    for bad in (wid, 999):
        try:
            change_log.close_window(path, bad, actor=actor, at=160.0)
        except change_log.ChangeWindowError as exc:
            assert "#" in str(exc)
        else:
            raise AssertionError("closing should be refused")
    assert change_log.windows(tmp_path / "absent.db") == []


def test_cli_open_list_close(tmp_path: Path) -> None:
    """`sentinel change open --ticket --for --by`, `list --json`, `close`; bad durations are usage errors."""
    (tmp_path / "sentinel.toml").write_text('[agent]\nstate_dir = "state"\nbranch = "0101"\n')

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "sentinel",
            "change",
            *args,
            "--config",
            str(tmp_path / "sentinel.toml"),
        ]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    opened = run("open", "--ticket", "CHG-123", "--for", "2h", "--by", "alice", "--json")
    assert opened.returncode == 0, opened.stderr
    window = json.loads(opened.stdout)
    assert window["ticket"] == "CHG-123" and window["by"]["display"] == "alice"
    assert window["by"]["id"].startswith("os:") and window["by"]["uid"] == 0
    listed = json.loads(run("list", "--json").stdout)
    assert [w["id"] for w in listed["adhoc"]] == [window["id"]]
    assert run("close", str(window["id"]), "--by", "bob").returncode == 0
    assert json.loads(run("list", "--json").stdout)["adhoc"] == []
    assert run("close", str(window["id"]), "--by", "bob").returncode == 1
    bad = run("open", "--ticket", "CHG-1", "--for", "forever", "--by", "alice")
    assert bad.returncode == 2 and "--for" in bad.stderr
    assert run("open", "--ticket", "CHG-1", "--for", "30d", "--by", "a").returncode == 2
