"""The real agent killed with SIGKILL while findings stream in and tickets flow: after restart,
every committed transition reaches the receiver (duplicates allowed, always with the same key)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from sentinel.hazards.trail import TICKETED
from sentinel.testing import wait_until
from tests.faults.test_crash import burning_rules
from tests.support.agent import AgentProcess, write_config
from tests.support.net import WebhookReceiver, free_port

pytestmark = pytest.mark.e2e
SECRET = b"crash-test-secret"


def ack(config: Path, hazard_id: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sentinel",
            "hazards",
            "ack",
            str(hazard_id),
            "--by",
            "tester",
            "--config",
            str(config),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


def run_rounds(tmp: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    receiver = WebhookReceiver(SECRET, port=free_port()).start()
    (tmp / "hook.secret").write_bytes(SECRET)
    sink = (
        f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
        f'secret_file = "hook.secret"\nmax_backoff = "1s"\n'
    )
    config = write_config(tmp, port=free_port(), extra=burning_rules(12) + sink)
    try:
        for round_no in range(rounds):
            agent = AgentProcess(tmp, config, 0)
            if round_no == 0:  # the first window counts from READY: on a loaded machine the start
                agent.wait_ready()  # alone can outlast it, and then nothing is committed to check
            deadline = time.monotonic() + rng.uniform(0.4, 2.0)
            while time.monotonic() < deadline:
                ack(config, rng.randint(1, 12))
            agent.proc.send_signal(signal.SIGKILL)
            agent.proc.wait(10)
            agent.stop()
        final = AgentProcess(tmp, config, 0)
        try:
            final.wait_ready()
            db = sqlite3.connect(tmp / "state" / "hazards.db")
            ticketed = {a.value for a in TICKETED}
            rows = db.execute("SELECT id, hazard_id, action FROM history").fetchall()
            expected = {(h, str(hid)) for hid, h, action in rows if action in ticketed}
            db.close()
            assert expected, "nothing was committed: the test exercised nothing"

            def arrived() -> bool:
                got = {(b["hazard"]["id"], k.rsplit("-", 1)[1]) for k, b in receiver.received}
                return expected <= got

            wait_until(arrived, timeout=60)
            keys: dict[str, set[str]] = defaultdict(set)
            for key, body in receiver.received:
                keys[key].add(body["transition"])
            assert all(len(v) == 1 for v in keys.values())
            assert receiver.bad_signatures == 0
        finally:
            final.stop()
    finally:
        receiver.stop()


def test_sigkill_rounds_deliver_every_committed_transition(tmp: Path) -> None:
    """3 rounds of SIGKILL at random moments; then every committed transition arrives."""
    run_rounds(tmp, rounds=3, seed=5)


@pytest.mark.slow
def test_sigkill_many_rounds_deliver_everything(tmp: Path) -> None:
    """The long variant: 20 rounds."""
    run_rounds(tmp, rounds=20, seed=9)
