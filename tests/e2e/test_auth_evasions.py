"""Issue 17's evasions and losses, each against a real `sentinel run` with the shipped rules.

Each test fails on the code before issue 17: a sudo to root hidden by an injected field, failed
logins dropped for a stray byte, a root login forged through the journal, a lagging burst expired
by the wall clock, lines lost to copytruncate, a symlink followed to a secret, a huge journal entry
counted many times, and duplicate evidence after SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.e2e.conftest import AgentProcess, wait_for_log
from tests.e2e.test_detectors import hazards, metric, with_shipped_rules
from tests.sources.detectors.test_auth import write_fake_journalctl

pytestmark = pytest.mark.e2e


def stamp(offset: float = 0.0) -> str:
    return time.strftime("%b %e %H:%M:%S", time.localtime(time.time() + offset))


def append(log: Path, data: str | bytes) -> None:
    with open(log, "ab") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()


def auth_conf(log: Path, poll: str = "0.1s") -> str:
    return f'\n[collectors.auth]\nsource = "file"\nfiles = ["{log}"]\npoll_interval = "{poll}"\n'


def file_agent(start_agent: Any, tmp: Path, *, poll: str = "0.1s") -> tuple[AgentProcess, Path]:
    log = tmp / "auth.log"
    log.touch()
    with_shipped_rules(tmp)
    return start_agent(auth_conf(log, poll), health=False), log


def rules_of(agent: AgentProcess, rule: str) -> list[dict[str, Any]]:
    return [h for h in hazards(agent) if h["rule"] == rule]


def test_sudo_field_injection_does_not_hide_a_sudo_to_root(start_agent: Any, tmp: Path) -> None:
    """`COMMAND=... ; USER=nobody` in the arguments: still a sudo to root by an unlisted user."""
    agent, log = file_agent(start_agent, tmp)
    append(
        log,
        f"{stamp()} teller07 sudo:  mallory : TTY=pts/3 ; PWD=/home/mallory ; USER=root ; "
        "COMMAND=/usr/bin/echo x ; USER=nobody\n",
    )
    found = wait_until(lambda: rules_of(agent, "root_by_unlisted_user"), timeout=15)
    assert found[0]["subject"] == "mallory"
    assert wait_until(lambda: rules_of(agent, "log_forgery"), timeout=15)


def test_invalid_utf8_in_user_names_loses_no_failed_login(start_agent: Any, tmp: Path) -> None:
    """8 failures with a raw \\xff in the user name: a brute-force hazard, no malformed line."""
    agent, log = file_agent(start_agent, tmp)
    for i in range(8):
        append(
            log,
            f"{stamp()} teller07 sshd[{300 + i}]: Failed password for invalid user adm".encode()
            + b"\xff"
            + f"in from 203.0.113.77 port {41000 + i} ssh2\n".encode(),
        )
    found = wait_until(lambda: rules_of(agent, "login_bruteforce"), timeout=15)
    assert found[0]["subject"] == "203.0.113.77"
    assert metric(agent, 'sentinel_events_malformed_total{detector="auth"}') == 0


def entry(message: Any, n: int, **fields: Any) -> bytes:
    base = {
        "__CURSOR": f"s=feed;i={n:x}",
        "__REALTIME_TIMESTAMP": str(int(time.time() * 1e6)),
        "MESSAGE": message,
        "SYSLOG_IDENTIFIER": "sshd",
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_PID": str(1000 + n),
        "_HOSTNAME": "teller07",
        "_TRANSPORT": "syslog",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def journal_agent(start_agent: Any, tmp: Path, entries: list[bytes]) -> AgentProcess:
    script = write_fake_journalctl(tmp, entries)
    with_shipped_rules(tmp)
    conf = f'\n[collectors.auth]\nsource = "journal"\njournalctl = "{script}"\npoll_interval = "0.1s"\n'
    return start_agent(conf, health=False)


def test_a_root_login_forged_through_the_journal_is_a_forgery(start_agent: Any, tmp: Path) -> None:
    """`logger -t sshd` (uid 1000) saying `Accepted password for root`: no root_login; log_forgery."""
    forged = entry(
        "Accepted password for root from 198.51.100.7 port 40000 ssh2",
        1,
        _COMM="logger",
        _EXE="/usr/bin/logger",
        _UID="1000",
        _SYSTEMD_UNIT="session-4.scope",
    )
    marker = entry("Failed password for root from 192.0.2.200 port 40001 ssh2", 2)
    agent = journal_agent(start_agent, tmp, [forged, marker])
    wait_until(
        lambda: metric(agent, 'sentinel_events_total{detector="auth",kind="login_failed"}') == 1, timeout=15
    )
    found = wait_until(lambda: rules_of(agent, "log_forgery"), timeout=15)
    assert "logger" in found[0]["title"]
    assert not [h for h in rules_of(agent, "root_login") if h["subject"] == "198.51.100.7"]


def test_a_huge_entry_no_timestamp_and_nul_lose_nothing(start_agent: Any, tmp: Path) -> None:
    """A 1 MiB entry is one malformed input; an entry without a time and one with a NUL still count."""
    entries = [
        entry("x" * (1 << 20), 1),
        entry("Failed password for root from 203.0.113.31 port 1 ssh2", 2, __REALTIME_TIMESTAMP=None),
        entry(list(b"Invalid user ev\x00il from 203.0.113.32 port 2"), 3),
    ]
    agent = journal_agent(start_agent, tmp, entries)
    wait_until(
        lambda: metric(agent, 'sentinel_events_total{detector="auth",kind="invalid_user"}') == 1, timeout=15
    )
    assert metric(agent, 'sentinel_events_total{detector="auth",kind="login_failed"}') == 1
    assert metric(agent, 'sentinel_events_malformed_total{detector="auth"}') == 1


def test_a_burst_stamped_an_hour_behind_still_fires(start_agent: Any, tmp: Path) -> None:
    """8 failures stamped -1 h, with the writer's 30 s housekeeping passing between them: a hazard."""
    agent, log = file_agent(start_agent, tmp)

    def failure(i: int) -> str:
        return (
            f"{stamp(-3600 + 5 * i)} teller07 sshd[{500 + i}]: Failed password for root from 203.0.113.88"
            f" port {42000 + i} ssh2\n"
        )

    for i in range(4):
        append(log, failure(i))
    wait_until(
        lambda: metric(agent, 'sentinel_events_total{detector="auth",kind="login_failed"}') == 4, timeout=15
    )
    time.sleep(32)  # the real clock must pass one housekeeping (every 30 s) between the halves
    for i in range(4, 8):
        append(log, failure(i))
    found = wait_until(lambda: rules_of(agent, "login_bruteforce"), timeout=20)
    assert found[0]["subject"] == "203.0.113.88"


def test_copytruncate_loses_no_line(start_agent: Any, tmp: Path) -> None:
    """Lines written after the last poll and before the truncation are read from logrotate's copy."""
    agent, log = file_agent(start_agent, tmp, poll="2s")
    series = 'sentinel_events_total{detector="auth",kind="invalid_user"}'

    def lines(start: int, n: int) -> str:
        return "".join(
            f"{stamp()} t sshd[{i}]: Invalid user u{i} from 192.0.2.{i % 250} port {i}\n"
            for i in range(start, start + n)
        )

    append(log, lines(0, 100))
    wait_until(lambda: metric(agent, series) == 100, timeout=15)
    time.sleep(0.3)  # just after a poll: the next one is ~2 s away
    append(log, lines(100, 6))
    shutil.copyfile(log, tmp / "auth.log.1")
    os.truncate(log, 0)
    append(log, lines(106, 194))
    wait_until(lambda: metric(agent, series) == 300, timeout=20)
    time.sleep(2.5)
    assert metric(agent, series) == 300


def test_a_symlink_swapped_in_for_the_log_is_not_followed(start_agent: Any, tmp: Path) -> None:
    """auth.log replaced by a symlink to a 0600 file of syslog-looking lines: refused, logged, down."""
    agent, log = file_agent(start_agent, tmp)
    append(log, f"{stamp()} t sshd[1]: Invalid user before from 192.0.2.1 port 1\n")
    wait_until(
        lambda: metric(agent, 'sentinel_events_total{detector="auth",kind="invalid_user"}') == 1, timeout=15
    )
    secret = tmp / "secret"
    secret.write_text(f"{stamp()} t sshd[2]: Accepted password for root from 198.51.100.99 port 2 ssh2\n")
    secret.chmod(0o600)
    log.rename(tmp / "auth.log.1")
    log.symlink_to(secret)
    wait_for_log(agent, "log_refused", timeout=15, reason="symlink")
    wait_until(lambda: metric(agent, 'sentinel_detector_up{detector="auth"}') == 0, timeout=15)
    assert metric(agent, 'sentinel_events_total{detector="auth",kind="login_accepted"}') == 0
    assert not rules_of(agent, "root_login")


def test_sigkill_at_random_moments_duplicates_nothing(start_agent: Any, tmp: Path) -> None:
    """400 root logins from distinct sources while the agent is SIGKILLed and restarted 5 times
    (once right after its start): 400 hazards, each seen once (positions commit with findings)."""
    agent, log = file_agent(start_agent, tmp)
    total, written = 400, []
    rng = random.Random(17)
    done = threading.Event()

    def writer() -> None:
        for i in range(total):
            a, b = divmod(i, 250)
            append(
                log,
                f"{stamp()} t sshd[{i}]: Accepted password for root from 10.17.{a}.{b + 1} port {i} ssh2\n",
            )
            written.append(i)
            time.sleep(rng.uniform(0.0, 0.02))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    agents = [agent]
    try:
        for round_ in range(5):
            time.sleep(rng.uniform(0.05, 0.3) if round_ == 0 else rng.uniform(0.3, 1.5))
            agents[-1].proc.send_signal(signal.SIGKILL)
            agents[-1].proc.wait(10)
            agents[-1].stop()
            agents.append(start_agent(auth_conf(log), health=False))
    finally:
        thread.join(30)
    assert done.is_set()
    last = agents[-1]

    def all_seen() -> list[dict[str, Any]]:
        found = rules_of(last, "root_login")
        return found if len(found) >= total else []

    found = wait_until(all_seen, timeout=60)
    assert len(found) == total
    assert sorted({h["occurrences"] for h in found}) == [1]
