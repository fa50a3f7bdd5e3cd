"""Network interfaces from `sys_root/class/net`: link up, speed, bytes, packets, errors, drops.

sysfs has everything per interface without ioctls (what node_exporter's netclass collector
reads). An interface that disappears (a USB adapter unplugged, a driver crash) is not simply
dropped: it keeps being reported as down for `forget_vanished_after`, so a rule on
`sentinel_network_up` raises a hazard for it instead of the series quietly vanishing.

Read by hand, not with psutil: psutil's counters come from /proc/net/dev and its link state from
ioctls, so neither reads a `sys_root` fixture, and it has no carrier (a tun device is "up" only by
its carrier, with operstate "unknown").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, check_regexes, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader

SKIP_INTERFACES = (r"lo", r"docker.*", r"veth.*", r"br-.*", r"virbr.*", r"ifb\d+", r"dummy\d+", r"cali.*")
MAX_REMEMBERED = 64  # vanished interfaces remembered at most (bounded memory and labels)
_COUNTERS = (
    ("sentinel_network_receive_bytes_total", "rx_bytes", "Bytes received."),
    ("sentinel_network_transmit_bytes_total", "tx_bytes", "Bytes sent."),
    ("sentinel_network_receive_packets_total", "rx_packets", "Packets received."),
    ("sentinel_network_transmit_packets_total", "tx_packets", "Packets sent."),
    ("sentinel_network_receive_errors_total", "rx_errors", "Receive errors."),
    ("sentinel_network_transmit_errors_total", "tx_errors", "Transmit errors."),
    ("sentinel_network_receive_drops_total", "rx_dropped", "Received packets dropped."),
    ("sentinel_network_transmit_drops_total", "tx_dropped", "Packets dropped before sending."),
)


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """`[collectors.network]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)
    skip_interfaces: tuple[str, ...] = field(SKIP_INTERFACES, check=check_regexes)  # full-match regexes
    forget_vanished_after: Duration = field(Duration(86400), check=positive)


LABELS = ("device", "interface")
"""`device` as node_exporter names it; `interface` (the same value) is kept for one release so
dashboards and alerts written against it keep working (docs/metrics.md, "Label names")."""

METRICS = (
    MetricSpec(
        "sentinel_network_up",
        "gauge",
        "1 when the interface is up with a carrier; 0 when down or recently vanished.",
        LABELS,
    ),
    MetricSpec("sentinel_network_speed_bytes", "gauge", "Negotiated link speed in bytes per second.", LABELS),
    *(MetricSpec(name, "counter", text, LABELS) for name, _, text in _COUNTERS),
    READ_ERRORS_SPEC,
)


class NetworkCollector:
    """Polled collector of network interfaces."""

    name = "network"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self, config: NetworkConfig, *, sys_root: Path = Path("/sys"), clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._net = sys_root / "class" / "net"
        self._clock = clock
        self._reader = FileReader(self.name)
        self._skip = [re.compile(p) for p in config.skip_interfaces]
        self._last_seen: dict[str, float] = {}  # interface -> monotonic time it was last present

    def collect(self) -> Iterable[Sample]:
        """One reading of every interface, plus recently vanished ones as down."""
        now = self._clock.monotonic()
        out: list[Sample] = []
        present: set[str] = set()
        for name in self._interfaces():
            readings = self._interface(name)
            if readings:  # empty: it vanished while being read
                present.add(name)
                self._last_seen[name] = now
                out += readings
        out += self._vanished(present, now)
        out.append(self._reader.sample())
        return out

    def _interfaces(self) -> list[str]:
        try:
            names = sorted(p.name for p in self._net.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._reader.garbage(self._net, exc.strerror or str(exc))
            return []
        return [n for n in names if not any(p.fullmatch(n) for p in self._skip)]

    def _interface(self, name: str) -> list[Sample]:
        base = self._net / name
        operstate = self._reader.text(base / "operstate")
        if operstate is None:
            return []
        out = [
            Sample.of(
                "sentinel_network_up", 1 if self._is_up(base, operstate) else 0, device=name, interface=name
            )
        ]
        speed = self._reader.number(base / "speed")  # Mb/s; absent or -1 when the link is down
        if speed is not None and speed > 0:
            out.append(
                Sample.of("sentinel_network_speed_bytes", speed * 1_000_000 / 8, device=name, interface=name)
            )
        for metric, file, _ in _COUNTERS:
            value = self._reader.number(base / "statistics" / file)
            if value is not None:
                out.append(Sample.of(metric, value, device=name, interface=name))
        return out

    def _is_up(self, base: Path, operstate: str) -> bool:
        if operstate == "up":
            return True
        # tun devices and some virtual NICs never report "up", only "unknown" with a carrier
        return operstate == "unknown" and self._reader.text(base / "carrier") == "1"

    def _vanished(self, present: set[str], now: float) -> list[Sample]:
        horizon = now - self.config.forget_vanished_after
        for name in [n for n, seen in self._last_seen.items() if seen < horizon]:
            del self._last_seen[name]
        while len(self._last_seen) > MAX_REMEMBERED:  # keep the most recently seen
            del self._last_seen[min(self._last_seen, key=self._last_seen.__getitem__)]
        gone = sorted(n for n in self._last_seen if n not in present)
        return [Sample.of("sentinel_network_up", 0, device=n, interface=n) for n in gone]


COLLECTOR = Registration("network", NetworkConfig, build=lambda s, ctx: NetworkCollector(s, clock=ctx.clock))
