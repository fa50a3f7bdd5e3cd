"""Crash safety: SIGKILL the real agent at random moments while it and the CLI write the store."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel.testing import wait_until
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

RULES = 20


def burning_rules(n: int) -> str:
    """n rules the machine always crosses: n hazards raised within a second of every start."""
    return "".join(
        f'\n[[rules]]\nname = "burn_{i}"\ncategory = "stability"\nmetric = "sentinel_cpus"\n'
        f'threshold = 1\nop = ">="\nseverity = "info"\n'
        for i in range(n)
    )


def note(config: Path, hazard_id: int, text: str) -> bool:
    """A CLI note; True when the CLI said it committed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sentinel",
            "hazards",
            "note",
            str(hazard_id),
            "--by",
            "tester",
            "--note",
            text,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0


def kill_rounds(tmp: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    config = write_config(tmp, port=free_port(), extra=burning_rules(RULES))
    committed: list[tuple[int, str]] = []
    for round_no in range(rounds):
        agent = AgentProcess(tmp, config, 0)
        if round_no == 0:  # the first window counts from READY: on a loaded machine the start alone
            agent.wait_ready()  # can outlast it, and then no round would have anything to race
        deadline = time.monotonic() + rng.uniform(0.3, 2.5)
        k = 0
        while time.monotonic() < deadline:  # CLI transitions race the agent's own writes
            hazard_id = rng.randint(1, RULES)
            text = f"round {round_no} note {k}"
            if note(config, hazard_id, text):
                committed.append((hazard_id, text))
            k += 1
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(10)
        agent.stop()
    assert committed, "no CLI transition committed: the test exercised nothing"
    final = AgentProcess(tmp, config, 0)
    try:
        final.wait_ready()
        db = sqlite3.connect(tmp / "state" / "hazards.db")
        wait_until(lambda: db.execute("SELECT COUNT(*) FROM hazards").fetchone()[0] == RULES, timeout=20)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        live = db.execute(
            "SELECT fingerprint, COUNT(*) FROM hazards WHERE state NOT IN ('closed','cancelled') GROUP BY 1"
        ).fetchall()
        assert len(live) == RULES and all(n == 1 for _, n in live)
        notes = set(db.execute("SELECT hazard_id, note FROM history WHERE action = 'note'").fetchall())
        missing = [c for c in committed if c not in notes]
        assert not missing, f"{len(missing)} committed notes lost, e.g. {missing[:3]}"
        raises = db.execute("SELECT COUNT(*) FROM history WHERE action = 'raise'").fetchone()[0]
        assert raises == RULES  # restarts never raised a duplicate
        db.close()
    finally:
        final.stop()


def test_sigkill_rounds_lose_nothing_committed(tmp: Path) -> None:
    """3 rounds of SIGKILL at random moments: integrity ok, no duplicate, every committed note kept."""
    kill_rounds(tmp, rounds=3, seed=7)


@pytest.mark.slow
def test_sigkill_many_rounds(tmp: Path) -> None:
    """The long variant: 25 rounds."""
    kill_rounds(tmp, rounds=25, seed=11)
