"""The real agent delivering hazards to a real Alertmanager (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def test_a_reimaged_terminal_is_a_new_alert_in_a_real_alertmanager(
    alertmanager: Callable[..., Alertmanager], tmp: Path
) -> None:
    """Two stores of one terminal name fire two alerts (Alertmanager's own fingerprints differ,
    and are the ones tests/hazards/test_fleet_ids.py computes)."""
    from sentinel.tickets.config import SinkConfig
    from sentinel.tickets.outbox import OutboxRow
    from sentinel.tickets.sinks.alertmanager import AlertmanagerSink, alert
    from tests.hazards.test_fleet_ids import fingerprint, same_history

    am = alertmanager()
    sink = AlertmanagerSink(SinkConfig(name="am", type="alertmanager", urls=(am.url,)))
    now = time.time()  # Alertmanager refuses alerts that start in the future
    raised = [same_history(tmp / name / "hazards.db", now=now)[0] for name in ("before", "after")]
    for payload in raised:
        row = OutboxRow(1, 1, "am", "raised", json.dumps(payload), payload["idempotency_key"], 0.0, 0)
        outcome = sink.send(row)
        assert outcome.kind == "delivered", outcome
    alerts = wait_until(lambda: (a := am.alerts()) and len(a) == 2 and a, timeout=20)
    got = {int(a["fingerprint"], 16) for a in alerts}
    assert got == {fingerprint(alert(p, now=0)["labels"]) for p in raised} and len(got) == 2
    assert {a["labels"]["hazard_uid"] for a in alerts} == {p["hazard"]["uid"] for p in raised}
