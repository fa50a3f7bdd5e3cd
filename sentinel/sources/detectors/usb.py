"""The USB detector: a mass-storage device, or any device not on the allowlist, is attached.

Devices are read from `/sys/bus/usb/devices` (under `sys_root`): vendor and product ids,
serial, names, and the interface classes (08 = mass storage). A scan runs at start and every
`interval`; where the kernel's uevent netlink socket can be opened (NETLINK_KOBJECT_UEVENT, the
same broadcast udev listens to — no pyudev needed) a USB `add` triggers a scan at once, so a
stick is reported within a second of being plugged in.

Events: `storage_attached` (it has a mass-storage interface) or `device_attached` (anything
else), for a device not present at the previous scan and not allowed by `allow` entries
(`"vvvv:pppp"` or `"vvvv:pppp:SERIAL"`, globs allowed). The present set is persisted, so a
device plugged in while the agent was down is reported at the next start; the very first start
learns what is there silently.
"""

from __future__ import annotations

import fnmatch
import select
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, clean_text, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Emit, Registration
from sentinel.sources.detectors.base import (
    DETECTOR_METRICS,
    DetectorStats,
    SightFromStats,
    StateFile,
    read_text,
)

log = structlog.get_logger("sentinel.collectors.usb")

NAME = "usb"
NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
MASS_STORAGE = "08"
SETTLE = 0.3  # seconds to let a burst of uevents (device, then its interfaces) finish


@dataclass(frozen=True, slots=True)
class UsbConfig:
    """`[collectors.usb]`."""

    enabled: bool = True
    interval: Duration = field(Duration(30), check=positive)
    netlink: bool = True
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """One USB device as sysfs describes it."""

    port: str  # sysfs name, e.g. "1-1.2"
    vendor: str
    product: str
    serial: str
    manufacturer: str
    name: str
    storage: bool

    @property
    def ident(self) -> str:
        """vendor:product:serial, what the allowlist and the present set use."""
        return f"{self.vendor}:{self.product}:{self.serial}"


def open_uevent_socket() -> socket.socket | None:
    """The kernel's uevent broadcast, or None where it cannot be opened (no permission, no netlink)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        sock.bind((0, KERNEL_GROUP))
    except (OSError, AttributeError) as exc:
        log.info("usb_netlink_unavailable", error=str(exc))
        return None
    return sock


def parse_uevent(data: bytes) -> dict[str, str]:
    """`add@/devices/...\\0ACTION=add\\0SUBSYSTEM=usb\\0...` -> {"ACTION": "add", ...}; {} if garbage."""
    if data.startswith(b"libudev"):
        return {}  # udev's re-broadcast has a binary header; the kernel group never carries it
    out: dict[str, str] = {}
    for part in data.split(b"\0")[1:]:
        key, sep, value = part.partition(b"=")
        if sep:
            out[key.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return out


def scan_devices(sys_root: Path) -> list[UsbDevice] | None:
    """Every USB device except root hubs; None when the bus is not there at all."""
    base = sys_root / "bus" / "usb" / "devices"
    try:
        names = sorted(p.name for p in base.iterdir())
    except OSError:
        return None
    devices = []
    for name in names:
        if ":" in name or name.startswith("usb"):
            continue  # interfaces and root hubs
        path = base / name
        vendor = (read_text(path / "idVendor") or "").strip().lower()
        product = (read_text(path / "idProduct") or "").strip().lower()
        if not vendor or not product:
            continue  # half-enumerated or vanished mid-scan
        classes = {(read_text(path / "bDeviceClass") or "").strip()}
        classes |= {(read_text(i / "bInterfaceClass") or "").strip() for i in base.glob(f"{name}:*")}
        devices.append(
            UsbDevice(
                port=name,
                vendor=vendor,
                product=product,
                serial=clean_text((read_text(path / "serial") or "").strip()),
                manufacturer=clean_text((read_text(path / "manufacturer") or "").strip()),
                name=clean_text((read_text(path / "product") or "").strip()),
                storage=MASS_STORAGE in classes,
            )
        )
    return devices


class UsbCollector(SightFromStats):
    """Streaming collector of USB attachments."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS

    def __init__(
        self,
        config: UsbConfig,
        *,
        state_dir: Path,
        sys_root: Path = Path("/sys"),
        clock: Clock = SYSTEM_CLOCK,
        uevent_socket: Callable[[], socket.socket | None] = open_uevent_socket,
    ) -> None:
        self.config = config
        self.stats = DetectorStats(NAME, ("storage_attached", "device_attached"))
        self._sys_root = sys_root
        self._clock = clock
        self._uevent_socket = uevent_socket
        self._state = StateFile(state_dir, NAME)
        saved = self._state.load()
        present = saved.get("present") if saved else None
        self._present: set[str] | None = set(present) if isinstance(present, list) else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.uevents = 0

    def start(self, emit: Emit) -> None:
        """Open the uevent socket (if allowed) and start watching."""
        self._sock = self._uevent_socket() if self.config.netlink else None
        self._thread = threading.Thread(target=self._run, args=(emit,), name="collector:usb", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _run(self, emit: Emit) -> None:
        while not self._stop.is_set():
            events = self.scan()
            if events:
                emit(events)
            self._wait()

    def _wait(self) -> None:
        """Until the next scan is due: the interval, or a USB uevent (then a short settle)."""
        interval = float(self.config.interval)
        if self._sock is None:
            self._stop.wait(interval)
            return
        deadline = self._clock.monotonic() + interval
        while not self._stop.is_set():
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self._sock], [], [], min(remaining, 1.0))
            if ready and self._usb_uevent():
                self._stop.wait(SETTLE)
                return

    def _usb_uevent(self) -> bool:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 16)
        except OSError:
            return False
        self.uevents += 1
        fields = parse_uevent(data)
        if not fields:
            self.stats.malformed()
            return False
        return fields.get("SUBSYSTEM") == "usb" and fields.get("ACTION") in ("add", "bind", "change")

    def scan(self) -> list[Event]:
        """Compare the devices present now with the last scan; events for new, unallowed ones."""
        devices = scan_devices(self._sys_root)
        self.stats.ran(self._clock.time())
        if devices is None:
            bus = self._sys_root / "bus" / "usb" / "devices"
            self.stats.set_up(False, f"no USB bus to watch: {bus} is missing")
        else:
            self.stats.set_up(True)
        if devices is None:
            return []
        now = {d.ident: d for d in devices}
        before, self._present = self._present, set(now)
        if before != self._present:
            self._state.save({"present": sorted(self._present)})
        if before is None:
            log.info("usb_baseline_learned", devices=len(now))
            return []
        events = [self._event(d) for ident, d in now.items() if ident not in before and not self._allowed(d)]
        return self.stats.counted(events)

    def _allowed(self, device: UsbDevice) -> bool:
        short = f"{device.vendor}:{device.product}"
        return any(
            fnmatch.fnmatchcase(short, entry) or fnmatch.fnmatchcase(device.ident, entry)
            for entry in self.config.allow
        )

    def _event(self, device: UsbDevice) -> Event:
        kind = "storage_attached" if device.storage else "device_attached"
        fields = {
            "vendor_product": f"{device.vendor}:{device.product}",
            "serial": device.serial,
            "manufacturer": device.manufacturer,
            "product": device.name,
            "port": device.port,
        }
        subject = f"{device.vendor}:{device.product}" + (f" {device.serial}" if device.serial else "")
        return Event(NAME, kind, subject, self._clock.time(), freeze_fields(fields))


COLLECTOR = Registration(
    NAME, UsbConfig, build=lambda s, ctx: UsbCollector(s, state_dir=ctx.state_dir, clock=ctx.clock)
)
