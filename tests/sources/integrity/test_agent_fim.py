"""The monitor inside a real `sentinel run`: realtime hazards, restarts, and a clean /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.sources.integrity.rules_helper import ROOT
from tests.support.agent import wait_for_log

pytestmark = pytest.mark.e2e


def hazards(tmp: Path) -> list[dict[str, Any]]:
    """Hazards in the agent's store, read with the CLI as an operator would."""
    command = [
        sys.executable,
        "-m",
        "sentinel",
        "hazards",
        "list",
        "--json",
        "--config",
        str(tmp / "sentinel.toml"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # a broken CLI fails here, not as a vague timeout
    return list(json.loads(result.stdout))


@pytest.fixture
def watched(tmp: Path) -> str:
    (tmp / "etc").mkdir()
    (tmp / "etc" / "passwd").write_text("root\n")
    (tmp / "rules.d").mkdir()
    shutil.copy(ROOT / "config" / "rules.d" / "integrity.toml", tmp / "rules.d")
    return f'\n[[integrity.watch]]\npath = "{tmp / "etc"}"\npolicy = "critical"\n'


def test_agent_reports_realtime_and_changes_made_while_stopped(
    tmp: Path, watched: str, start_agent: Callable[..., Any], promtool: str
) -> None:
    """A live change and a change made while the agent was down both become critical hazards."""
    agent = start_agent(watched, health=False)
    wait_for_log(agent, "fim_baseline_created")
    (tmp / "etc" / "shadow").write_text("x")
    wait_until(lambda: any(h["subject"] == str(tmp / "etc" / "shadow") for h in hazards(tmp)), timeout=10)
    scrape = agent.scrape()
    assert "sentinel_fim_baseline_valid 1.0" in scrape
    assert 'sentinel_fim_changes_total{kind="created",policy="critical"} 1.0' in scrape
    check = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True, text=True)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stderr
    assert agent.stop() == 0
    (tmp / "etc" / "passwd").write_text("root\nevil\n")
    start_agent(watched, health=False)
    wait_until(lambda: any(h["subject"] == str(tmp / "etc" / "passwd") for h in hazards(tmp)), timeout=10)
    [record] = [h for h in hazards(tmp) if h["subject"] == str(tmp / "etc" / "passwd")]
    assert (record["rule"], record["severity"]) == ("fim_critical_change", "critical")
    assert len([h for h in hazards(tmp) if h["subject"] == str(tmp / "etc" / "shadow")]) == 1
