"""Approved change windows (sentinel.rules.windows) and the rules that judge an operation by them:
inside a window info, outside major; recurring, fixed, drop-in and ad-hoc windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentinel.config.loader import ConfigError, load
from sentinel.core.model import Event, Severity, freeze_fields
from sentinel.rules.engine import RuleEngine
from sentinel.rules.windows import ChangesConfig, ChangeWindows, Window, WindowConfig, parse_time
from sentinel.testing import FakeClock
from tests.sources.integrity.rules_helper import ROOT


def at(text: str) -> float:
    value = parse_time(text)
    assert value is not None
    return value


def test_a_weekly_cron_window_in_its_time_zone() -> None:
    """`0 2 * * 6` for 4h in Asia/Shanghai: Saturday 02:00-06:00 there, not an hour later or on Sunday."""
    windows = ChangeWindows(
        ChangesConfig(
            windows=(WindowConfig(ticket="CHG-7", cron="0 2 * * 6", duration=4 * 3600),),
            timezone="Asia/Shanghai",
        )  # type: ignore[arg-type]
    )
    inside = windows.at(at("2026-12-05T05:59:00+08:00"))  # a Saturday
    assert inside is not None and inside.ticket == "CHG-7"
    assert (inside.start, inside.end) == (at("2026-12-05T02:00:00+08:00"), at("2026-12-05T06:00:00+08:00"))
    assert windows.at(at("2026-12-05T06:00:00+08:00")) is None
    assert windows.at(at("2026-12-05T01:59:00+08:00")) is None
    assert windows.at(at("2026-12-06T03:00:00+08:00")) is None  # Sunday
    assert windows.at(at("2026-12-04T19:00:00Z")) is not None  # the same moment written in UTC


def test_fixed_and_drop_in_windows(tmp_path: Path) -> None:
    """A fixed range from the config; TOML and JSON files change management drops in, re-read when
    they change; an unusable file is left out and counted, never fatal."""
    drop = tmp_path / "windows.d"
    drop.mkdir()
    config = ChangesConfig(
        windows=(WindowConfig(ticket="CHG-1", start="2026-12-01T00:00:00Z", end="2026-12-01T01:00:00Z"),),
        drop_in=(drop,),
    )
    windows = ChangeWindows(config)
    assert (windows.at(at("2026-12-01T00:30:00Z")) or Window(0, 0)).ticket == "CHG-1"
    assert windows.at(at("2026-12-02T10:30:00Z")) is None
    (drop / "chg-2.toml").write_text(
        '[[windows]]\nticket = "CHG-2"\nstart = "2026-12-02T10:00:00Z"\nend = "2026-12-02T11:00:00Z"\n'
    )
    (drop / "chg-3.json").write_text(
        json.dumps({"windows": [{"ticket": "CHG-3", "cron": "0 12 * * *", "duration": "30m"}]})
    )
    (drop / "broken.toml").write_text("windows = [ {start = \n")
    found = windows.at(at("2026-12-02T10:30:00Z"))
    assert found is not None and (found.ticket, found.source) == ("CHG-2", "chg-2.toml")
    assert datetime.fromtimestamp(at("2026-12-09T12:10:00Z"), UTC)  # sanity
    assert windows.errors == 1
    (drop / "chg-2.toml").write_text(
        '[[windows]]\nticket = "CHG-2b"\nstart = "2026-12-02T10:00:00Z"\nend = "2026-12-02T10:15:00Z"\n'
    )
    assert windows.at(at("2026-12-02T10:30:00Z")) is None  # the file changed: read again


def test_ad_hoc_windows_come_first() -> None:
    """Windows handed in by the agent (from `sentinel change open`) are asked before the others."""
    adhoc = [Window(100.0, 200.0, "CHG-9", "ad-hoc #1", "alice")]
    windows = ChangeWindows(ChangesConfig(), adhoc=lambda: adhoc)
    assert windows.at(150.0) == adhoc[0] and windows.at(200.0) is None


def operation(when: float) -> Event:
    fields = {
        "summary": "install sntest 1.0",
        "user": "alice",
        "command": "apt-get install sntest",
        "details": json.dumps({"operation": "dpkg@x#1", "files": ["/usr/bin/sntest"]}),
        "rectification": "Restart ssh.service (systemctl restart ssh.service): sshd (pid 812) runs the old "
        "/usr/sbin/sshd",
    }
    return Event("packages", "operation", "dpkg@x#1", when, freeze_fields(fields))


def test_the_shipped_rules_inside_info_outside_major() -> None:
    """One operation, one finding: `package_change` (info, the ticket in title and evidence)
    inside a window, `package_change_outside_window` (major) outside; the record keeps the
    operation's details, and the daemons to restart join its checklist."""
    rules = load(ROOT / "config" / "sentinel.toml").enabled_rules
    windows = ChangeWindows(ChangesConfig(), adhoc=lambda: [Window(100.0, 200.0, "CHG-123", "ad-hoc #1")])
    engine = RuleEngine(rules, clock=FakeClock(), windows=windows)
    [inside] = engine.on_event(operation(150.0))
    assert (inside.rule, inside.severity) == ("package_change", Severity.INFO)
    assert inside.title == "Software change (CHG-123): install sntest 1.0 by alice"
    assert inside.evidence_map["change_ticket"] == "CHG-123"
    assert json.loads(inside.details)["files"] == ["/usr/bin/sntest"]
    assert "details" not in inside.evidence_map and "rectification" not in inside.evidence_map
    assert inside.rectification[-1].startswith("Restart ssh.service")
    [outside] = engine.on_event(operation(250.0))
    assert (outside.rule, outside.severity) == ("package_change_outside_window", Severity.MAJOR)
    assert outside.title == "Change outside an approved window: install sntest 1.0 by alice"
    assert "change_ticket" not in outside.evidence_map


def test_window_config_errors_name_the_key(tmp_path: Path) -> None:
    """A cron window without duration, a range ending before it starts, an unknown zone, a
    change_window on a threshold rule: each fails the load with its key path."""
    (tmp_path / "sentinel.toml").write_text(
        '[agent]\nstate_dir = "s"\nbranch = "b"\n'
        '[changes]\ntimezone = "Mars/Olympus"\n'
        '[[changes.windows]]\ncron = "0 2 * * 6"\n'
        '[[changes.windows]]\nstart = "2026-12-02T10:00:00Z"\nend = "2026-12-02T09:00:00Z"\n'
        '[[rules]]\nname = "x"\ncategory = "it_change"\nmetric = "m"\nthreshold = 1\nseverity = "info"\n'
        'change_window = "inside"\n'
    )
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "sentinel.toml")
    text = "\n".join(err.value.errors)
    assert "changes.timezone" in text and "Mars/Olympus" in text
    assert "changes.windows[0].duration" in text
    assert "changes.windows[1].end" in text
    assert "rules[0].change_window" in text
