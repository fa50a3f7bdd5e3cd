"""The auth detector: follows the journal or auth.log/secure and emits login, sudo and su events.

Source (`source = "auto"`): the journal when journald runs here (`journalctl --follow -o json`
restricted to the auth and authpriv facilities, resumed with `--after-cursor` from the persisted
cursor), else the log files (`/var/log/auth.log` on Debian, `/var/log/secure` on RHEL) through
`FileFollower`, which persists device, inode and offset. Either way no line is read twice or
skipped across restarts, rotations and truncations; the cursor/offset is saved after the events
of a read have been handed to the pipeline.

Events (kinds) come from `authparse.classify`, plus three that need memory of this terminal:
`login_outside_hours` (an accepted login outside `login_hours`), `login_new_source` (a user who
has logged in before, now from a source never seen for them) and `sudo_root_unlisted` /
`su_root_unlisted` (becoming root by a user not in `root_allowlist`). Event times are the
records' own, so a burst replayed after a restart is judged by when it happened.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, clean_value, freeze_fields
from sentinel.core.settings import Duration, KeyPath, Size, field, positive
from sentinel.sources.base import Emit, Registration
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats, SightFromStats, StateFile
from sentinel.sources.parsers.authparse import (
    AuthEvent,
    LogRecord,
    Malformed,
    classify,
    parse_journal_entry,
    parse_syslog_line,
)
from sentinel.sources.parsers.logfollow import FileFollower

log = structlog.get_logger("sentinel.collectors.auth")

NAME = "auth"
DRILL_LOG = Path("drill") / "auth.log"  # relative to state_dir; written by `sentinel drill`
KINDS = (
    "login_failed",
    "invalid_user",
    "login_accepted",
    "root_login",
    "login_outside_hours",
    "login_new_source",
    "sudo_command",
    "sudo_auth_failed",
    "sudo_denied",
    "sudo_root_unlisted",
    "su_session",
    "su_failed",
    "su_root_unlisted",
    "pam_auth_failure",
)
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
AUTH_FACILITIES = ("SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10")  # auth, authpriv
SOURCES_PER_USER = 50
USERS_REMEMBERED = 2000
SAVE_EVERY = 1.0  # seconds between position saves while lines keep coming


def _check_hours(value: str) -> str | None:
    if not value:
        return None
    match = _HOURS.match(value)
    if match and int(match[1]) < 24 and int(match[3]) < 24 and int(match[2]) < 60 and int(match[4]) < 60:
        return None
    return f'expected "HH:MM-HH:MM" like "07:00-20:00" (or "" for any time), got "{value}"'


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """`[collectors.auth]`."""

    enabled: bool = True
    source: Literal["auto", "journal", "file"] = "auto"
    files: tuple[Path, ...] = (Path("/var/log/auth.log"), Path("/var/log/secure"))
    journalctl: str = "journalctl"
    poll_interval: Duration = field(Duration(1), check=positive)
    max_line: Size = field(Size(65536), check=positive)
    read_existing: bool = False  # first start: read what is already in the files (else from the end)
    login_hours: str = field("", check=_check_hours)
    root_allowlist: tuple[str, ...] = ()
    restart_backoff: Duration = field(Duration(5), check=positive)
    drill_log: bool = True  # also follow state_dir/drill/auth.log, whose events are drills

    def validate(self) -> list[tuple[KeyPath, str]]:
        """The file source needs files."""
        if self.source == "file" and not self.files:
            return [(("files",), 'source = "file" needs at least one file')]
        return []


class AuthCollector(SightFromStats):
    """Streaming collector of authentication events."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS
    lossless = True  # the agent waits for queue room: a line past the saved offset is never re-read

    def __init__(
        self,
        config: AuthConfig,
        *,
        state_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        journald_present: Callable[[], bool] = JOURNAL_SOCKET.exists,
    ) -> None:
        self.config = config
        self.clock = clock
        self.stats = DetectorStats(NAME, KINDS)
        self._state = StateFile(state_dir, NAME)
        self._journald_present = journald_present
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        saved = self._state.load() or {}
        self._cursor: str | None = saved.get("cursor") if isinstance(saved.get("cursor"), str) else None
        files = saved.get("files")
        files_state: dict[str, Any] = files if isinstance(files, dict) else {}
        self._followers = [
            FileFollower(
                path,
                saved=files_state.get(str(path)),
                max_line=int(config.max_line),
                start_at_end=not config.read_existing,
            )
            for path in config.files
        ]
        self._drill: FileFollower | None = None
        if config.drill_log:
            path = state_dir / DRILL_LOG
            self._drill = FileFollower(path, saved=files_state.get(str(path)), max_line=int(config.max_line))
        self._save_lock = threading.Lock()
        self._drill_thread: threading.Thread | None = None
        known = saved.get("known_sources")
        self._known: dict[str, list[str]] = known if isinstance(known, dict) else {}
        self._hours = _parse_hours(config.login_hours)
        self.mode = self._choose_mode()
        self._dirty = False
        self._last_save = 0.0

    def _choose_mode(self) -> Literal["journal", "file"]:
        if self.config.source != "auto":
            return self.config.source
        has_journalctl = shutil.which(self.config.journalctl) is not None
        return "journal" if has_journalctl and self._journald_present() else "file"

    # -- StreamingCollector ---------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Start the follower thread."""
        target = self._run_journal if self.mode == "journal" else self._run_files
        self._thread = threading.Thread(target=target, args=(emit,), name="collector:auth", daemon=True)
        self._thread.start()
        if self._drill is not None:
            self._drill_thread = threading.Thread(
                target=self._run_drill, args=(emit,), name="collector:auth-drill", daemon=True
            )
            self._drill_thread.start()
        log.info("auth_following", mode=self.mode)

    def stop(self) -> None:
        """Stop following, save the position, join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._drill_thread is not None:
            self._drill_thread.join(timeout=5)
        if self._drill is not None:
            self._drill.close()
        self._kill_journalctl()
        for follower in self._followers:
            follower.close()
        self._save(force=True)

    # -- files ----------------------------------------------------------------------------------

    def _run_files(self, emit: Emit) -> None:
        while not self._stop.is_set():
            busy = self.poll_files(emit)
            self._stop.wait(0 if busy else float(self.config.poll_interval))

    def poll_files(self, emit: Emit) -> bool:
        """One pass over the files; True when there may be more to read at once."""
        busy = False
        for follower in self._followers:
            skipped_before = follower.skipped
            mark, lines = follower.position(), follower.read()
            self.stats.malformed(follower.skipped - skipped_before)
            busy = busy or bool(lines)
            events = self._events_from_lines(lines)
            if events and emit(events) is False:  # not taken (stopping, queue full): read again later
                follower.rewind(mark)
                continue
            if lines or follower.skipped != skipped_before:
                self._dirty = True
        self.stats.set_up(*files_sight(self._followers))
        self.stats.ran(self.clock.time())
        self._save()
        return busy

    def _run_drill(self, emit: Emit) -> None:
        while not self._stop.wait(float(self.config.poll_interval)):
            self.poll_drill(emit)

    def poll_drill(self, emit: Emit) -> None:
        """Read the drill log (`sentinel drill` writes synthetic lines there); its events are drills."""
        assert self._drill is not None
        mark, lines = self._drill.position(), self._drill.read()
        events = [
            Event(e.detector, e.kind, e.subject, e.time, (*e.fields, ("drill", True)))
            for e in self._events_from_lines(lines)
        ]
        if events and emit(events) is False:  # not taken (stopping, queue full): read again later
            self._drill.rewind(mark)
            return
        if lines:
            self._dirty = True
            self._save()

    def _events_from_lines(self, lines: Iterable[bytes]) -> list[Event]:
        now = self.clock.time()
        out: list[Event] = []
        for raw in lines:
            text = _decode(raw)
            if text is None:
                self.stats.malformed()
                continue
            try:
                record = parse_syslog_line(text, now=now)
            except Malformed:
                self.stats.malformed()
                continue
            out += self.events_for(record)
        return self.stats.counted(out)

    # -- journal --------------------------------------------------------------------------------

    def journal_command(self) -> list[str]:
        """The journalctl invocation: follow, JSON, auth facilities, from the saved cursor."""
        cmd = [self.config.journalctl, "--follow", "--output=json", "--no-pager", *AUTH_FACILITIES]
        if self._cursor:
            cmd.append(f"--after-cursor={self._cursor}")
        else:
            cmd.append("--lines=0")  # first start: from now on, not the whole history
        return cmd

    def _run_journal(self, emit: Emit) -> None:
        while not self._stop.is_set():
            try:
                self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    self.journal_command(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                )
            except OSError as exc:
                log.error("journalctl_failed", error=str(exc))
                self.stats.set_up(False, f"cannot run {self.config.journalctl}: {exc}")
                self._stop.wait(float(self.config.restart_backoff))
                continue
            self.stats.set_up(True)
            self._read_journal(self._proc, emit)
            code = self._kill_journalctl()
            self.stats.set_up(False, f"{self.config.journalctl} exited (code {code}); restarting")
            self._save(force=True)
            if not self._stop.is_set():  # journald restarted or rotated under us: resume at the cursor
                log.warning("journalctl_exited", code=code)
                self._stop.wait(float(self.config.restart_backoff))

    def _read_journal(self, proc: subprocess.Popen[bytes], emit: Emit) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buffer = b""
        discarding = False
        limit = int(self.config.max_line)
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], float(self.config.poll_interval))
            self.stats.ran(self.clock.time())
            if not ready:
                self._save()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if discarding and lines:
                lines, discarding = lines[1:], False
            if len(buffer) > limit:  # one entry larger than any real one: drop it, count it
                self.stats.malformed()
                buffer, discarding = b"", True
            cursor, events = self._cursor, self._events_from_journal(lines, limit)
            if events and emit(events) is False:  # not taken (stopping): resume before them
                self._cursor = cursor
                return
            self._save()

    def _events_from_journal(self, lines: Iterable[bytes], limit: int) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            if len(line) > limit:
                self.stats.malformed()
                continue
            try:
                record, cursor = parse_journal_entry(line)
            except Malformed:
                self.stats.malformed()
                continue
            self._cursor, self._dirty = cursor, True
            out += self.events_for(record)
        return self.stats.counted(out)

    def _kill_journalctl(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    # -- meaning --------------------------------------------------------------------------------

    def events_for(self, record: LogRecord) -> list[Event]:
        """The events of one record, including those that need this terminal's memory."""
        out: list[Event] = []
        for auth in classify(record):
            out.append(self._event(auth, record))
            out += [self._event(extra, record) for extra in self._derived(auth, record.time)]
        return out

    def _derived(self, auth: AuthEvent, when: float) -> list[AuthEvent]:
        fields = auth.fields
        user, source = str(fields.get("user", "")), str(fields.get("source", ""))
        if auth.kind == "login_accepted":
            extra = []
            if self._hours and not _within(self._hours, when):
                extra.append(AuthEvent("login_outside_hours", auth.subject, fields))
            if self._remember_source(user, source):
                extra.append(AuthEvent("login_new_source", auth.subject, fields))
            return extra
        becomes_root = auth.kind in ("sudo_command", "su_session") and fields.get("target_user") == "root"
        if becomes_root and user not in self.config.root_allowlist and user != "root":
            kind = "sudo_root_unlisted" if auth.kind == "sudo_command" else "su_root_unlisted"
            return [AuthEvent(kind, user, fields)]
        return []

    def _remember_source(self, user: str, source: str) -> bool:
        """Note a login source; True when the user logged in before but never from here."""
        known = self._known.get(user)
        if known is None:
            self._known[user] = [source]
            while len(self._known) > USERS_REMEMBERED:
                self._known.pop(next(iter(self._known)))
            self._dirty = True
            return False
        if source in known:
            return False
        known.append(source)
        del known[:-SOURCES_PER_USER]
        self._dirty = True
        return True

    def _event(self, auth: AuthEvent, record: LogRecord) -> Event:
        fields = {k: clean_value(v) for k, v in auth.fields.items()}
        fields["host"] = record.host
        return Event(NAME, auth.kind, str(clean_value(auth.subject)), record.time, freeze_fields(fields))

    # -- state ----------------------------------------------------------------------------------

    def _save(self, *, force: bool = False) -> None:
        with self._save_lock:  # the main and the drill follower threads both save
            now = time.monotonic()
            if not self._dirty or (not force and now - self._last_save < SAVE_EVERY):
                return
            self._last_save, self._dirty = now, False
            followers = [*self._followers, *([self._drill] if self._drill is not None else [])]
            self._state.save(
                {
                    "cursor": self._cursor,
                    "files": {str(f.path): pos for f in followers if (pos := f.position()) is not None},
                    "known_sources": self._known,
                }
            )


def files_sight(followers: Iterable[FileFollower]) -> tuple[bool, str]:
    """Up while one of the auth logs is open; else why none can be (missing, unreadable)."""
    followers = list(followers)
    if any(f.is_open for f in followers):
        return True, ""
    why = []
    for follower in followers:
        try:
            with open(follower.path, "rb"):
                problem = "not open yet"
        except FileNotFoundError:
            problem = "missing"
        except OSError as exc:
            problem = exc.strerror or "unreadable"
        why.append(f"{follower.path} {problem}")
    return False, "no auth log can be read: " + (", ".join(why) or "none configured")


def _decode(raw: bytes) -> str | None:
    """A line as text, or None for binary or invalid UTF-8 (counted as malformed)."""
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_hours(text: str) -> tuple[int, int] | None:
    match = _HOURS.match(text) if text else None
    if not match:
        return None
    return int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])


def _within(hours: tuple[int, int], when: float) -> bool:
    """Whether local time `when` falls in [start, end) minutes of the day (may wrap midnight)."""
    local = time.localtime(when)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = hours
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


COLLECTOR = Registration(
    NAME, AuthConfig, build=lambda s, ctx: AuthCollector(s, state_dir=ctx.state_dir, clock=ctx.clock)
)
