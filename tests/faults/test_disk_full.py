"""Issue 19, items 4-5: a full state filesystem neither storms the webhook nor stays stuck.

A real agent keeps its state on a 4 MiB tmpfs. 140 hazards are raised while the receiver is
down; the filesystem is filled to the last block; the receiver comes back. Then the space is
freed and the terminal stays busy (50 findings a second). What must hold: one POST per ticket
while the store cannot record deliveries; after the space returns, no write error, the WAL kept
small, every finding a hazard, every ticket delivered, the reserve back; a restart is clean.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.core.db import RESERVE_FILE
from sentinel.testing import wait_until
from tests.support.agent import AgentProcess, write_config
from tests.support.net import WebhookReceiver, free_port

pytestmark = pytest.mark.e2e

RULE = """
[[rules]]
name = "r19_login_failed"
category = "cyber_attack"
event = "auth.login_failed"
group_by = ["source"]
severity = "major"
title = "failed login from {source}"
"""


class CountingReceiver(WebhookReceiver):
    """Counts every POST (answered 2xx or not) per webhook-id."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: Counter[str] = Counter()
        self.ok_posts: Counter[str] = Counter()

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        key = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        with self._lock:
            self.posts[key] += 1
            if 200 <= self.status < 300:
                self.ok_posts[key] += 1
        return super().handle(headers, body)


def fill(path: Path) -> None:
    """Write zeros to `path` until the filesystem refuses one more block."""
    with open(path, "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def failed_logins(log: Path, first: int, count: int) -> None:
    """`count` failed logins, each from its own address (one hazard each)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    lines = "".join(
        f"{stamp} t sshd[1]: Failed password for invalid user u from "
        f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1} port 1 ssh2\n"
        for i in range(first, first + count)
    )
    with log.open("a") as fh:
        fh.write(lines)


def scalar(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_full_disk_no_storm_and_recovery_without_an_operator(
    small_fs: Callable[[str], Path], tmp: Path
) -> None:
    """Fill, free, keep busy: bounded POSTs, every finding and ticket landed, WAL small, restart clean."""
    fs = small_fs("8m")  # 640 hazards with their trail links and tickets take ~3.7 MB (+ the WAL)
    receiver = CountingReceiver().start()
    receiver.status = 503
    rules = tmp / "rules.d"
    rules.mkdir()
    (rules / "r.toml").write_text(RULE)
    log = tmp / "auth.log"
    log.write_text("")
    port = free_port()
    extra = (
        f'\n[collectors.auth]\nenabled = true\nsource = "file"\nfiles = ["{log}"]\n'
        f'poll_interval = "100ms"\ndrill_log = false\n'
        f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\nunsigned = true\n'
        f'max_backoff = "2s"\n'
    )
    config = write_config(tmp, port=port, health=False, extra=extra)
    state = fs / "state"
    text = config.read_text().replace('state_dir = "state"', f'state_dir = "{state}"')
    config.write_text(text.replace("[agent]\n", f'[agent]\nrules_dir = "{rules}"\n', 1))
    db = state / "hazards.db"
    agent = AgentProcess(tmp, config, port)  # its log outside the small filesystem, as journald's is
    try:
        agent.wait_ready()
        wait_until((state / RESERVE_FILE).exists, timeout=20)
        failed_logins(log, 0, 140)
        wait_until(lambda: db.exists() and scalar(db, "SELECT COUNT(*) FROM outbox") == 140, timeout=60)

        fill(fs / "filler")
        receiver.status = 200
        time.sleep(8)  # long enough for a storm: the old dispatcher re-sent at once, ~400 POSTs/s
        assert receiver.ok_posts, "nothing was delivered while the disk was full"
        assert max(receiver.ok_posts.values()) == 1, receiver.ok_posts.most_common(3)
        assert sum(receiver.ok_posts.values()) <= 140

        (fs / "filler").unlink()
        wait_until(lambda: len(receiver.ok_posts) == 140, timeout=60)
        errors_before = _write_errors(agent)
        for second in range(10):  # the terminal stays busy after the space returned
            failed_logins(log, 140 + second * 50, 50)
            time.sleep(1)
        total = 140 + 10 * 50
        wait_until(lambda: scalar(db, "SELECT COUNT(*) FROM hazards") == total, timeout=60)
        wait_until(lambda: len(receiver.ok_posts) == total, timeout=60)
        assert max(receiver.ok_posts.values()) == 1
        assert scalar(db, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL") == 0
        assert _write_errors(agent) == errors_before
        wal = state / "hazards.db-wal"
        assert not wal.exists() or wal.stat().st_size <= 2 << 20
        wait_until((state / RESERVE_FILE).exists, timeout=20)
        assert agent.stop() == 0

        again = AgentProcess(tmp, config, port)
        try:
            again.wait_ready()
            failed_logins(log, total, 10)
            wait_until(lambda: scalar(db, "SELECT COUNT(*) FROM hazards") == total + 10, timeout=30)
            assert _write_errors(again) == 0
        finally:
            assert again.stop() == 0
    finally:
        agent.stop()
        receiver.stop()
        (fs / "filler").unlink(missing_ok=True)


def _write_errors(agent: AgentProcess) -> int:
    names = {"store_write_failed", "ticket_state_write_failed", "housekeeping_failed"}
    return sum(1 for e in agent.log_events() if e.get("event") in names)


def test_reserve_is_sized_to_the_filesystem(small_fs: Callable[[str], Path]) -> None:
    """On a 4 MiB filesystem the reserve is 1/16 of it; it is made only with room to spare."""
    from sentinel.core.db import SpaceReserve

    fs = small_fs("4m")
    reserve = SpaceReserve(fs)
    assert reserve.restore() and (fs / RESERVE_FILE).stat().st_size == (4 << 20) // 16
    assert reserve.release() and not reserve.held()
    fill(fs / "filler")
    assert not reserve.restore()
    os.unlink(fs / "filler")
    assert reserve.restore()
