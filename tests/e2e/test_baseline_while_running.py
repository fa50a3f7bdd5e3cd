"""`sentinel baseline update` and `check` next to a running agent, as an operator runs them: the
drill directory stays in the baseline, no hazard is raised, and roots this machine never had are
"absent" (once), never "vanished"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess, wait_for_log
from tests.e2e.test_drills import fim, sentinel

pytestmark = pytest.mark.e2e
_SCAN = re.compile(r'^sentinel_fim_last_scan_timestamp_seconds\{mode="quick"\} (\S+)$', re.MULTILINE)


def _last_quick_scan(agent: AgentProcess) -> float:
    found = _SCAN.search(agent.scrape())
    return float(found.group(1)) if found else 0.0


def test_update_while_running_keeps_the_drill_root_and_raises_nothing(start_agent: Any, tmp: Path) -> None:
    """After a file-change drill, `baseline update` keeps every root (the drill directory too);
    the agent reloads it and its rescan finds nothing to raise."""
    absent = tmp / "not-on-this-machine"
    extra = fim(tmp) + f'[[integrity.watch]]\npath = "{absent}"\npolicy = "critical"\n'
    agent: AgentProcess = start_agent(extra, health=False)
    wait_for_log(agent, "fim_baseline_created", timeout=30)
    drill = sentinel(agent, "drill", "--scenario", "file_change", "--json", "--timeout", "20")
    assert drill.returncode == 0, drill.stdout + drill.stderr
    before = json.loads(sentinel(agent, "baseline", "show", "--json").stdout)
    hazards_before = json.loads(sentinel(agent, "hazards", "list", "--json").stdout)
    scanned_before = _last_quick_scan(agent)

    update = sentinel(agent, "baseline", "update", "--by", "ops", "--reason", "CHG-1", "--json")
    assert update.returncode == 0, update.stderr
    assert json.loads(update.stdout)["absent_roots"] == [str(absent)]
    wait_for_log(agent, "fim_baseline_reloaded", timeout=30)
    wait_until(lambda: _last_quick_scan(agent) > scanned_before, timeout=60)  # the reload's rescan

    after = json.loads(sentinel(agent, "baseline", "show", "--json").stdout)
    assert after["roots"] == before["roots"]
    assert {"path": str(tmp / "drill"), "policy": "critical"} in after["roots"]
    hazards_after = json.loads(sentinel(agent, "hazards", "list", "--json").stdout)
    assert [h["id"] for h in hazards_after] == [h["id"] for h in hazards_before], hazards_after

    check = sentinel(agent, "baseline", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "vanished" not in check.stdout
    assert check.stdout.count(str(absent)) == 1
    assert f"absent on this machine (1 watched): {absent}" in check.stdout
    logged = [e for e in agent.log_events() if e.get("event") == "fim_roots_absent"]
    assert [e["roots"] for e in logged] == [[str(absent)]]  # the agent says it once, too
