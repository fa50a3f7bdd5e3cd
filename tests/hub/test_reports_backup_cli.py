"""Reports, backup/restore and the `sentinel hub` CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sentinel.hub.cli import main
from sentinel.hub.ingest import Signed, parse_ticket
from sentinel.hub.reports import Period, export_ledger, inspection_report, report_markdown
from sentinel.hub.testing import hazard_record, ticket


def test_ledger_export_per_unit_in_three_formats(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """The east primary branch's ledger: its terminals only, TERMINAL/ID rows, full trails in JSON."""
    hub, _ = sample_hub
    period = Period.year(2027)
    md = export_ledger(hub.store, "east", period, "markdown")
    assert md.startswith("# Hazard rectification ledger — East primary branch (east), 2027")
    assert "terminal teller-01, branch 0101" in md and "terminal kiosk-01, branch 0102" in md
    assert "teller-11" not in md
    rows = list(csv.DictReader(io.StringIO(export_ledger(hub.store, "east", period, "csv"))))
    assert {r["terminal"] for r in rows} == {"teller-01", "teller-02", "kiosk-01"}
    assert {r["branch"] for r in rows} == {"0101", "0102"}
    doc = json.loads(export_ledger(hub.store, "0101", period, "json"))
    resolved = next(h for h in doc["hazards"] if (h["terminal"], h["id"]) == ("teller-01", 2))
    assert [h["action"] for h in resolved["history"]] == ["raise", "ack", "resolve"]
    assert resolved["history"][1]["actor"]["id"] == "os:alice"


def test_csv_export_defuses_formulas(hub: Any) -> None:
    """A hostile title cannot become a spreadsheet formula in the fleet CSV."""
    now = hub.clock.time()
    rec = hazard_record("teller-01", 1, at=now, title='=HYPERLINK("http://x")', subject="@evil")
    doc = ticket(rec, transition="raised", history_id=1, at=now)
    hub.store.apply_tickets([parse_ticket(doc, Signed("teller-01", doc["idempotency_key"], int(now)))])
    text = export_ledger(hub.store, None, Period.year(2027), "csv")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["title"].startswith("'=") and row["subject"].startswith("'@")


def test_year_end_inspection_report(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """Found by category and severity, rectified in time, overdue, escalated, recurring, drills, posture."""
    hub, _ = sample_hub
    report = inspection_report(hub.store, "HO", Period.year(2027))
    assert report["found"]["total"] == 7  # the 2026 closed one and the drill are not "found in 2027"
    assert report["found"]["by_category_severity"]["cyber_attack"]["critical"] == 1
    assert report["rectification"]["rectified_within_deadline"] == 1  # teller-01/2 before its deadline
    assert [o["hazard"] for o in report["overdue"]] == ["kiosk-01/1", "teller-01/1"]
    assert report["escalated"] == {"1": 1, "2": 1}
    (recurring,) = report["recurring"]
    assert recurring["hazard"] == "teller-01/4" and not recurring["long_term_mechanisms"][0]["done"]
    assert report["drills"]["scenarios"][0]["stages"] == [
        {"stage": "detect", "runs": 1, "passed": 1},
        {"stage": "ticket", "runs": 1, "passed": 1},
    ]
    posture = {p["check"]: p for p in report["posture"]}
    assert (posture["password_policy"]["pass"], posture["password_policy"]["fail"]) == (1, 1)
    text = report_markdown(report)
    assert "## Recurring hazards and their long-term mechanisms" in text and "kiosk-01/1" in text
    start = inspection_report(hub.store, "0101", Period.year(2027), kind="year-start")
    assert start["unit"]["path"] == ["Head office", "East primary branch", "Riverside"]
    assert start["carried_over"] == [] or all(
        c["hazard"].startswith("teller-0") for c in start["carried_over"]
    )


def _hub_toml(tmp: Path, url: str) -> Path:
    from sentinel.hub.testing import MASTER_KEY, SAMPLE_INVENTORY

    inv = tmp / "inventory.toml"
    lines = ["[head_office]", 'id = "HO"', 'name = "Head office"']
    for p in SAMPLE_INVENTORY["primary_branches"]:
        lines += ["[[primary_branches]]", f'id = "{p["id"]}"', f'name = "{p["name"]}"']
    for b in SAMPLE_INVENTORY["branches"]:
        lines += ["[[branches]]", f'id = "{b["id"]}"', f'primary = "{b["primary"]}"']
    for t in SAMPLE_INVENTORY["terminals"]:
        lines += ["[[terminals]]", f'name = "{t["name"]}"', f'branch = "{t["branch"]}"']
    inv.write_text("\n".join(lines) + "\n")
    import base64

    (tmp / "master.key").write_bytes(base64.b64encode(MASTER_KEY) + b"\n")
    path = tmp / "hub.toml"
    path.write_text(f'[hub]\nstate_dir = "{tmp}"\ninventory = "{inv}"\n[database]\nurl = "{url}"\n')
    return path


def test_cli_enroll_backup_restore_export(tmp: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """enroll shows a secret once, lists fingerprints only; backup/restore round-trips; bad input exits 2."""
    if db_url.startswith("postgresql") and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not found: install postgresql-client")
    config = str(_hub_toml(tmp, db_url))
    assert main(["--config", config, "migrate"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "enroll", "teller-01", "--by", "test"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("whsec_")
    assert main(["--config", config, "enroll", "teller-01"]) == 2  # already enrolled
    assert main(["--config", config, "enroll", "nobody"]) == 2
    assert main(["--config", config, "enroll", "--list", "--json"]) == 0
    listing = capsys.readouterr().out
    assert (
        secret not in listing
        and secret[6:] not in listing
        and json.loads(listing)[0]["terminal"] == "teller-01"
    )
    backup = tmp / "backups" / "hub.backup"
    assert main(["--config", config, "backup", str(backup)]) == 0
    assert backup.stat().st_mode & 0o777 == 0o600
    assert secret[6:] not in backup.read_bytes().decode("latin-1")  # the secret is derived, never stored
    assert main(["--config", config, "enroll", "teller-02", "--by", "test"]) == 0
    assert main(["--config", config, "restore", str(backup)]) == 0
    capsys.readouterr()
    assert main(["--config", config, "enroll", "--list", "--json"]) == 0
    assert [r["terminal"] for r in json.loads(capsys.readouterr().out)] == ["teller-01"]
    out = tmp / "ledger.csv"
    assert (
        main(
            [
                "--config",
                config,
                "export",
                "--unit",
                "east",
                "--year",
                "2027",
                "--format",
                "csv",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text().startswith("terminal,branch,primary_branch,id,")
    assert main(["--config", config, "report", "--unit", "nowhere", "--year", "2027"]) == 2
    assert main(["--config", config, "export", "--unit", "east"]) == 2
    assert "say the period" in capsys.readouterr().err
