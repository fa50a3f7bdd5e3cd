"""The auth detector: follows the journal or auth.log/secure and emits login, sudo and su events.

Source (`source = "auto"`): the journal when journald runs here (auth_journal: `journalctl
--follow -o json --all` on the auth and authpriv facilities, resumed with `--after-cursor`),
else the log files (`/var/log/auth.log` on Debian, `/var/log/secure` on RHEL) through
`FileFollower` (rename rotation, copytruncate, restarts; a symlink swapped in is refused unless
`follow_symlinks`).

No line is read twice or skipped, whenever the agent is killed: every batch of events carries
the read position (a `Position` item: cursor, device/inode/offset per file) and the pipeline
stores it in the same SQLite transaction as the findings those events produced; at start the
agent hands back the stored position (`resume_from`). A read that gave no event still moves the
position, stored at most every SAVE_EVERY seconds (re-reading such lines is harmless).

Meaning (auth_meaning): the parser's events (sentinel.sources.parsers.authparse, docs/logs.md),
once per sshd connection, plus the kinds that need this terminal's memory. A journal entry whose
writer is not the program it names is a `log_forgery`, not what it says. Bytes that are not UTF-8
never drop a line: they are kept as `\\xNN` in the event. Event times are the records' own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Position
from sentinel.core.settings import Duration, KeyPath, Size, field, positive
from sentinel.sources.base import Emit, Item, Registration
from sentinel.sources.detectors.auth_journal import JournalProcess, journal_command
from sentinel.sources.detectors.auth_meaning import NAME, AuthMeaning
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats, SightFromStats, StateFile
from sentinel.sources.parsers.logfollow import FileFollower
from sentinel.sources.parsers.logrecord import LogRecord, Malformed, parse_journal_entry, parse_syslog_line

log = structlog.get_logger("sentinel.collectors.auth")

DRILL_LOG = Path("drill") / "auth.log"  # relative to state_dir; written by `sentinel drill`
DRILL_POSITION = f"{NAME}.drill"
KINDS = (
    "login_failed",
    "invalid_user",
    "max_auth_attempts",
    "denied_user",
    "account_locked",
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
    "log_forgery",
)
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
SAVE_EVERY = 1.0  # seconds between position-only batches, and state-file saves


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
    follow_symlinks: bool = False  # a followed log that is (or becomes) a symlink is refused otherwise
    login_hours: str = field("", check=_check_hours)
    root_allowlist: tuple[str, ...] = ()
    restart_backoff: Duration = field(Duration(5), check=positive)
    drill_log: bool = True  # also follow state_dir/drill/auth.log, whose events are drills

    def validate(self) -> list[tuple[KeyPath, str]]:
        """The file source needs files."""
        if self.source == "file" and not self.files:
            return [(("files",), 'source = "file" needs at least one file')]
        return []


def decode_line(raw: bytes) -> str:
    """A line as text: bytes that are not UTF-8 kept as surrogates (`\\xNN` once cleaned)."""
    return raw.decode("utf-8", "surrogateescape")


class AuthCollector(SightFromStats):
    """Streaming collector of authentication events."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS
    lossless = True  # the agent waits for queue room: a line past the stored position is never re-read

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
        self._drill_thread: threading.Thread | None = None
        self._drill_path = state_dir / DRILL_LOG
        saved = self._state.load() or {}
        known = saved.get("known_sources")
        self.meaning = AuthMeaning(
            login_hours=config.login_hours,
            root_allowlist=config.root_allowlist,
            known_sources=known if isinstance(known, dict) else {},
        )
        self._meaning_lock = threading.Lock()  # the main and the drill follower share the memory
        # before the store held positions they were in the state file: read once, on upgrade
        self._cursor: str | None = saved.get("cursor") if isinstance(saved.get("cursor"), str) else None
        self._since: float | None = None  # first start with no cursor: read the journal from here
        files = saved.get("files")
        self._followers, self._drill = self._build_followers(files if isinstance(files, dict) else {})
        self._journal = JournalProcess(
            config.journalctl,
            limit=int(config.max_line),
            poll_interval=float(config.poll_interval),
            stop=self._stop,
        )
        self.mode = self._choose_mode()
        self._last_state_save = 0.0
        self._last_position = {NAME: 0.0, DRILL_POSITION: 0.0}
        self._unsaved = {NAME: False, DRILL_POSITION: False}

    def _build_followers(self, files: dict[str, Any]) -> tuple[list[FileFollower], FileFollower | None]:
        def follower(path: Path, *, start_at_end: bool) -> FileFollower:
            return FileFollower(
                path,
                saved=files.get(str(path)),
                max_line=int(self.config.max_line),
                start_at_end=start_at_end,
                follow_symlinks=self.config.follow_symlinks,
            )

        main = [follower(p, start_at_end=not self.config.read_existing) for p in self.config.files]
        drill = follower(self._drill_path, start_at_end=False) if self.config.drill_log else None
        return main, drill

    def _choose_mode(self) -> Literal["journal", "file"]:
        if self.config.source != "auto":
            return self.config.source
        has_journalctl = shutil.which(self.config.journalctl) is not None
        return "journal" if has_journalctl and self._journald_present() else "file"

    def resume_from(self, stored: Callable[[str], str | None]) -> None:
        """Continue where the pipeline last stored a position (the agent calls this before start)."""
        main, drill = _load(stored(NAME)), _load(stored(DRILL_POSITION))
        if main is None and drill is None:
            return  # never stored: the state file's positions (or the end of the files) stand
        files: dict[str, Any] = {}
        for value in (main, drill):
            if value is not None and isinstance(value.get("files"), dict):
                files.update(value["files"])
        if main is not None:
            self._cursor = main.get("cursor") if isinstance(main.get("cursor"), str) else None
            since = main.get("since")
            self._since = float(since) if isinstance(since, int | float) else None
        for old in [*self._followers, *([self._drill] if self._drill else [])]:
            old.close()
        self._followers, self._drill = self._build_followers(files)

    # -- StreamingCollector ---------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Start the follower thread (and the drill log's)."""
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
        """Stop following, join the threads, save the state file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._drill_thread is not None:
            self._drill_thread.join(timeout=5)
        self._journal.kill()
        for follower in [*self._followers, *([self._drill] if self._drill else [])]:
            follower.close()
        self._save_state(force=True)

    def events_for(self, record: LogRecord) -> list[Event]:
        """The events of one record, as the detector emits them (with its memory)."""
        with self._meaning_lock:
            return self.meaning.of(record).events

    # -- positions ------------------------------------------------------------------------------

    def main_position(self) -> Position:
        """Where the main source has read to (journal cursor and every followed file)."""
        files = {str(f.path): pos for f in self._followers if (pos := f.position()) is not None}
        value: dict[str, Any] = {"cursor": self._cursor, "files": files}
        if self._cursor is None and self._since is not None:
            value["since"] = self._since
        return Position(NAME, json.dumps(value, sort_keys=True))

    def drill_position(self) -> Position | None:
        """Where the drill log has been read to."""
        if self._drill is None or (pos := self._drill.position()) is None:
            return None
        return Position(DRILL_POSITION, json.dumps({"files": {str(self._drill.path): pos}}, sort_keys=True))

    def _emit(self, emit: Emit, events: list[Event], position: Position | None, *, read: bool) -> bool:
        """Hand events over with the position they were read up to; a read without events moves
        the stored position at most every SAVE_EVERY seconds. False: the events were not taken
        (the agent is stopping with a full queue) and must be read again."""
        if position is None:
            return not events or emit(events) is not False
        now = time.monotonic()
        key = position.source
        if read:
            self._unsaved[key] = True
        if not events and not (self._unsaved[key] and now - self._last_position[key] >= SAVE_EVERY):
            return True
        items: list[Item] = [*events, position]
        if emit(items) is False:
            return not events
        self._last_position[key], self._unsaved[key] = now, False
        return True

    # -- files ----------------------------------------------------------------------------------

    def _run_files(self, emit: Emit) -> None:
        # where following began (the end of the files, at a first start) is stored at once: a
        # crash before the first line would otherwise start again at the then end, skipping
        self._emit(emit, [], self.main_position(), read=True)
        while not self._stop.is_set():
            busy = self.poll_files(emit)
            self._save_state()
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
            read = bool(lines) or follower.skipped != skipped_before
            if not self._emit(emit, events, self.main_position(), read=read):
                follower.rewind(mark)  # not taken (stopping, queue full): read again later
        if not busy:
            self._emit(emit, [], self.main_position(), read=False)
        self.stats.set_up(*files_sight(self._followers))
        self.stats.ran(self.clock.time())
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
        if not self._emit(emit, events, self.drill_position(), read=bool(lines)):
            self._drill.rewind(mark)

    def _events_from_lines(self, lines: Iterable[bytes]) -> list[Event]:
        now = self.clock.time()
        out: list[Event] = []
        for raw in lines:
            try:
                record = parse_syslog_line(decode_line(raw), now=now)
            except Malformed:
                self.stats.malformed()
                continue
            out += self.events_for(record)
        return self.stats.counted(out)

    # -- journal --------------------------------------------------------------------------------

    def journal_command(self) -> list[str]:
        """The journalctl invocation (see auth_journal.journal_command)."""
        return journal_command(self.config.journalctl, self._cursor, self._since)

    def _run_journal(self, emit: Emit) -> None:
        if self._cursor is None and self._since is None:  # first start: from now, and remember it
            self._since = self.clock.time()
            self._emit(emit, [], self.main_position(), read=True)
        while not self._stop.is_set():
            try:
                self._journal.start(self._cursor, self._since)
            except OSError as exc:
                log.error("journalctl_failed", error=str(exc))
                self.stats.set_up(False, f"cannot run {self.config.journalctl}: {exc}")
                self._stop.wait(float(self.config.restart_backoff))
                continue
            self.stats.set_up(True)
            self.read_journal(emit)
            code = self._journal.kill()
            self.stats.set_up(False, f"{self.config.journalctl} exited (code {code}); restarting")
            if not self._stop.is_set():  # journald restarted or rotated under us: resume at the cursor
                log.warning("journalctl_exited", code=code)
                self._stop.wait(float(self.config.restart_backoff))

    def read_journal(self, emit: Emit) -> None:
        """Read the running journalctl until it exits or the collector stops."""

        def idle() -> None:
            self.stats.ran(self.clock.time())
            self._emit(emit, [], self.main_position(), read=False)
            self._save_state()

        skipped = 0
        for lines in self._journal.lines(idle):
            self.stats.ran(self.clock.time())
            splitter = self._journal.splitter
            self.stats.malformed(splitter.skipped - skipped)
            skipped = splitter.skipped
            cursor, events = self._cursor, self._events_from_journal(lines)
            if not self._emit(emit, events, self.main_position(), read=True):
                self._cursor = cursor  # not taken (stopping): resume before them
                return
            self._save_state()

    def _events_from_journal(self, lines: Iterable[bytes]) -> list[Event]:
        out: list[Event] = []
        for line in lines:
            try:
                record, cursor = parse_journal_entry(line, now=self.clock.time())
            except Malformed:
                self.stats.malformed()
                continue
            if cursor:
                self._cursor = cursor
            out += self.events_for(record)
        return self.stats.counted(out)

    # -- state ----------------------------------------------------------------------------------

    def _save_state(self, *, force: bool = False) -> None:
        """The memory that is not a position (known login sources), at most every SAVE_EVERY."""
        now = time.monotonic()
        with self._meaning_lock:
            if not self.meaning.dirty or (not force and now - self._last_state_save < SAVE_EVERY):
                return
            self._last_state_save, self.meaning.dirty = now, False
            data = {"known_sources": {u: list(s) for u, s in self.meaning.known_sources.items()}}
        self._state.save(data)


def _load(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        log.warning("auth_position_unreadable")
        return None
    return data if isinstance(data, dict) else None


COLLECTOR = Registration(
    NAME, AuthConfig, build=lambda s, ctx: AuthCollector(s, state_dir=ctx.state_dir, clock=ctx.clock)
)


def files_sight(followers: Iterable[FileFollower]) -> tuple[bool, str]:
    """Up while one of the auth logs is open; else why none can be (missing, unreadable, refused)."""
    followers = list(followers)
    if any(f.is_open for f in followers):
        return True, ""
    return False, "no auth log can be read: " + (
        ", ".join(_why_not_open(f) for f in followers) or "none configured"
    )


def _why_not_open(follower: FileFollower) -> str:
    if follower.refused:  # a symlink or FIFO swapped in for the log
        return f"{follower.path} refused ({follower.refused})"
    try:  # looked at, never opened here: opening a FIFO swapped in since would block
        os.lstat(follower.path)
    except FileNotFoundError:
        return f"{follower.path} missing"
    except OSError as exc:
        return f"{follower.path} {exc.strerror or 'unreadable'}"
    return f"{follower.path} {'not open yet' if os.access(follower.path, os.R_OK) else 'unreadable'}"
