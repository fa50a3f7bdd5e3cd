"""`sentinel inspect` end to end on fixture trees, and scheduled inspections in the agent."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from sentinel.agent.lifecycle import Agent
from sentinel.cli import main as cli
from sentinel.config.loader import load
from sentinel.testing import wait_until
from tests.support.agent import write_config
from tests.support.records import as_json

SHADOW_CHECK = """
[[checks]]
id = "no_empty_passwords"
title = "No account has an empty password"
category = "cyber_attack"
severity = "critical"
remediation = "Lock the account"
type = "lines"
paths = ["/etc/shadow"]
separator = ":"
field = 1
pattern = '^$'
expect = "absent"
"""
CHECKS = (
    SHADOW_CHECK
    + """
[[checks]]
id = "motd_present"
title = "A legal notice is shown at login"
category = "data_security"
severity = "info"
remediation = "Write the bank's notice to /etc/motd"
raise_hazard = false
type = "lines"
paths = ["/etc/motd"]
pattern = 'authorised'
"""
)


@pytest.fixture
def setup(tmp: Path) -> Path:
    """A config whose checks read a fixture root with one failing and one passing check."""
    root = tmp / "root" / "etc"
    root.mkdir(parents=True)
    (root / "shadow").write_text("root:$y$hash:1::::::\nteller::1::::::\n")
    (root / "motd").write_text("Only authorised staff.\n")
    (tmp / "checks.d").mkdir()
    (tmp / "checks.d" / "c.toml").write_text(CHECKS)
    return write_config(tmp, health=False, extra=f'\n[inspect]\nroot = "{tmp / "root"}"\n')


def test_inspect_reports_fails_exits_1_and_raises_a_hazard(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed check: exit 1, remediation shown, one hazard raised; a fixed check resolves it."""
    assert cli.main(["inspect", "--json", "--config", str(setup)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {"pass": 1, "fail": 1, "skip": 0, "error": 0}
    failed = next(c for c in report["checks"] if c["outcome"] == "fail")
    assert failed["id"] == "no_empty_passwords" and "teller" in failed["detail"]
    assert cli.main(["hazards", "list", "--json", "--config", str(setup)]) == 0
    (hazard,) = json.loads(capsys.readouterr().out)
    assert hazard["rule"] == "inspect.no_empty_passwords" and hazard["severity"] == "critical"
    assert hazard["rectification"][0]["text"] == "Lock the account"

    (setup.parent / "root" / "etc" / "shadow").write_text("root:$y$hash:1::::::\nteller:!:1::::::\n")
    assert cli.main(["inspect", "--markdown", "--config", str(setup)]) == 0
    assert "No problems found." in capsys.readouterr().out
    assert cli.main(["hazards", "show", str(hazard["id"]), "--json", "--config", str(setup)]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "resolved"


def test_no_hazards_flag(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--no-hazards reports without touching the store."""
    assert cli.main(["inspect", "--no-hazards", "--config", str(setup)]) == 1
    out = capsys.readouterr().out
    assert "[ FAIL] no_empty_passwords" in out and "fix: Lock the account" in out
    assert not (setup.parent / "state" / "hazards.db").exists()


def test_agent_runs_a_missed_scheduled_inspection_at_start(setup: Path) -> None:
    """A schedule whose last run is days old runs at start and leaves its report in state_dir."""
    setup.write_text(
        setup.read_text() + '\n[[schedules]]\nname = "daily"\nrun = "inspect"\ncron = "0 9 * * *"\n'
    )
    state = setup.parent / "state"
    state.mkdir(mode=0o700)
    (state / "schedules.json").write_text(json.dumps({"daily": datetime(2020, 1, 1).timestamp()}))
    agent = Agent(load(setup))
    agent.start()
    loop = threading.Thread(target=agent._loop)
    loop.start()
    try:
        wait_until((state / "inspection-latest.json").exists, timeout=15)
        data = json.loads((state / "inspection-latest.json").read_text())
        assert data["summary"]["fail"] == 1
        assert agent.store is not None
        wait_until(lambda: agent.store is not None and as_json(agent.store.records()), timeout=10)
        assert as_json(agent.store.records())[0]["rule"] == "inspect.no_empty_passwords"
    finally:
        agent.stop()
        loop.join(5)
        agent._teardown()


def test_a_scheduled_inspection_reads_the_samples_the_agent_holds(
    setup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's inspection builds no collector (auth followers would open their logs again):
    its health part comes from the samples the running collectors last reported."""
    from sentinel.agent import inspection

    def no_building(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a scheduled inspection built the collectors again")

    monkeypatch.setattr(inspection, "build_collectors", no_building)
    setup.write_text(
        setup.read_text() + '\n[[schedules]]\nname = "daily"\nrun = "inspect"\ncron = "0 9 * * *"\n'
    )
    state = setup.parent / "state"
    state.mkdir(mode=0o700)
    (state / "schedules.json").write_text(json.dumps({"daily": datetime(2020, 1, 1).timestamp()}))
    agent = Agent(load(setup))
    agent.start()
    loop = threading.Thread(target=agent._loop)
    loop.start()
    try:
        wait_until((state / "inspection-latest.json").exists, timeout=15)
        report = json.loads((state / "inspection-latest.json").read_text())
        assert "health snapshot failed" not in " ".join(report.get("load_errors", []))
    finally:
        agent.stop()
        loop.join(5)
        agent._teardown()
