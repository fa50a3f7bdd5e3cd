"""The USB detector: devices attached and removed, and the peripherals a terminal must have.

Devices are read from `/sys/bus/usb/devices` (under `sys_root`): vendor and product ids,
serial, names, the interface classes (08 = mass storage, 0b = smart card) and the serial port a
USB-serial adapter provides (ttyUSB0, ttyACM0). A scan runs at start and every `interval`; where
the kernel's uevent netlink socket can be opened (NETLINK_KOBJECT_UEVENT, the same broadcast udev
listens to — no pyudev needed) a USB `add` or `remove` triggers a scan at once, so a stick is
reported within a second of being plugged in and a card reader within a second of going.

Events:

- `storage_attached` (it has a mass-storage interface) or `device_attached` (anything else), for
  a device not present at the previous scan and not allowed by `allow` entries (`"vvvv:pppp"` or
  `"vvvv:pppp:SERIAL"`, globs allowed);
- `device_removed` for every device that left (recorded; the rules raise nothing for it alone);
- `required_missing` and `identity_changed` for the peripheral inventory (`required` entries and
  what `sentinel inventory accept` recorded; sentinel.sources.detectors.peripherals), once per
  problem until it is gone.

The present devices are persisted, so a device plugged in or pulled while the agent was down is
reported at the next start; the very first start learns what is attached silently (a required
device missing at the first start is still reported).
"""

from __future__ import annotations

import fnmatch
import select
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, clean_text, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Emit, Registration
from sentinel.sources.detectors.base import (
    DETECTOR_METRICS,
    DetectorStats,
    SightFromStats,
    StateFile,
    read_text,
)
from sentinel.sources.detectors.peripherals import Present, Problem, RequiredDevice, judge, learned

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
    required: tuple[RequiredDevice, ...] = ()  # [[collectors.usb.required]]: the terminal's peripherals


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
    classes: frozenset[str] = frozenset()
    tty: str = ""  # the serial port a USB-serial adapter provides

    @property
    def ident(self) -> str:
        """vendor:product:serial, what the allowlist and the present set use."""
        return f"{self.vendor}:{self.product}:{self.serial}"

    @property
    def present(self) -> Present:
        """As the peripheral inventory judges it."""
        return Present(
            self.port, f"{self.vendor}:{self.product}", self.serial, self.name, self.classes, self.tty
        )

    def to_json(self) -> dict[str, str]:
        """For the state file and `sentinel inventory --json`."""
        return {
            "port": self.port,
            "vendor_product": f"{self.vendor}:{self.product}",
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "product": self.name,
            "tty": self.tty,
        }


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
        interfaces = sorted(base.glob(f"{name}:*"))
        classes = {(read_text(path / "bDeviceClass") or "").strip().lower()}
        classes |= {(read_text(i / "bInterfaceClass") or "").strip().lower() for i in interfaces}
        ttys = sorted(
            t.name for i in interfaces for t in (*i.glob("tty*"), *i.glob("tty/tty*")) if t.name != "tty"
        )
        devices.append(
            UsbDevice(
                port=name,
                vendor=vendor,
                product=product,
                serial=clean_text((read_text(path / "serial") or "").strip()),
                manufacturer=clean_text((read_text(path / "manufacturer") or "").strip()),
                name=clean_text((read_text(path / "product") or "").strip()),
                storage=MASS_STORAGE in classes,
                classes=frozenset(c for c in classes if c),
                tty=ttys[0] if ttys else "",
            )
        )
    return devices


KINDS = ("storage_attached", "device_attached", "device_removed", "required_missing", "identity_changed")
METRICS = (
    *DETECTOR_METRICS,
    MetricSpec(
        "sentinel_peripherals_required", "gauge", "Peripherals the terminal must have (config and accepted)."
    ),
    MetricSpec(
        "sentinel_peripherals_missing",
        "gauge",
        "Required peripherals not present as required (missing, or another device in their place).",
    ),
)


class UsbCollector(SightFromStats):
    """Streaming collector of USB attachments, removals and the peripheral inventory."""

    name = NAME
    metrics: Sequence[MetricSpec] = METRICS

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
        self.stats = DetectorStats(NAME, KINDS)
        self._sys_root = sys_root
        self._clock = clock
        self._uevent_socket = uevent_socket
        self._state_dir = state_dir
        self._state = StateFile(state_dir, NAME)
        saved = self._state.load() or {}
        present = saved.get("present")
        self._present: set[str] | None = set(present) if isinstance(present, list) else None
        devices = saved.get("devices")
        self._devices: dict[str, dict[str, str]] = devices if isinstance(devices, dict) else {}
        problems = saved.get("problems")
        self._problems: set[str] = set(problems) if isinstance(problems, list) else set()
        self._lock = threading.Lock()
        self._required = 0
        self._missing = 0
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

    def current(self) -> Iterable[Sample]:
        """Event counters, whether the bus can be read, and the peripheral inventory's gauges."""
        with self._lock:
            required, missing = self._required, self._missing
        return [
            *super().current(),
            Sample.of("sentinel_peripherals_required", required),
            Sample.of("sentinel_peripherals_missing", missing),
        ]

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
        return fields.get("SUBSYSTEM") in ("usb", "tty", "usb-serial") and fields.get("ACTION") in (
            "add",
            "bind",
            "change",
            "remove",
            "unbind",
        )

    def scan(self) -> list[Event]:
        """Compare the devices present now with the last scan: attachments (not allowed ones),
        removals, and the required peripherals that are missing or replaced."""
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
        gone = {i: self._devices.get(i, {}) for i in (before or set()) - set(now)}
        self._devices = {i: d.to_json() for i, d in now.items()}
        events: list[Event] = []
        if before is None:
            log.info("usb_baseline_learned", devices=len(now))
        else:
            events += [
                self._event(d) for ident, d in now.items() if ident not in before and not self._allowed(d)
            ]
            events += [self._removed(ident, info) for ident, info in sorted(gone.items())]
        events += self._judge([d.present for d in devices])
        self._state.save(
            {"present": sorted(self._present), "devices": self._devices, "problems": sorted(self._problems)}
        )
        return self.stats.counted(events)

    def required(self) -> tuple[RequiredDevice, ...]:
        """What the terminal must have: `required` entries, then what was accepted."""
        return (*self.config.required, *learned(self._state_dir))

    def _judge(self, present: list[Present]) -> list[Event]:
        """Events for requirements newly unmet (each problem once until it goes away)."""
        required = self.required()
        problems = judge(required, present)
        fresh = [p for p in problems if p.key not in self._problems]
        self._problems = {p.key for p in problems}
        with self._lock:
            self._required = len(required)
            self._missing = len({(p.required.name, p.required.port) for p in problems})
        return [self._problem(p) for p in fresh]

    def _problem(self, problem: Problem) -> Event:
        req = problem.required
        expected = req.vendor_product + (f" serial {req.serial}" if req.serial else "")
        fields: dict[str, Scalar] = {
            "name": clean_text(req.name),
            "role": req.role,
            "vendor_product": req.vendor_product,
            "expected_serial": req.serial or "any",
            "expected_port": req.port or "any",
        }
        subject = clean_text(req.name)
        if problem.found is not None:
            found = problem.found
            fields |= {
                "port": found.port,
                "expected": expected,
                "found": found.vendor_product + (f" serial {found.serial}" if found.serial else ""),
                "serial": clean_text(found.serial),
            }
            subject = f"{subject} {found.port}"
        return Event(NAME, problem.kind, subject, self._clock.time(), freeze_fields(fields))

    def _removed(self, ident: str, info: dict[str, str]) -> Event:
        vendor_product = info.get("vendor_product") or ":".join(ident.split(":")[:2])
        serial = info.get("serial", ident.split(":", 2)[2] if ident.count(":") >= 2 else "")
        fields: dict[str, Scalar] = {
            "vendor_product": vendor_product,
            "serial": serial,
            "manufacturer": info.get("manufacturer", ""),
            "product": info.get("product", ""),
            "port": info.get("port", ""),
        }
        subject = vendor_product + (f" {serial}" if serial else "")
        return Event(NAME, "device_removed", subject, self._clock.time(), freeze_fields(fields))

    def _allowed(self, device: UsbDevice) -> bool:
        """On the allowlist, or the terminal's own required equipment (plugged back in)."""
        short = f"{device.vendor}:{device.product}"
        if any(r.matches(short, device.serial) for r in self.required()):
            return True
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
