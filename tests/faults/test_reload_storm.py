"""Issue 19, items 6 and 11: 100 SIGHUPs in 10 s under 50 auth lines/s and 50 file changes/s.

Every auth line comes from its own address and every file is new, so each must end as its own
hazard: nothing read and then dropped by a reload, nothing changed and never reported. The
counters the reloads rebuilt stay monotonic.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sentinel.testing import wait_until
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RULE = """
[[rules]]
name = "r19_login_failed"
category = "cyber_attack"
event = "auth.login_failed"
group_by = ["source"]
severity = "major"
title = "failed login from {source}"
"""
RATE = 50
SECONDS = 12


def drain(agent: AgentProcess, stop: threading.Event) -> None:
    """Read the notify socket as systemd would (the test listener reads only when asked)."""
    sock = agent.notify._sock
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            agent.notify.messages.append(sock.recv(65536).decode("utf-8", "replace"))
        except TimeoutError:
            continue
        except OSError:
            return


def reloads_seen(agent: AgentProcess) -> int:
    return sum(1 for e in agent.log_events() if e.get("event") == "config_reloaded")


def counter(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_hundred_reloads_lose_no_line_and_no_change(tmp: Path) -> None:
    """Lines and changes written across 100 reloads all become hazards; counters never drop."""
    rules = tmp / "rules.d"
    rules.mkdir()
    (rules / "r.toml").write_text(RULE)
    shutil.copy(ROOT / "config" / "rules.d" / "integrity.toml", rules)
    log = tmp / "auth.log"
    log.write_text("")
    watched = tmp / "watched"
    watched.mkdir()
    port = free_port()
    extra = (
        f'\n[collectors.auth]\nenabled = true\nsource = "file"\nfiles = ["{log}"]\n'
        f'poll_interval = "100ms"\ndrill_log = false\n'
        f'\n[[integrity.watch]]\npath = "{watched}"\npolicy = "critical"\n'
    )
    config = write_config(tmp, port=port, health=False, extra=extra)
    config.write_text(config.read_text().replace("[agent]\n", f'[agent]\nrules_dir = "{rules}"\n', 1))
    agent = AgentProcess(tmp, config, port)
    stop = threading.Event()
    try:
        agent.wait_ready()
        wait_until(lambda: "sentinel_fim_baseline_valid 1.0" in agent.scrape(), timeout=30)
        drainer = threading.Thread(target=drain, args=(agent, stop), daemon=True)
        drainer.start()
        written = {"lines": 0, "files": 0}

        def write() -> None:
            with log.open("a", buffering=1) as fh:
                t0 = time.monotonic()
                for i in range(RATE * SECONDS):
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
                    fh.write(
                        f"{stamp} t sshd[1]: Failed password for invalid user u from "
                        f"10.9.{i // 250}.{i % 250 + 1} port 1 ssh2\n"
                    )
                    written["lines"] += 1
                    (watched / f"f{i:04d}").write_text(str(i))
                    written["files"] += 1
                    time.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1.0)
        seen: list[float] = []
        for _ in range(100):
            agent.signal(signal.SIGHUP)
            time.sleep(0.1)
            if len(seen) < 20:
                text = agent.scrape()
                seen.append(counter(text, "sentinel_fim_changes_total{"))
        writer.join()
        db = tmp / "state" / "hazards.db"

        def hazards(rule: str) -> set[str]:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                return {r[0] for r in conn.execute("SELECT subject FROM hazards WHERE rule = ?", (rule,))}
            finally:
                conn.close()

        files = {str(watched / f"f{i:04d}") for i in range(written["files"])}
        try:
            wait_until(lambda: len(hazards("r19_login_failed")) >= written["lines"], timeout=60)
            wait_until(lambda: files <= hazards("fim_critical_change"), timeout=60)
        except TimeoutError:
            pass
        lost_lines = written["lines"] - len(hazards("r19_login_failed"))
        lost_files = sorted(files - hazards("fim_critical_change"))[:5]
        dropped = [line for line in agent.scrape().splitlines() if line.startswith("sentinel_queue_dropped")]
        assert lost_lines == 0 and not lost_files, (
            lost_lines,
            len(files - hazards("fim_critical_change")),
            lost_files,
            dropped,
            reloads_seen(agent),
        )
        reloads = sum(1 for e in agent.log_events() if e.get("event") == "config_reloaded")
        assert reloads >= 20, reloads  # SIGHUPs arriving during a reload coalesce (fewer on a loaded machine)
        assert seen == sorted(seen), seen  # counters are monotonic across the reloads
        assert agent.proc.poll() is None
    finally:
        stop.set()
        agent.stop()
