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

from sentinel.core.model import Event
from sentinel.sources.detectors.auth import AuthCollector, AuthConfig
from sentinel.sources.detectors.base import StateFile
from sentinel.sources.parsers.authparse import LogRecord

FIXTURES = Path(__file__).parents[2] / "fixtures" / "auth"


class Sink:
    """Collects what a streaming collector emits."""

    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()

    def __call__(self, items: Sequence[Any]) -> bool:
        for item in items:
            self.q.put(item)
        return True

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
    second.start(sink2)
    try:
        got = [e.subject for e in sink2.take(2)]
    finally:
        second.stop()
    assert got == ["192.0.2.2", "192.0.2.3"]
    assert sink2.empty()


def test_garbage_is_counted_and_skipped(tmp_path: Path) -> None:
    """Binary bytes, invalid UTF-8, a 1 MB line and header-less text are malformed; the rest parse."""
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
        (event,) = sink.take(1)
        assert event.subject == "198.51.100.8"
        assert collector.stats.malformed_count == 4
    finally:
        collector.stop()
    samples = {(s.name, s.labels): s.value for s in collector.current()}
    assert samples[("sentinel_events_malformed_total", (("detector", "auth"),))] == 4
    assert samples[("sentinel_events_total", (("detector", "auth"), ("kind", "login_failed")))] == 1


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
    saved = StateFile(tmp_path / "state", "auth").load()
    assert saved is not None and saved["cursor"] == json.loads(lines[2])["__CURSOR"]
    first_argv = json.loads((tmp_path / "argv.jsonl").read_text().splitlines()[0])
    assert "--lines=0" in first_argv and "SYSLOG_FACILITY=10" in first_argv
    again = AuthCollector(config, state_dir=tmp_path / "state")
    assert f"--after-cursor={saved['cursor']}" in again.journal_command()


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
