"""The listeners detector: a TCP/UDP listening socket that is neither in the baseline nor allowed.

A listener is identified by (protocol, address, port, process name): the same port opened by
another program is a new listener. The first run on a terminal learns what listens as the
baseline (persisted in `state_dir/detectors/listeners.json`); afterwards each new listener
raises one `listener_new` event and joins the known set, so it is reported once, not every
poll — the hazard record is the lasting notice. `allow_ports` and `allow_processes` are never
reported. Loopback listeners count too: a local proxy or backdoor is still a change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, clean_text, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.detectors.base import (
    DETECTOR_METRICS,
    DetectorStats,
    SightFromStats,
    StateFile,
    owner_capabilities_missing,
    socket_sight,
)
from sentinel.sources.parsers.procnet import PROTOCOLS, UNKNOWN, Owner, Socket, read_sockets, socket_owners

log = structlog.get_logger("sentinel.collectors.listeners")

NAME = "listeners"
MAX_KNOWN = 5000


def _protocols(value: tuple[str, ...]) -> str | None:
    bad = [p for p in value if p not in PROTOCOLS]
    return f"unknown protocol {bad[0]!r} (use {', '.join(PROTOCOLS)})" if bad else None


@dataclass(frozen=True, slots=True)
class ListenersConfig:
    """`[collectors.listeners]`."""

    enabled: bool = True
    interval: Duration = field(Duration(30), check=positive)
    protocols: tuple[str, ...] = field(PROTOCOLS, check=_protocols)
    allow_ports: tuple[int, ...] = ()
    allow_processes: tuple[str, ...] = ()


class ListenersCollector(SightFromStats):
    """Polled collector of new listening sockets."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS

    def __init__(
        self,
        config: ListenersConfig,
        *,
        state_dir: Path,
        proc_root: Path = Path("/proc"),
        clock: Clock = SYSTEM_CLOCK,
        missing: Callable[[], list[str]] = owner_capabilities_missing,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self.stats = DetectorStats(NAME, ("listener_new",))
        self._proc_root = proc_root
        self._clock = clock
        self._missing = missing  # the capabilities it lacks to see every socket's owner
        self._state = StateFile(state_dir, NAME)
        saved = self._state.load()
        known = saved.get("known") if saved else None
        self._known: dict[str, None] | None = dict.fromkeys(known) if isinstance(known, list) else None
        self._owners: dict[int, Owner] = {}  # socket inode -> owner; inodes are never reused while open

    def collect(self) -> Iterable[Sample | Event]:
        """One look at the socket tables."""
        sockets = [
            s
            for s in read_sockets(self._proc_root, self.config.protocols, malformed=self.stats.malformed)
            if s.listening
        ]
        self.stats.set_up(*socket_sight(self._proc_root, self._missing()))
        self._resolve(sockets)
        current = {self._key(s): s for s in sockets if not self._allowed(s)}
        if self._known is None:  # first run on this terminal: what listens now is the baseline
            self._known = dict.fromkeys(current)
            log.info("listeners_baseline_learned", listeners=len(current))
            self._save()
            return self.stats.samples()
        new = [key for key in current if key not in self._known]
        events = [self._event(current[key]) for key in new]
        if new:
            self._known.update(dict.fromkeys(new))
            while len(self._known) > MAX_KNOWN:
                self._known.pop(next(iter(self._known)))
            self._save()
        return [*self.stats.counted(events), *self.stats.samples()]

    def _resolve(self, sockets: list[Socket]) -> None:
        live = {s.inode for s in sockets}
        self._owners = {i: o for i, o in self._owners.items() if i in live}
        missing = live - set(self._owners)
        if missing:
            self._owners.update(socket_owners(self._proc_root, missing))

    def _owner(self, sock: Socket) -> Owner:
        return self._owners.get(sock.inode) or Owner(0, UNKNOWN, UNKNOWN)

    def _allowed(self, sock: Socket) -> bool:
        return (
            sock.local_port in self.config.allow_ports
            or self._owner(sock).name in self.config.allow_processes
        )

    def _key(self, sock: Socket) -> str:
        return f"{sock.proto}|{sock.local}|{sock.local_port}|{self._owner(sock).name}"

    def _event(self, sock: Socket) -> Event:
        owner = self._owner(sock)
        host = f"[{sock.local}]" if ":" in sock.local else sock.local
        fields: dict[str, Scalar] = {
            "proto": sock.proto,
            "address": sock.local,
            "port": sock.local_port,
            "process": clean_text(owner.name),
            "pid": owner.pid,
            "exe": clean_text(owner.exe),
            "uid": sock.uid,
        }
        subject = f"{sock.proto} {host}:{sock.local_port} ({clean_text(owner.name)})"
        return Event(NAME, "listener_new", subject, self._clock.time(), freeze_fields(fields))

    def _save(self) -> None:
        self._state.save({"known": list(self._known or ())})


COLLECTOR = Registration(
    NAME,
    ListenersConfig,
    build=lambda s, ctx: ListenersCollector(s, state_dir=ctx.state_dir, clock=ctx.clock),
)
