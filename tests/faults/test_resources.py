"""Resource faults: a full state filesystem, a read-only one, wall-clock jumps."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.model import Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.sources.host.drill_probe import clear_probe, set_probe
from sentinel.testing import FakeClock, wait_until
from tests.e2e.conftest import AgentProcess
from tests.e2e.test_drills import DRILL_RULES
from tests.faults.conftest import remount_readonly
from tests.hazards.conftest import finding
from tests.support.records import as_json

pytestmark = pytest.mark.e2e


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return -1.0


def test_full_state_filesystem_keeps_monitoring_and_catches_up(
    start_agent: Any, small_fs: Callable[[str], Path], tmp: Path
) -> None:
    """Disk full: findings are kept and counted as write errors, scrapes go on; space back: it lands."""
    where = small_fs("4m")
    agent: AgentProcess = start_agent(DRILL_RULES, health=False, directory=where)
    state = where / "state"
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the filesystem to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    # the drill probe lives in state_dir: free one page for it, raise it, and fill the rest again
    with open(filler, "r+b") as fh:
        fh.truncate(filler.stat().st_size - 65536)
    set_probe(state, 1.0, until=9_999_999_999)
    with open(filler, "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    text = wait_until(
        lambda: (t := agent.scrape()) and metric(t, "sentinel_store_write_errors_total") > 0 and t, timeout=20
    )
    assert metric(text, "sentinel_up") == 1.0
    assert 'sentinel_collector_up{collector="drill_probe"} 1.0' in text
    filler.unlink()
    wait_until(lambda: 'rule="drill_threshold"' in agent.scrape(), timeout=20)
    clear_probe(state)
    assert agent.proc.poll() is None
    events = [e for e in agent.log_events() if e.get("event") == "store_write_failed"]
    assert events and "full" in events[0]["error"]


def test_read_only_state_dir_refuses_to_start_clearly(small_fs: Callable[[str], Path]) -> None:
    """A read-only state_dir: one line naming the problem, exit 1, no traceback."""
    from tests.support.agent import write_config

    where = small_fs("1m")
    config = write_config(where, health=False)
    (where / "state").mkdir()
    remount_readonly(where)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        remount_readonly(where, readonly=False)
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wall_clock_jumps_do_not_unescalate_or_crash(tmp: Path, clock: FakeClock) -> None:
    """Escalation survives the wall clock going back a day and forward a year."""
    store = HazardStore(tmp / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        store.apply(finding(clock, severity=Severity.CRITICAL))
        clock.advance(5 * 3600)
        store.check_deadlines()
        assert as_json(store.get(1))["escalation_level"] == 1  # type: ignore[index]
        clock.jump_wall(-86400)
        assert store.check_deadlines() == []
        assert as_json(store.get(1))["escalation_level"] == 1  # type: ignore[index]
        assert not as_json(store.get(1))["overdue"]  # type: ignore[index]
        clock.jump_wall(365 * 86400)
        store.check_deadlines()
        assert as_json(store.get(1))["escalation_level"] == 3  # type: ignore[index]
    finally:
        store.close()
