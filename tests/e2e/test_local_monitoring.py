"""`make local-monitoring` (scripts/local-monitoring.sh) for real: a Prometheus and an Alertmanager
on loopback with the shipped rules scrape a running agent, the always-firing watchdog reaches the
Alertmanager, and Ctrl-C (SIGTERM) stops both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.e2e.conftest import AgentProcess
from tests.support.net import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group `pgid` still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_local_monitoring_scrapes_the_agent_with_the_shipped_rules(start_agent: Any, tmp: Path) -> None:
    """Target up, every shipped rule group loaded, SentinelWatchdog active in the Alertmanager."""
    require_tool("prometheus", "prometheus")
    require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    agent: AgentProcess = start_agent(health=False)
    prom_port, am_port = free_port(), free_port()
    env = {
        **os.environ,
        "PROM_PORT": str(prom_port),
        "AM_PORT": str(am_port),
        "AGENT": f"127.0.0.1:{agent.port}",
        "LOCAL_MONITORING_DIR": str(tmp / "lm"),
    }
    out = tmp / "local-monitoring.out"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(ROOT), "local-monitoring"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "READY" in out.read_text() or proc.poll() is not None, timeout=90)
        assert proc.poll() is None, out.read_text()
        assert answers(f"http://127.0.0.1:{prom_port}/-/ready") and answers(
            f"http://127.0.0.1:{am_port}/-/ready"
        )
        prom = f"http://127.0.0.1:{prom_port}"

        def target_up() -> bool:
            answer = get(f"{prom}/api/v1/query?query=up") or {}
            return any(r["value"][1] == "1" for r in answer.get("data", {}).get("result", []))

        wait_until(target_up, timeout=60)
        groups = {g["name"] for g in get(f"{prom}/api/v1/rules")["data"]["groups"]}
        assert {"sentinel-agent", "sentinel-hazards", "sentinel-recording", "sentinel-node"} <= groups

        def watchdog_in_alertmanager() -> bool:
            alerts = get(f"http://127.0.0.1:{am_port}/api/v2/alerts") or []
            return any(a["labels"].get("alertname") == "SentinelWatchdog" for a in alerts)

        wait_until(watchdog_in_alertmanager, timeout=90)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # Ctrl-C's equivalent for the whole command
        proc.wait(30)
    # make may return before the script has stopped both (it does not always wait for its child
    # on SIGTERM): what counts is that nothing of the command is left running soon after
    wait_until(lambda: not group_alive(proc.pid), timeout=30)
    assert not answers(f"http://127.0.0.1:{prom_port}/-/ready")
    assert not answers(f"http://127.0.0.1:{am_port}/-/ready")
