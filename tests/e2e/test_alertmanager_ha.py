"""An Alertmanager HA pair clustered on loopback receiving from the real agent, and the shipped
example routing config."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.sources.host.drill_probe import clear_probe, set_probe
from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.e2e.conftest import Alertmanager
from tests.e2e.test_alertmanager import PROBE_RULE
from tests.support.agent import AgentProcess
from tests.support.net import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_shipped_routing_config_is_valid() -> None:
    """amtool accepts deploy/alertmanager/alertmanager.yml."""
    amtool = require_tool("amtool", "prometheus-alertmanager")
    result = subprocess.run(
        [amtool, "check-config", str(ROOT / "deploy/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ha_pair_both_see_the_alert_even_with_one_peer_down_at_first(
    start_agent: Callable[..., AgentProcess], alertmanager: Callable[..., Alertmanager], tmp: Path
) -> None:
    """The agent sends to both peers; with the second peer down at first, it still gets the alert
    (gossip and the periodic re-send), and both resolve it."""
    cluster_a, cluster_b = free_port(), free_port()
    first = alertmanager("am-a", cluster_port=cluster_a, peers=(cluster_b,))
    second_port = free_port()
    urls = f'["{first.url}", "http://127.0.0.1:{second_port}"]'
    sink = f'\n[[sinks]]\nname = "am"\ntype = "alertmanager"\nurls = {urls}\nresend_interval = "1s"\n'
    start_agent(PROBE_RULE + sink, health=False)
    set_probe(tmp / "state", 1.0, until=9_999_999_999)
    wait_until(first.alerts, timeout=20)
    second = alertmanager("am-b", cluster_port=cluster_b, peers=(cluster_a,), port=second_port)
    (alert,) = wait_until(second.alerts, timeout=30)
    assert alert["labels"]["alertname"] == "probe_high" and alert["labels"]["hazard_id"] == "1"
    clear_probe(tmp / "state")
    for peer in (first, second):
        wait_until(lambda p=peer: not p.alerts(), timeout=30)
