"""The real agent with the device collectors: a rule this machine already crosses raises a hazard
that `sentinel hazards list --json` and /metrics both show, and the scrape passes promtool."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess

pytestmark = pytest.mark.e2e

# Memory in use is above 0 % on every running machine: the rule fires on the first batch.
CROSSED_RULE = """
[collectors.filesystems]
interval = "1s"

[collectors.network]
interval = "1s"

[[rules]]
name = "memory_in_use"
category = "terminal_equipment"
metric = "sentinel_memory_used_ratio"
threshold = 0
severity = "major"
title = "Memory use at {value:.0%}"
rectification = ["Nothing to do: this rule exists to prove the pipeline"]
"""


def hazards(agent: AgentProcess) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", "list", "--json", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return list(json.loads(result.stdout))


def test_crossed_health_rule_shows_in_cli_and_metrics(start_agent: Any, promtool: str) -> None:
    """READY=1, then the hazard in `hazards list --json` and /metrics; promtool accepts the scrape."""
    agent: AgentProcess = start_agent(CROSSED_RULE)
    (record,) = wait_until(lambda: [h for h in hazards(agent) if h["rule"] == "memory_in_use"], timeout=20)
    assert (record["severity"], record["category"], record["state"]) == (
        "major",
        "terminal_equipment",
        "open",
    )
    assert record["title"].startswith("Memory use at ")
    assert [r["text"] for r in record["rectification"]] == [
        "Nothing to do: this rule exists to prove the pipeline"
    ]

    text = wait_until(
        lambda: (t := agent.scrape()) and "sentinel_filesystem" in t and "sentinel_network_up" in t and t,
        timeout=20,
    )
    assert 'rule="memory_in_use"' in text and 'hazard_id="' in text
    assert 'sentinel_hazards{category="terminal_equipment",severity="major",state="open"} 1.0' in text
    for name in (
        "sentinel_cpu_seconds_total{",
        "sentinel_memory_used_ratio ",
        "sentinel_processes{",
        "sentinel_filefd_allocated ",
        "sentinel_timesync_synchronised ",
        'sentinel_collector_up{collector="sensors"} 1.0',
        'sentinel_collector_up{collector="filesystems"} 1.0',
    ):
        assert f"\n{name}" in text, name
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )
