"""Security of the agent itself: private state, secrets never leaked, CLI write refusal."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentinel.agent.wiring import open_store
from sentinel.config.loader import load
from sentinel.sources.host.drill_probe import set_probe
from sentinel.testing import FakeClock, wait_until
from tests.e2e.test_drills import DRILL_RULES
from tests.hazards.conftest import finding
from tests.support.agent import AgentProcess, write_config
from tests.support.net import WebhookReceiver, free_port

pytestmark = pytest.mark.e2e
SECRET = b"whsec_c2VudGluZWwtc2VjcmV0LWRvLW5vdC1sZWFr"  # base64 of sentinel-secret-do-not-leak


def test_secrets_never_reach_logs_metrics_status_store_or_tickets(start_agent: Any, tmp: Path) -> None:
    """The webhook secret (file and decoded form) appears nowhere the agent writes or serves."""
    import base64

    (tmp / "hook.secret").write_bytes(SECRET)
    receiver = WebhookReceiver(base64.b64decode(SECRET[6:]), port=free_port()).start()
    try:
        sink = (
            f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
            'secret_file = "hook.secret"\n'
        )
        agent: AgentProcess = start_agent(DRILL_RULES + sink, health=False)
        set_probe(tmp / "state", 1.0, until=9_999_999_999)
        receiver.wait_for(lambda got: len(got) >= 1)
        assert receiver.bad_signatures == 0
        exposed = [agent.scrape(), agent.log(), (tmp / "state" / "status.json").read_text()]
        db = sqlite3.connect(tmp / "state" / "hazards.db")
        exposed += [
            str(row)
            for table in ("hazards", "history", "outbox")
            for row in db.execute(f"SELECT * FROM {table}")
        ]
        db.close()
        exposed += [json.dumps(body) for _, body in receiver.received]
        for text in exposed:
            assert SECRET.decode() not in text
            assert "sentinel-secret-do-not-leak" not in text
    finally:
        receiver.stop()


def test_state_files_are_private(start_agent: Any, tmp: Path) -> None:
    """state_dir 0700; every file the agent writes there 0600."""
    agent: AgentProcess = start_agent(health=False)
    wait_until((tmp / "state" / "status.json").exists)
    state = tmp / "state"
    assert state.stat().st_mode & 0o777 == 0o700
    for path in state.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
    assert agent.proc.poll() is None


def test_cli_refuses_lifecycle_commands_without_write_access(tmp: Path) -> None:
    """A user who can read but not write the store can list, not ack; the trail is unchanged."""
    config = write_config(tmp)
    store = open_store(load(config))
    store.apply(finding(FakeClock()))
    store.close()
    db_path = tmp / "state" / "hazards.db"
    db_path.chmod(0o400)
    base = [sys.executable, "-m", "sentinel", "hazards"]
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    ack = subprocess.run(
        [*drop, *base, "ack", "1", "--by", "mallory", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ack.returncode == 1
    assert "refused: you may not change the hazard store" in ack.stderr
    listing = subprocess.run(
        [*drop, *base, "list", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and "disk on /" in listing.stdout
    db_path.chmod(0o600)
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM history WHERE actor = 'mallory'").fetchone()[0] == 0
    db.close()
