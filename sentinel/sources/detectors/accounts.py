"""The accounts-and-persistence detector: who can log in, who can become root, what runs later.

Compared with a baseline kept in `state_dir/detectors/accounts.json` (learnt silently at the
first run, then updated after each report so a change is reported once):

- `account_added` / `account_removed`: /etc/passwd entries (osquery's `users`);
- `uid0_account`: an account other than root with UID 0 — reported at first sight even at the
  first run, because no baseline makes that acceptable;
- `sudoers_changed`, `crontab_changed`, `authorized_keys_changed`: a file added, modified or
  removed among /etc/sudoers(.d), the system and user crontabs, and every account's
  ~/.ssh/authorized_keys(2) (content hash; a file is re-hashed only when its stat changes);
- `suid_new`: a set-user-ID file under `suid_dirs` that was not there before (scanned every
  `suid_interval`, since walking directories costs more than the rest together);
- `module_loaded`: a kernel module in /proc/modules that is not in the baseline.

Every path is read under `root` (and /proc under `proc_root`) so tests feed a fixture tree.
"""

from __future__ import annotations

import copy
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, clean_text, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats, SightFromStats, StateFile
from sentinel.sources.sight import CAP_DAC_READ_SEARCH, missing_capabilities, private_copies

log = structlog.get_logger("sentinel.collectors.accounts")

NAME = "accounts"
KINDS = (
    "account_added",
    "account_removed",
    "uid0_account",
    "sudoers_changed",
    "crontab_changed",
    "authorized_keys_changed",
    "suid_new",
    "module_loaded",
)
HASH_LIMIT = 4 << 20  # bytes hashed per watched file: these files are small; a huge one is odd anyway
SUID_SCAN_LIMIT = 200_000  # entries walked per SUID scan, so a runaway tree cannot starve the host
SUDOERS = ("etc/sudoers", "etc/sudoers.d/*")
CRONTABS = (
    "etc/crontab",
    "etc/cron.d/*",
    "var/spool/cron/crontabs/*",
    "var/spool/cron/*",
    "etc/anacrontab",
)
SUID_DIRS = (
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local",
    "/usr/libexec",
    "/opt",
    "/tmp",  # noqa: S108 - scanned for planted SUID files, never written
    "/var/tmp",  # noqa: S108
    "/dev/shm",  # noqa: S108
    "/home",
)


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    """`[collectors.accounts]`."""

    enabled: bool = True
    interval: Duration = field(Duration(60), check=positive)
    suid_interval: Duration = field(Duration(3600), check=positive)
    suid_dirs: tuple[str, ...] = SUID_DIRS
    modules: bool = True


class AccountsCollector(SightFromStats):
    """Polled collector of account, privilege, persistence and kernel-module changes."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS

    def __init__(
        self,
        config: AccountsConfig,
        *,
        state_dir: Path,
        root: Path = Path("/"),
        proc_root: Path = Path("/proc"),
        clock: Clock = SYSTEM_CLOCK,
        missing: Callable[[], list[str]] = lambda: missing_capabilities([CAP_DAC_READ_SEARCH]),
        private: Callable[[Iterable[str]], list[str]] = private_copies,
    ) -> None:
        self.config = config
        self._missing = missing
        self._private = private
        self.interval = float(config.interval)
        self.stats = DetectorStats(NAME, KINDS)
        self._root = root
        self._proc_root = proc_root
        self._clock = clock
        self._state = StateFile(state_dir, NAME)
        self._base: dict[str, Any] = self._state.load() or {}
        self._saved = copy.deepcopy(self._base)
        self._hash_cache: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._uid0_reported: set[str] = set()
        self._next_suid = float("-inf")

    def collect(self) -> Iterable[Sample | Event]:
        """One comparison of everything against the baseline."""
        users = self._users()
        self._check_sight(users is not None)
        events: list[Event] = []
        if users is not None:
            events += self._accounts(users)
            events += self._files("sudoers_changed", self._expand(SUDOERS))
            events += self._files("crontab_changed", self._expand(CRONTABS))
            events += self._files("authorized_keys_changed", self._key_files(users))
        if self.config.modules:
            events += self._modules()
        if self._clock.monotonic() >= self._next_suid:
            self._next_suid = self._clock.monotonic() + self.config.suid_interval
            events += self._suid()
        if self._base != self._saved:  # an fsync only when something changed
            self._state.save(self._base)
            self._saved = copy.deepcopy(self._base)
        return [*self.stats.counted(events), *self.stats.samples()]

    def _check_sight(self, passwd: bool) -> None:
        missing = self._missing()
        private = self._private(self.config.suid_dirs) if self._root == Path("/") else []
        if not passwd:
            self.stats.set_up(False, f"cannot read {self._root / 'etc/passwd'}")
        elif missing:
            needs = " and ".join(missing)
            self.stats.set_up(
                False, f"cannot read sudoers, crontabs and others' authorized_keys: needs {needs}"
            )
        elif private:
            self.stats.set_up(
                False,
                f"{', '.join(private)}: this service's private copies (PrivateTmp=yes), "
                "not the host's; SUID files planted there are invisible",
            )
        else:
            self.stats.set_up(True)

    def _event(self, kind: str, subject: str, **fields: Any) -> Event:
        clean = {k: clean_text(v) if isinstance(v, str) else v for k, v in fields.items()}
        return Event(NAME, kind, clean_text(subject), self._clock.time(), freeze_fields(clean))

    # -- accounts -------------------------------------------------------------------------------

    def _users(self) -> dict[str, tuple[int, str]] | None:
        """name -> (uid, home) from passwd; None when passwd cannot be read."""
        try:
            text = (self._root / "etc" / "passwd").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None
        users: dict[str, tuple[int, str]] = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split(":")
            try:
                users[parts[0]] = (int(parts[2]), parts[5])
            except (IndexError, ValueError):
                self.stats.malformed()
        return users

    def _accounts(self, users: dict[str, tuple[int, str]]) -> list[Event]:
        events = [
            self._event("uid0_account", name, user=name, uid=0)
            for name, (uid, _home) in users.items()
            if uid == 0 and name != "root" and name not in self._uid0_reported
        ]
        self._uid0_reported |= {name for name, (uid, _h) in users.items() if uid == 0 and name != "root"}
        known = self._base.get("users")
        current = {name: uid for name, (uid, _home) in users.items()}
        self._base["users"] = current
        if not isinstance(known, dict):
            return events
        events += [
            self._event("account_added", name, user=name, uid=uid)
            for name, uid in current.items()
            if name not in known
        ]
        events += [
            self._event("account_removed", name, user=name, uid=uid)
            for name, uid in known.items()
            if name not in current
        ]
        return events

    # -- watched files --------------------------------------------------------------------------

    def _expand(self, patterns: Iterable[str]) -> list[Path]:
        out: list[Path] = []
        for pattern in patterns:
            if "*" in pattern:
                out += sorted(p for p in self._root.glob(pattern) if p.is_file())
            else:
                out.append(self._root / pattern)
        return out

    def _key_files(self, users: dict[str, tuple[int, str]]) -> list[Path]:
        homes = {home for _uid, home in users.values() if home.startswith("/") and home != "/"}
        return [
            self._root / home.lstrip("/") / ".ssh" / name
            for home in sorted(homes)
            for name in ("authorized_keys", "authorized_keys2")
        ]

    def _files(self, kind: str, paths: list[Path]) -> list[Event]:
        known = self._base.get(kind)
        current = {self._shown(p): digest for p in paths if (digest := self._digest(p)) is not None}
        self._base[kind] = current
        if not isinstance(known, dict):
            return []
        events = []
        for path, digest in current.items():
            if path not in known:
                events.append(self._event(kind, path, path=path, change="added"))
            elif known[path] != digest:
                events.append(self._event(kind, path, path=path, change="modified"))
        events += [self._event(kind, p, path=p, change="removed") for p in known if p not in current]
        return events

    def _shown(self, path: Path) -> str:
        """The path as it is on the host (without the fixture root)."""
        return "/" + str(path.relative_to(self._root)).lstrip("/")

    def _digest(self, path: Path) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._hash_cache.get(str(path))
        if cached and cached[0] == signature:
            return cached[1]
        try:
            with open(path, "rb") as fh:
                digest = hashlib.sha256(fh.read(HASH_LIMIT)).hexdigest()
        except OSError:
            return None  # unreadable without root: not a change
        self._hash_cache[str(path)] = (signature, digest)
        return digest

    # -- SUID files -----------------------------------------------------------------------------

    def _suid(self) -> list[Event]:
        found: list[str] = []
        walked = 0
        for top in self.config.suid_dirs:
            stack = [self._root / top.lstrip("/")]
            while stack and walked < SUID_SCAN_LIMIT:
                try:
                    entries = list(os.scandir(stack.pop()))
                except OSError:
                    continue
                for entry in entries:
                    walked += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(Path(entry.path))
                    elif stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_ISUID:
                        found.append(self._shown(Path(entry.path)))
        if walked >= SUID_SCAN_LIMIT:
            log.warning("suid_scan_truncated", limit=SUID_SCAN_LIMIT)
        known = self._base.get("suid")
        self._base["suid"] = sorted(set(found) | set(known or ()))
        if not isinstance(known, list):
            return []
        return [self._event("suid_new", p, path=p) for p in sorted(set(found) - set(known))]

    # -- kernel modules -------------------------------------------------------------------------

    def _modules(self) -> list[Event]:
        try:
            text = (self._proc_root / "modules").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []  # no /proc/modules (a kernel without modules, a container): nothing to compare
        loaded = sorted({line.split(" ", 1)[0] for line in text.splitlines() if line.strip()})
        known = self._base.get("modules")
        self._base["modules"] = sorted(set(loaded) | set(known or ()))
        if not isinstance(known, list):
            return []
        return [self._event("module_loaded", m, module=m) for m in loaded if m not in set(known)]


COLLECTOR = Registration(
    NAME, AccountsConfig, build=lambda s, ctx: AccountsCollector(s, state_dir=ctx.state_dir, clock=ctx.clock)
)
