"""The auth detector: real files and a real journalctl stand-in, garbage, derived events, state."""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel.core.model import Event, Position
from sentinel.sources.detectors.auth import AuthCollector, AuthConfig
from sentinel.sources.detectors.base import StateFile
from sentinel.sources.parsers.authparse import LogRecord
from sentinel.sources.parsers.logrecord import parse_syslog_line

FIXTURES = Path(__file__).parents[2] / "fixtures" / "auth"


class Sink:
    """Collects what a streaming collector emits; keeps the last position like the store does."""

    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()
        self.positions: dict[str, str] = {}

    def __call__(self, items: Sequence[Any]) -> bool:
        for item in items:
            if isinstance(item, Position):
                self.positions[item.source] = item.value
            else:
                self.q.put(item)
        return True

    def stored(self, source: str) -> str | None:
        """What HazardStore.position would answer."""
        return self.positions.get(source)

    def take(self, n: int, timeout: float = 10.0) -> list[Event]:
        return [self.q.get(timeout=timeout) for _ in range(n)]

    def empty(self) -> bool:
        return self.q.empty()


def failed(source: str = "203.0.113.9", user: str = "root") -> str:
    stamp = time.strftime("%b %e %H:%M:%S")
    return f"{stamp} teller01 sshd[99]: Failed password for {user} from {source} port 4242 ssh2\n"


def write(path: Path, data: bytes | str) -> None:
    with open(path, "ab") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def file_collector(tmp: Path, **overrides: Any) -> AuthCollector:
    config = AuthConfig(source="file", files=(tmp / "auth.log",), poll_interval=0.05, **overrides)
    return AuthCollector(config, state_dir=tmp / "state")


def test_follows_a_real_log_file(tmp_path: Path) -> None:
    """Lines appended to the log become events with the line's own time and fields."""
    (tmp_path / "auth.log").touch()
    collector, sink = file_collector(tmp_path), Sink()
    collector.start(sink)
    try:
        write(tmp_path / "auth.log", failed())
        (event,) = sink.take(1)
    finally:
        collector.stop()
    assert (event.detector, event.kind, event.subject) == ("auth", "login_failed", "203.0.113.9")
    assert abs(event.time - time.time()) < 5
    assert event.get("host") == "teller01"


def test_restart_reads_lines_written_while_down_exactly_once(tmp_path: Path) -> None:
    """Offset and inode are persisted: after a restart no line is repeated and none skipped."""
    log = tmp_path / "auth.log"
    log.touch()
    first, sink = file_collector(tmp_path), Sink()
    first.start(sink)
    write(log, failed("192.0.2.1"))
    sink.take(1)
    first.stop()
    write(log, failed("192.0.2.2") + failed("192.0.2.3"))
    second, sink2 = file_collector(tmp_path), Sink()
    second.resume_from(sink.stored)  # the agent hands back the position the store holds
    second.start(sink2)
    try:
        got = [e.subject for e in sink2.take(2)]
    finally:
        second.stop()
    assert got == ["192.0.2.2", "192.0.2.3"]
    assert sink2.empty()


def test_garbage_is_counted_and_skipped(tmp_path: Path) -> None:
    """Binary bytes, a 1 MB line and header-less text are malformed; invalid UTF-8 is kept."""
    log = tmp_path / "auth.log"
    log.touch()
    collector, sink = file_collector(tmp_path), Sink()
    collector.start(sink)
    try:
        write(log, b"\x00\x01\x02\x03binary\n")
        write(log, b"Mar  3 10:15:01 h sshd[1]: Failed password for r\xffoot from 1.2.3.4 port 1 ssh2\n")
        write(log, b"A" * 1_000_000 + b"\n")
        write(log, b"no header at all\n")
        write(log, failed("198.51.100.8"))
        kept, last = sink.take(2)
        assert (kept.subject, kept.get("user")) == ("1.2.3.4", "r\\xffoot")
        assert last.subject == "198.51.100.8"
        assert collector.stats.malformed_count == 3
    finally:
        collector.stop()
    samples = {(s.name, s.labels): s.value for s in collector.current()}
    assert samples[("sentinel_events_malformed_total", (("detector", "auth"),))] == 3
    assert samples[("sentinel_events_total", (("detector", "auth"), ("kind", "login_failed")))] == 2


def test_detector_up_follows_the_file(tmp_path: Path) -> None:
    """sentinel_detector_up is 0 while no log file exists, 1 once one is followed."""
    collector = file_collector(tmp_path)
    sink = Sink()
    collector.poll_files(sink)
    assert not collector.stats.up
    (tmp_path / "auth.log").touch()
    collector.poll_files(sink)
    assert collector.stats.up
    collector.stop()


def write_fake_journalctl(tmp_path: Path, lines: list[bytes]) -> Path:
    """A journalctl stand-in: records its argv, prints the given lines, then waits to be stopped."""
    data = tmp_path / "journal.out"
    data.write_bytes(b"".join(line + b"\n" for line in lines))
    script = tmp_path / "journalctl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time, json\n"
        f"open({str(tmp_path / 'argv.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.stdout.buffer.write(open({str(data)!r}, 'rb').read()); sys.stdout.flush()\n"
        "time.sleep(60)\n"
    )
    script.chmod(0o755)
    return script


def test_journal_mode_parses_json_and_persists_the_cursor(tmp_path: Path) -> None:
    """journalctl -o json entries become events; garbage is counted; the cursor is saved and resumed."""
    lines = (FIXTURES / "journal.json").read_bytes().splitlines()
    garbage = [b'{"__CURSOR": "s=1", "MESSA', b"\xff\xfe binary", b"[]"]
    script = write_fake_journalctl(tmp_path, [lines[0], *garbage, lines[1], lines[2]])
    config = AuthConfig(source="journal", journalctl=str(script), poll_interval=0.05)
    collector, sink = AuthCollector(config, state_dir=tmp_path / "state"), Sink()
    collector.start(sink)
    try:
        events = sink.take(4)  # 2 failures, sudo_command, sudo_root_unlisted
    finally:
        collector.stop()
    assert [e.kind for e in events] == ["login_failed", "login_failed", "sudo_command", "sudo_root_unlisted"]
    assert events[1].subject == "2001:db8::dead:beef"
    assert collector.stats.malformed_count == 3
    cursor = json.loads(sink.positions["auth"])["cursor"]
    assert cursor == json.loads(lines[2])["__CURSOR"]
    first_argv = json.loads((tmp_path / "argv.jsonl").read_text().splitlines()[0])
    assert "SYSLOG_FACILITY=10" in first_argv and "--all" in first_argv
    assert any(a.startswith("--since=@") for a in first_argv)  # a first start: from when it began
    again = AuthCollector(config, state_dir=tmp_path / "state")
    again.resume_from(sink.stored)
    assert f"--after-cursor={cursor}" in again.journal_command()


def test_journalctl_that_exits_is_restarted_from_the_cursor(tmp_path: Path) -> None:
    """journald restarts end journalctl; it is started again with --after-cursor (wazuh#26778)."""
    line = (FIXTURES / "journal.json").read_bytes().splitlines()[0] + b"\n"
    script = tmp_path / "journalctl"
    script.write_text(
        f"#!{sys.executable}\nimport sys, json\n"
        f"open({str(tmp_path / 'argv.jsonl')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.stdout.buffer.write({line!r})\n"
    )
    script.chmod(0o755)
    config = AuthConfig(source="journal", journalctl=str(script), poll_interval=0.05, restart_backoff=0.05)
    collector, sink = AuthCollector(config, state_dir=tmp_path / "state"), Sink()
    collector.start(sink)
    try:
        sink.take(2)
    finally:
        collector.stop()
    runs = [json.loads(x) for x in (tmp_path / "argv.jsonl").read_text().splitlines()]
    assert any(a.startswith("--after-cursor=") for a in runs[1])


def record(message: str, program: str = "sshd", when: float | None = None) -> LogRecord:
    return LogRecord(time.time() if when is None else when, "h", program, 1, message)


def test_login_outside_hours(tmp_path: Path) -> None:
    """An accepted login outside login_hours adds login_outside_hours; inside it does not."""
    collector = file_collector(tmp_path, login_hours="07:00-20:00")
    night = time.mktime((2024, 3, 3, 23, 30, 0, 0, 0, -1))
    day = time.mktime((2024, 3, 4, 10, 0, 0, 0, 0, -1))
    msg = "Accepted publickey for alice from 192.0.2.10 port 1 ssh2"
    assert "login_outside_hours" in [e.kind for e in collector.events_for(record(msg, when=night))]
    assert "login_outside_hours" not in [e.kind for e in collector.events_for(record(msg, when=day))]


def test_login_from_a_new_source_for_a_known_user(tmp_path: Path) -> None:
    """The first login of a user is learnt; a later one from elsewhere is login_new_source."""
    collector = file_collector(tmp_path)
    kinds = [
        [e.kind for e in collector.events_for(record(f"Accepted password for alice from {ip} port 1 ssh2"))]
        for ip in ("192.0.2.10", "192.0.2.10", "203.0.113.5")
    ]
    assert kinds == [["login_accepted"], ["login_accepted"], ["login_accepted", "login_new_source"]]


def test_sudo_to_root_by_unlisted_user_only(tmp_path: Path) -> None:
    """sudo to root by a user not in root_allowlist adds sudo_root_unlisted; listed users do not."""
    collector = file_collector(tmp_path, root_allowlist=("admin",))
    line = "{} : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id"
    alice = [e.kind for e in collector.events_for(record(line.format("alice"), "sudo"))]
    admin = [e.kind for e in collector.events_for(record(line.format("admin"), "sudo"))]
    assert alice == ["sudo_command", "sudo_root_unlisted"]
    assert admin == ["sudo_command"]


def test_auto_mode_without_journald_follows_files(tmp_path: Path) -> None:
    """source = "auto" with no journald socket falls back to the files."""
    collector = AuthCollector(AuthConfig(), state_dir=tmp_path, journald_present=lambda: False)
    assert collector.mode == "file"


def test_real_default_files(tmp_path: Path) -> None:
    """With the shipped defaults on this machine, up says whether auth.log or secure can be read."""
    collector = AuthCollector(AuthConfig(source="file"), state_dir=tmp_path)
    collector.poll_files(Sink())
    readable = any(os.access(p, os.R_OK) for p in ("/var/log/auth.log", "/var/log/secure"))
    assert collector.stats.up == readable
    collector.stop()


# -- issue 17: nothing lost, nothing believed that should not be ---------------------------------


def journal_entry(message: object, **fields: object) -> bytes:
    entry: dict[str, object] = {
        "__CURSOR": f"s=1;i={abs(hash(str(message))) % 10**6}",
        "__REALTIME_TIMESTAMP": str(int(time.time() * 1e6)),
        "MESSAGE": message,
        "SYSLOG_IDENTIFIER": "sshd",
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_PID": "4821",
        "_HOSTNAME": "teller07",
    }
    entry.update(fields)
    return json.dumps({k: v for k, v in entry.items() if v is not None}).encode()


def journal_collector(tmp_path: Path, lines: list[bytes], **overrides: Any) -> tuple[AuthCollector, Sink]:
    script = write_fake_journalctl(tmp_path, lines)
    config = AuthConfig(source="journal", journalctl=str(script), poll_interval=0.05, **overrides)
    return AuthCollector(config, state_dir=tmp_path / "state"), Sink()


def test_invalid_utf8_user_names_are_counted_not_dropped(tmp_path: Path) -> None:
    """Eight failures with a stray byte in the user name are eight events (the issue's loss)."""
    log = tmp_path / "auth.log"
    log.touch()
    collector, sink = file_collector(tmp_path), Sink()
    collector.start(sink)
    try:
        for _ in range(8):
            write(log, failed("203.0.113.77", user="adm\udcffin").encode("utf-8", "surrogateescape"))
        events = sink.take(8)
    finally:
        collector.stop()
    assert {e.kind for e in events} == {"login_failed"}
    assert {e.get("user") for e in events} == {"adm\\xffin"}
    assert collector.stats.malformed_count == 0


def test_a_huge_journal_entry_is_counted_once(tmp_path: Path) -> None:
    """A 1 MiB entry spans many reads: one malformed input, and the next entry still counts."""
    huge = journal_entry("x" * (1 << 20))
    after = journal_entry("Failed password for root from 203.0.113.8 port 1 ssh2")
    collector, sink = journal_collector(tmp_path, [huge, after])
    collector.start(sink)
    try:
        (event,) = sink.take(1)
    finally:
        collector.stop()
    assert event.subject == "203.0.113.8"
    assert collector.stats.malformed_count == 1


def test_journal_entry_without_timestamp_is_stamped_at_read_time(tmp_path: Path) -> None:
    """No __REALTIME_TIMESTAMP: the event is kept, timed when read, and marked so."""
    line = journal_entry("Failed password for root from 203.0.113.9 port 1 ssh2", __REALTIME_TIMESTAMP=None)
    collector, sink = journal_collector(tmp_path, [line])
    before = time.time()
    collector.start(sink)
    try:
        (event,) = sink.take(1)
    finally:
        collector.stop()
    assert before <= event.time <= time.time()
    assert event.get("stamped_at_read") is True


def test_nul_in_journal_message_does_not_reach_the_subject(tmp_path: Path) -> None:
    """A NUL sent by a direct journal client is a visible escape in the event."""
    line = journal_entry(list(b"Invalid user ev\x00il from 203.0.113.10 port 2"))
    collector, sink = journal_collector(tmp_path, [line])
    collector.start(sink)
    try:
        (event,) = sink.take(1)
    finally:
        collector.stop()
    assert event.get("user") == "ev\\x00il"
    assert "\x00" not in repr(event)


def test_forged_journal_identity_is_a_finding_not_a_root_login(tmp_path: Path) -> None:
    """`logger -t sshd` by uid 1000: a log_forgery event, no root_login (the issue's evasion)."""
    forged = journal_entry(
        "Accepted password for root from 198.51.100.7 port 40000 ssh2",
        _COMM="logger",
        _EXE="/usr/bin/logger",
        _UID="1000",
    )
    real = journal_entry("Accepted password for root from 198.51.100.8 port 40001 ssh2")
    collector, sink = journal_collector(tmp_path, [forged, real])
    collector.start(sink)
    try:
        events = sink.take(3)
    finally:
        collector.stop()
    assert [e.kind for e in events] == ["log_forgery", "login_accepted", "root_login"]
    assert events[0].get("comm") == "logger" and events[0].get("uid") == 1000
    assert events[2].subject == "198.51.100.8"


def test_an_invalid_user_connection_is_one_event(tmp_path: Path) -> None:
    """loghub's connection: Invalid user, input_userauth_request, check pass, Failed password."""
    lines = [
        "Dec 10 07:07:38 LabSZ sshd[24206]: Invalid user test9 from 52.80.34.196",
        "Dec 10 07:07:38 LabSZ sshd[24206]: input_userauth_request: invalid user test9 [preauth]",
        "Dec 10 07:07:38 LabSZ sshd[24206]: pam_unix(sshd:auth): check pass; user unknown",
        "Dec 10 07:07:45 LabSZ sshd[24206]: Failed password for invalid user test9 from 52.80.34.196"
        " port 36060 ssh2",
        "Dec 10 07:13:56 LabSZ sshd[24206]: Disconnecting: Too many authentication failures for test9"
        " [preauth]",
    ]
    collector = file_collector(tmp_path)
    now = time.time()
    kinds = [[(e.kind, e.get("source")) for e in collector.events_for(_syslog(line, now))] for line in lines]
    assert kinds == [
        [("invalid_user", "52.80.34.196")],
        [],
        [],
        [("login_failed", "52.80.34.196")],
        [("max_auth_attempts", "52.80.34.196")],
    ]


def _syslog(line: str, now: float) -> LogRecord:
    return parse_syslog_line(line, now=now)


def test_every_batch_of_events_carries_its_read_position(tmp_path: Path) -> None:
    """The position travels with the events it covers; quiet reads move it only now and then."""
    log = tmp_path / "auth.log"
    log.touch()
    collector = file_collector(tmp_path)
    batches: list[list[Any]] = []

    def emit(items: Sequence[Any]) -> bool:
        batches.append(list(items))
        return True

    write(log, failed("192.0.2.1"))
    collector.poll_files(emit)
    (batch,) = batches
    assert [type(i).__name__ for i in batch] == ["Event", "Position"]
    offset = json.loads(batch[1].value)["files"][str(log)]["offset"]
    assert offset == log.stat().st_size
    write(log, "Mar  3 10:15:01 h cron[1]: nothing to see\n")
    collector.poll_files(emit)
    collector.poll_files(emit)
    assert len(batches) <= 2  # a read without events: a position at most every SAVE_EVERY seconds
    collector.stop()


def test_positions_from_before_the_store_are_used_once(tmp_path: Path) -> None:
    """Upgrading: with nothing stored, the state file's old offsets stand."""
    log = tmp_path / "auth.log"
    write(log, failed("192.0.2.1"))
    StateFile(tmp_path / "state", "auth").save(
        {
            "files": {
                str(log): {"dev": log.stat().st_dev, "inode": log.stat().st_ino, "offset": log.stat().st_size}
            }
        }
    )
    write(log, failed("192.0.2.2"))
    collector, sink = file_collector(tmp_path), Sink()
    collector.resume_from(lambda source: None)
    collector.poll_files(sink)
    assert [e.subject for e in sink.take(1)] == ["192.0.2.2"]
    collector.stop()


def test_a_first_start_stores_where_it_began_at_once(tmp_path: Path) -> None:
    """Killed before its first line, a restart must not begin at the then end: the start is stored."""
    log = tmp_path / "auth.log"
    write(log, failed("192.0.2.1"))  # history: not replayed on a first start
    collector, sink = file_collector(tmp_path), Sink()
    collector.start(sink)
    wait = time.monotonic() + 10
    while "auth" not in sink.positions and time.monotonic() < wait:
        time.sleep(0.01)
    collector.stop()
    write(log, failed("192.0.2.2"))  # written while "down"
    again, sink2 = file_collector(tmp_path), Sink()
    again.resume_from(sink.stored)
    again.poll_files(sink2)
    assert [e.subject for e in sink2.take(1)] == ["192.0.2.2"]
    again.stop()


def test_a_password_in_a_sudo_command_is_masked_as_read(tmp_path: Path) -> None:
    """`sudo mysql -pSECRET`: the event (and so the evidence, logtest, tickets) says `-p***`."""
    collector = file_collector(tmp_path)
    line = "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/mysql -uroot -pS3cret"
    (command, _) = collector.events_for(record(line, "sudo"))
    assert command.get("command") == "/usr/bin/mysql -uroot -p***"
    assert command.get("cwd") == "/home/alice"
    collector.stop()
