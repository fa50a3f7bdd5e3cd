"""The real agent delivering hazards to a real Alertmanager (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.sources.host.drill_probe import clear_probe, set_probe
from sentinel.testing import wait_until
from tests.e2e.conftest import Alertmanager
from tests.support.agent import AgentProcess

pytestmark = pytest.mark.e2e

PROBE_RULE = """
[[rules]]
name = "probe_high"
category = "stability"
metric = "sentinel_drill_probe_value"
threshold = 1
op = ">="
severity = "major"
title = "Probe high on {subject}"
"""


def test_hazard_fires_and_resolves_in_alertmanager(
    start_agent: Callable[..., AgentProcess], alertmanager: Callable[..., Alertmanager], tmp: Path
) -> None:
    """While the hazard is open the alert is active with our labels; resolving it ends the alert."""
    am = alertmanager()
    sinks = f'\n[[sinks]]\nname = "am"\ntype = "alertmanager"\nurls = ["{am.url}"]\nresend_interval = "1s"\n'
    agent = start_agent(PROBE_RULE + sinks, health=False)
    state = tmp / "state"
    set_probe(state, 1.0, until=9_999_999_999)
    alerts = wait_until(am.alerts, timeout=20)
    (firing,) = alerts
    labels = firing["labels"]
    assert labels["alertname"] == "probe_high" and labels["severity"] == "major"
    assert labels["category"] == "stability" and labels["terminal"] == "test-terminal"
    assert labels["branch"] == "0101-test" and labels["drill"] == "false" and labels["hazard_id"] == "1"
    assert firing["annotations"]["title"] == "Probe high on test-terminal"
    assert firing["status"]["state"] == "active"
    clear_probe(state)  # the condition clears: the hazard auto-resolves and the alert ends
    wait_until(lambda: not am.alerts(), timeout=20)
    out = subprocess.run(
        [sys.executable, "-m", "sentinel", "tickets", "list", "--json", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    transitions = [r["transition"] for r in json.loads(out.stdout) if r["delivered_at"]]
    assert sorted(transitions) == ["raised", "resolved"]
