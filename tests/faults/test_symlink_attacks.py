"""Issue 19, items 1-3: the agent's account plants links where root's Sentinel writes.

Each test uses a real second account (created with useradd, removed after): it owns the drill
directory or the state directory, as the `sentinel` account does on an installed terminal, and
root runs the drill or the agent. The victim is a root 0600 file: it must stay as it was, and
the refusal must be said in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from sentinel.config.loader import load
from sentinel.core.files import UnsafePathError
from sentinel.drills.runner import DrillRunner
from sentinel.drills.scenarios import BruteForceScenario, FileChangeScenario
from sentinel.hazards.store import HazardStore
from tests.support.accounts import Account
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port

SECRET = "root secret\n"
RULES = Path(__file__).resolve().parents[2] / "config" / "rules.d"


@pytest.fixture
def victim(shared_tmp: Path) -> Path:
    """A root-owned 0600 file."""
    path = shared_tmp / "victim"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def unchanged(victim: Path) -> bool:
    st = victim.stat()
    return victim.read_text() == SECRET and (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o600)


def owned_dir(path: Path, account: Account) -> Path:
    path.mkdir(mode=0o700)
    os.chown(path, account.uid, account.gid)
    return path


def with_rules(config: Path) -> Path:
    """The config, with the shipped rules (the drills need their rules)."""
    config.write_text(config.read_text().replace("[agent]\n", f'[agent]\nrules_dir = "{RULES}"\n', 1))
    return config


def brute_force_config(directory: Path) -> Path:
    """A config whose auth detector follows the drill log, with the shipped rules."""
    log = directory / "auth.log"
    log.write_text("")
    extra = f'\n[collectors.auth]\nenabled = true\nsource = "file"\nfiles = ["{log}"]\n'
    return with_rules(write_config(directory, extra=extra))


def drill(config_path: Path, scenario: Any) -> Any:
    """Run one scenario as `sentinel drill` does, against a store and an agent that never answer."""
    config = load(config_path)
    store = HazardStore(
        config.agent.state_dir / "hazards.db", config=config.hazards, terminal="t", branch="b"
    )
    try:
        return DrillRunner(config, store, scrape=lambda: "", timeout=0.2).run(scenario)
    finally:
        store.close()


def test_file_change_drill_refuses_a_probe_link_planted_by_the_drill_dirs_owner(
    shared_tmp: Path, victim: Path, other: Account
) -> None:
    """Item 1: `drill-probe.txt -> victim` in the agent-owned drill_dir; root's drill refuses it."""
    drill_dir = owned_dir(shared_tmp / "drill", other)
    other.run("ln", "-s", str(victim), str(drill_dir / "drill-probe.txt"))
    config = with_rules(write_config(shared_tmp, extra=f'\n[integrity]\ndrill_dir = "{drill_dir}"\n'))
    with structlog.testing.capture_logs() as logs:
        result = drill(config, FileChangeScenario())
    assert unchanged(victim)
    assert not result.passed
    refused = [e for e in logs if e["event"] == "drill_stimulus_refused"]
    assert len(refused) == 1 and refused[0]["reason"] == "it is a symlink"
    assert "drill-probe.txt: it is a symlink" in result.stages[0].detail


def test_file_change_drill_as_root_hands_the_probe_to_the_directory_owner(
    shared_tmp: Path, other: Account
) -> None:
    """Item 1, the legitimate case: the probe is written for the directory's owner (by fd)."""
    drill_dir = owned_dir(shared_tmp / "drill", other)
    config = load(write_config(shared_tmp, extra=f'\n[integrity]\ndrill_dir = "{drill_dir}"\n'))
    from sentinel.core.clock import SYSTEM_CLOCK

    FileChangeScenario().stimulate(config, SYSTEM_CLOCK)
    st = (drill_dir / "drill-probe.txt").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (other.uid, other.gid, 0o600)


def test_brute_force_drill_refuses_to_append_through_a_planted_link(
    shared_tmp: Path, victim: Path, other: Account
) -> None:
    """Item 2: `state_dir/drill/auth.log -> victim`, state_dir the other account's."""
    state = owned_dir(shared_tmp / "state", other)
    other.run("mkdir", "-m", "0700", str(state / "drill"))
    other.run("ln", "-s", str(victim), str(state / "drill" / "auth.log"))
    config = brute_force_config(shared_tmp)
    scenario = BruteForceScenario()
    with structlog.testing.capture_logs() as logs:
        result = drill(config, scenario)
    assert unchanged(victim)
    assert not result.passed
    assert [e["reason"] for e in logs if e["event"] == "drill_stimulus_refused"] == ["it is a symlink"]


def test_brute_force_drill_log_is_written_for_the_agent(shared_tmp: Path, other: Account) -> None:
    """Item 2, the legitimate case: the drill log is created the agent's, 0600 (it must read it)."""
    state = owned_dir(shared_tmp / "state", other)
    scenario = BruteForceScenario()
    cfg = load(brute_force_config(shared_tmp))
    scenario.target(cfg)
    from sentinel.core.clock import SYSTEM_CLOCK

    scenario.stimulate(cfg, SYSTEM_CLOCK)
    st = (state / "drill" / "auth.log").stat()
    assert (st.st_uid, st.st_mode & 0o777) == (other.uid, 0o600)
    assert (state / "drill" / "auth.log").read_text().count("Failed password") == scenario.burst


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_the_agent_refuses_a_state_dir_others_can_write(shared_tmp: Path, mode: int) -> None:
    """Item 3: one line naming the directory and the fix, exit 2, nothing written there."""
    config = write_config(shared_tmp, health=False)
    state = shared_tmp / "state"
    state.mkdir()
    state.chmod(mode)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(state) in lines[0] and "writable by" in lines[0] and "chmod go-w" in lines[0]
    assert list(state.iterdir()) == []


def test_planted_temp_names_in_the_state_dir_change_nothing(
    shared_tmp: Path, victim: Path, other: Account
) -> None:
    """Item 3: the agent (root) on the other account's state_dir; links at every pid-style temp
    name of status.json for the next pids; two status intervals later the victim is untouched."""
    state = owned_dir(shared_tmp / "state", other)
    port = free_port()
    config = write_config(shared_tmp, port=port, health=False)
    agent = AgentProcess(shared_tmp, config, port)
    try:
        agent.wait_ready()
        pid = agent.proc.pid
        for guess in range(pid - 2, pid + 3):
            other.run("ln", "-s", str(victim), str(state / f".status.json.{guess}.tmp"))
        agent.notify.wait_count("READY=1", 1)
        before = (state / "status.json").stat().st_mtime_ns
        from sentinel.testing import wait_until

        wait_until(lambda: (state / "status.json").stat().st_mtime_ns != before, timeout=20)
        assert unchanged(victim)
        assert not (state / "status.json").is_symlink()
    finally:
        assert agent.stop() == 0


def test_unsafe_path_error_is_one_line() -> None:
    """The refusal every caller logs or prints."""
    error = UnsafePathError("/x/y", "it is a symlink")
    assert str(error) == "refusing to write /x/y: it is a symlink" and isinstance(error, OSError)
