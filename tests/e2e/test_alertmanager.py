"""The real agent delivering hazards to a real Alertmanager (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.collectors.drill_probe import clear_probe, set_probe
from sentinel.testing import AgentProcess, free_port, wait_until
from tests.conftest import require_tool

pytestmark = pytest.mark.e2e

AM_CONFIG = """
route:
  receiver: tickets
  group_by: [hazard_id]
receivers:
  - name: tickets
"""

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


class Alertmanager:
    """One Alertmanager process on loopback, optionally clustered with peers."""

    def __init__(
        self, binary: str, directory: Path, *, cluster_port: int | None = None, peers: tuple[int, ...] = ()
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "am.yml").write_text(AM_CONFIG)
        self.port = free_port()
        cluster = (
            [f"--cluster.listen-address=127.0.0.1:{cluster_port}"]
            if cluster_port
            else ["--cluster.listen-address="]
        )
        cluster += [f"--cluster.peer=127.0.0.1:{p}" for p in peers]
        self.log = open(directory / "am.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'am.yml'}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *cluster,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ready, timeout=20)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def alerts(self, active: bool = True) -> list[dict[str, Any]]:
        query = "?active=true&silenced=false&inhibited=false" if active else ""
        with urllib.request.urlopen(self.url + "/api/v2/alerts" + query, timeout=5) as response:
            return list(json.loads(response.read()))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def alertmanager(tmp: Path) -> Iterator[Callable[..., Alertmanager]]:
    binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    started: list[Alertmanager] = []

    def start(name: str = "am", **kwargs: Any) -> Alertmanager:
        am = Alertmanager(binary, tmp / name, **kwargs)
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()


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
