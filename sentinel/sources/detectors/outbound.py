"""The outbound detector: connections to unexpected addresses, and sustained transmit volume.

- `connection_unexpected`: an established TCP connection whose peer is outside `allowed_cidrs`
  (loopback, private and link-local ranges by default — a branch terminal talks to its own
  network) and whose peer port is not in `allowed_ports`, by a process not in
  `allowed_processes`. Reported once per (peer, port) per `remember` period.
- `transmit_high`: an interface (not in `interfaces_skip`) sending more than `transmit_rate`
  bytes per second on average for `transmit_for` (possible exfiltration); once per episode,
  re-armed when the rate falls below the threshold.

Connections are read from /proc/net/tcp{,6} and traffic from /proc/net/dev under `proc_root`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, clean_text, freeze_fields
from sentinel.core.settings import Duration, KeyPath, Size, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.detectors.base import (
    DETECTOR_METRICS,
    DetectorStats,
    SightFromStats,
    owner_capabilities_missing,
    socket_sight,
)
from sentinel.sources.parsers.procnet import UNKNOWN, Owner, read_sockets, socket_owners

log = structlog.get_logger("sentinel.collectors.outbound")

NAME = "outbound"
PRIVATE_RANGES = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fe80::/10",
    "fc00::/7",
)


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """`[collectors.outbound]`."""

    enabled: bool = True
    interval: Duration = field(Duration(30), check=positive)
    allowed_cidrs: tuple[str, ...] = PRIVATE_RANGES
    allowed_ports: tuple[int, ...] = ()
    allowed_processes: tuple[str, ...] = ()
    remember: Duration = field(Duration(3600), check=positive)
    transmit_rate: Size = field(Size(2_000_000), check=positive)
    transmit_for: Duration = field(Duration(600), check=positive)
    interfaces_skip: tuple[str, ...] = ("lo",)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Every CIDR must parse."""
        problems: list[tuple[KeyPath, str]] = []
        for i, cidr in enumerate(self.allowed_cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append((("allowed_cidrs", i), f'expected a network like "10.0.0.0/8", got "{cidr}"'))
        return problems


class OutboundCollector(SightFromStats):
    """Polled collector of unexpected outbound connections and transmit volume."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS

    def __init__(
        self,
        config: OutboundConfig,
        *,
        proc_root: Path = Path("/proc"),
        clock: Clock = SYSTEM_CLOCK,
        missing: Callable[[], list[str]] = owner_capabilities_missing,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self.stats = DetectorStats(NAME, ("connection_unexpected", "transmit_high"))
        self._proc_root = proc_root
        self._clock = clock
        self._missing = missing  # the capabilities it lacks to see every socket's owner
        self._networks = [ipaddress.ip_network(c, strict=False) for c in config.allowed_cidrs]
        self._reported: dict[tuple[str, int], float] = {}  # (peer, port) -> monotonic time reported
        self._tx: dict[str, tuple[float, int]] = {}  # interface -> (monotonic, bytes sent)
        self._hot_since: dict[str, float] = {}
        self._fired: set[str] = set()

    def collect(self) -> Iterable[Sample | Event]:
        """One look at connections and interface counters."""
        events = self._connections() + self._transmit()
        return [*self.stats.counted(events), *self.stats.samples()]

    # -- connections ----------------------------------------------------------------------------

    def _connections(self) -> list[Event]:
        now = self._clock.monotonic()
        sockets = read_sockets(self._proc_root, ("tcp", "tcp6"), malformed=self.stats.malformed)
        self.stats.set_up(*socket_sight(self._proc_root, self._missing()))
        self._reported = {k: t for k, t in self._reported.items() if now - t < self.config.remember}
        unexpected = [
            s
            for s in sockets
            if s.established
            and s.remote_port not in self.config.allowed_ports
            and not self._allowed_address(s.remote)
            and (s.remote, s.remote_port) not in self._reported
        ]
        if not unexpected:
            return []
        owners = socket_owners(self._proc_root, {s.inode for s in unexpected})
        events = []
        for sock in unexpected:
            owner = owners.get(sock.inode) or Owner(0, UNKNOWN, UNKNOWN)
            if owner.name in self.config.allowed_processes:
                continue
            key = (sock.remote, sock.remote_port)
            if key in self._reported:  # two sockets to the same peer in one poll
                continue
            self._reported[key] = now
            host = f"[{sock.remote}]" if ":" in sock.remote else sock.remote
            fields: dict[str, Scalar] = {
                "remote": sock.remote,
                "port": sock.remote_port,
                "local_port": sock.local_port,
                "process": clean_text(owner.name),
                "pid": owner.pid,
                "exe": clean_text(owner.exe),
                "uid": sock.uid,
            }
            events.append(
                Event(
                    NAME,
                    "connection_unexpected",
                    f"{host}:{sock.remote_port}",
                    self._clock.time(),
                    freeze_fields(fields),
                )
            )
        return events

    def _allowed_address(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self._networks)

    # -- volume ---------------------------------------------------------------------------------

    def _transmit(self) -> list[Event]:
        now = self._clock.monotonic()
        events = []
        for interface, sent in self._read_dev().items():
            if interface in self.config.interfaces_skip:
                continue
            previous = self._tx.get(interface)
            self._tx[interface] = (now, sent)
            if previous is None or now <= previous[0] or sent < previous[1]:
                continue  # first sight, or the counter reset (interface re-created)
            rate = (sent - previous[1]) / (now - previous[0])
            if rate < self.config.transmit_rate:
                self._hot_since.pop(interface, None)
                self._fired.discard(interface)
                continue
            since = self._hot_since.setdefault(interface, previous[0])
            if now - since >= self.config.transmit_for and interface not in self._fired:
                self._fired.add(interface)
                fields: dict[str, Scalar] = {
                    "interface": interface,
                    "rate_bytes_per_second": round(rate),
                    "seconds": now - since,
                }
                events.append(
                    Event(NAME, "transmit_high", interface, self._clock.time(), freeze_fields(fields))
                )
        return events

    def _read_dev(self) -> dict[str, int]:
        """Bytes transmitted per interface from /proc/net/dev (10th field after the colon)."""
        try:
            text = (self._proc_root / "net" / "dev").read_text(encoding="ascii", errors="replace")
        except OSError:
            return {}
        out = {}
        for line in text.splitlines()[2:]:
            name, _, rest = line.partition(":")
            values = rest.split()
            try:
                out[name.strip()] = int(values[8])
            except (IndexError, ValueError):
                self.stats.malformed()
        return out


COLLECTOR = Registration(NAME, OutboundConfig, build=lambda s, ctx: OutboundCollector(s, clock=ctx.clock))
