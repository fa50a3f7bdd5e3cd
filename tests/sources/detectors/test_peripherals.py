"""The peripheral inventory: a fixture sysfs tree changed under a running USB detector, told by
real NETLINK_KOBJECT_UEVENT messages, and the shipped rules that make the removal of a required
card reader and a swapped PIN pad critical terminal_equipment hazards."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.model import Category, Event, Severity
from sentinel.rules.engine import RuleEngine
from sentinel.sources.detectors.peripherals import RequiredDevice, accept, judge, learned
from sentinel.sources.detectors.usb import NETLINK_KOBJECT_UEVENT, UsbCollector, UsbConfig, scan_devices
from sentinel.testing import wait_until
from tests.sources.integrity.rules_helper import ROOT

CARD_READER = ("1-1", "0b81", "0220", "CR0001", "0b")  # port, vendor, product, serial, interface class
PIN_PAD = ("1-2", "1234", "5678", "PP0001", "ff")
PRINTER = ("1-3", "0519", "0003", "", "07")


def device(sys_root: Path, port: str, vendor: str, product: str, serial: str, iface_class: str) -> None:
    """One USB device (and its interface) as the kernel lays it out under /sys/bus/usb/devices."""
    base = sys_root / "bus" / "usb" / "devices"
    d = base / port
    d.mkdir(parents=True, exist_ok=True)
    for name, value in (("idVendor", vendor), ("idProduct", product), ("bDeviceClass", "00")):
        (d / name).write_text(value + "\n")
    (d / "manufacturer").write_text("Maker\n")
    (d / "product").write_text(f"Device {product}\n")
    if serial:
        (d / "serial").write_text(serial + "\n")
    iface = base / f"{port}:1.0"
    iface.mkdir(exist_ok=True)
    (iface / "bInterfaceClass").write_text(iface_class + "\n")


def unplug(sys_root: Path, port: str) -> None:
    base = sys_root / "bus" / "usb" / "devices"
    shutil.rmtree(base / port)
    shutil.rmtree(base / f"{port}:1.0")


def uevent(action: str, port: str) -> bytes:
    """A kernel uevent as the kernel sends it: `action@devpath` then NUL-separated KEY=value."""
    devpath = f"/devices/pci0000:00/0000:00:14.0/usb1/{port}"
    fields = [f"ACTION={action}", f"DEVPATH={devpath}", "SUBSYSTEM=usb", "DEVTYPE=usb_device", "SEQNUM=77"]
    return f"{action}@{devpath}\0".encode() + b"\0".join(f.encode() for f in fields) + b"\0"


@pytest.fixture
def terminal(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    (root / "bus" / "usb" / "devices").mkdir(parents=True)
    for spec in (CARD_READER, PIN_PAD, PRINTER):
        device(root, *spec)
    return root


class Uevents:
    """A real NETLINK_KOBJECT_UEVENT socket for the collector, bound to a port id of its own, and a
    sender: the messages travel through the kernel's netlink, unicast, so no other listener on
    the machine (udev, another test's agent) receives them."""

    def __init__(self) -> None:
        self.collector_socket = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        self.collector_socket.bind((0, 0))  # the kernel assigns a unique port id
        self.port_id = self.collector_socket.getsockname()[0]
        self.sender = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        self.sender.bind((0, 0))

    def send(self, message: bytes) -> None:
        self.sender.sendto(message, (self.port_id, 0))

    def close(self) -> None:
        self.sender.close()


@pytest.fixture
def uevents() -> Iterator[Uevents]:
    try:
        u = Uevents()
        u.send(b"probe@/\0ACTION=probe\0SUBSYSTEM=none\0")
        u.collector_socket.recv(4096)
    except PermissionError:
        pytest.skip("sending netlink uevents needs CAP_NET_ADMIN (run as root)")
    yield u
    u.close()


class Sink:
    def __init__(self) -> None:
        self.q: queue.Queue[Event] = queue.Queue()

    def __call__(self, items: Sequence[Any]) -> bool:
        for item in items:
            if isinstance(item, Event):
                self.q.put(item)
        return True

    def take(self, kinds: set[str], timeout: float = 10.0) -> dict[str, Event]:
        """Events of `kinds`, one each, waiting for them."""
        found: dict[str, Event] = {}
        while set(found) != kinds:
            event = self.q.get(timeout=timeout)
            if event.kind in kinds:
                found[event.kind] = event
        return found


REQUIRED = (
    RequiredDevice("card reader", "0b81:0220", "card_reader", "CR0001", "1-1"),
    RequiredDevice("PIN pad", "1234:5678", "pin_pad", "PP0001", "1-2"),
)


def shipped_engine() -> RuleEngine:
    from sentinel.config.loader import load

    config = ROOT / "config" / "sentinel.toml"
    return RuleEngine(load(config).enabled_rules, clock=SYSTEM_CLOCK)


def test_removal_of_a_required_card_reader_and_a_swapped_pin_pad_over_real_uevents(
    tmp_path: Path, terminal: Path, uevents: Uevents
) -> None:
    """Pull the card reader, swap the PIN pad for one with another serial: each is told by a real
    uevent, rescanned at once, and becomes a critical terminal_equipment hazard by shipped rule."""
    collector = UsbCollector(
        UsbConfig(interval=3600, required=REQUIRED),
        state_dir=tmp_path / "state",
        sys_root=terminal,
        uevent_socket=lambda: uevents.collector_socket,
    )
    sink = Sink()
    collector.start(sink)
    try:
        wait_until(lambda: collector.stats.up)  # the first scan learnt what is attached
        unplug(terminal, "1-1")
        uevents.send(uevent("remove", "1-1"))
        pulled = sink.take({"device_removed", "required_missing"})
        unplug(terminal, "1-2")
        uevents.send(uevent("remove", "1-2"))
        device(terminal, "1-2", "1234", "5678", "PP9999", "ff")  # same model, another serial
        uevents.send(uevent("add", "1-2"))
        swapped = sink.take({"identity_changed"})
    finally:
        collector.stop()
    assert pulled["device_removed"].get("port") == "1-1"
    assert pulled["device_removed"].subject == "0b81:0220 CR0001"
    missing = pulled["required_missing"]
    assert (missing.subject, missing.get("role"), missing.get("expected_port")) == (
        "card reader",
        "card_reader",
        "1-1",
    )
    changed = swapped["identity_changed"]
    assert changed.get("role") == "pin_pad" and changed.get("port") == "1-2"
    assert changed.get("found") == "1234:5678 serial PP9999"
    assert changed.get("expected") == "1234:5678 serial PP0001"
    samples = {s.name: s.value for s in collector.current()}
    assert (samples["sentinel_peripherals_required"], samples["sentinel_peripherals_missing"]) == (2, 2)

    engine = shipped_engine()
    findings = [f for e in (missing, changed) for f in engine.on_event(e)]
    assert [(f.rule, f.severity, f.category) for f in findings] == [
        ("peripheral_missing_critical", Severity.CRITICAL, Category.TERMINAL_EQUIPMENT),
        ("peripheral_swapped_critical", Severity.CRITICAL, Category.TERMINAL_EQUIPMENT),
    ]
    assert "card reader" in findings[0].title and "PP9999" in findings[1].title


def test_a_problem_is_reported_once_and_again_after_it_was_fixed(tmp_path: Path, terminal: Path) -> None:
    """Scans while the reader is away say nothing new; back and gone again is a new event."""
    c = UsbCollector(UsbConfig(required=REQUIRED[:1]), state_dir=tmp_path / "state", sys_root=terminal)
    assert c.scan() == []
    unplug(terminal, "1-1")
    assert [e.kind for e in c.scan()] == ["device_removed", "required_missing"]
    assert c.scan() == []
    restarted = UsbCollector(
        UsbConfig(required=REQUIRED[:1]), state_dir=tmp_path / "state", sys_root=terminal
    )
    assert restarted.scan() == []  # the problem was already reported before the restart
    device(terminal, *CARD_READER)
    assert [e.kind for e in restarted.scan()] == []  # back: known device, allowed as before
    unplug(terminal, "1-1")
    assert [e.kind for e in restarted.scan()] == ["device_removed", "required_missing"]


def test_a_required_device_missing_at_the_first_start_is_reported(tmp_path: Path, terminal: Path) -> None:
    """The first start learns what is attached silently, but a required device absent is reported."""
    unplug(terminal, "1-1")
    c = UsbCollector(UsbConfig(required=REQUIRED[:1]), state_dir=tmp_path / "state", sys_root=terminal)
    assert [e.kind for e in c.scan()] == ["required_missing"]


def test_a_non_critical_role_is_major_and_a_lone_removal_raises_nothing(
    tmp_path: Path, terminal: Path
) -> None:
    """A missing receipt printer is major; an unlisted device pulled out is only recorded."""
    printer = RequiredDevice("receipt printer", "0519:0003", "receipt_printer", "", "1-3")
    c = UsbCollector(UsbConfig(required=(printer,)), state_dir=tmp_path / "state", sys_root=terminal)
    c.scan()
    unplug(terminal, "1-3")
    unplug(terminal, "1-2")
    events = c.scan()
    engine = shipped_engine()
    findings = [(f.rule, f.severity) for e in events for f in engine.on_event(e)]
    assert sorted(e.kind for e in events) == ["device_removed", "device_removed", "required_missing"]
    assert findings == [("peripheral_missing", Severity.MAJOR)]


def test_accept_records_the_devices_on_their_ports_with_roles(tmp_path: Path, terminal: Path) -> None:
    """`accept` writes what is present (smart-card class = card reader, printer class = printer);
    a different device on an accepted port is then identity_changed."""
    devices = scan_devices(terminal) or []
    accepted = accept(
        tmp_path,
        [d.present for d in devices],
        actor={"source": "os", "id": "os:alice", "display": "alice"},
        at="2026-12-01T00:00:00Z",
        roles={"1-2": "pin_pad"},
    )
    assert [(d.port, d.role) for d in accepted] == [
        ("1-1", "card_reader"),
        ("1-2", "pin_pad"),
        ("1-3", "receipt_printer"),
    ]
    assert learned(tmp_path) == tuple(accepted)
    saved = json.loads((tmp_path / "peripherals.json").read_text())
    assert (
        saved["accepted_by"]["id"] == "os:alice"
        and oct((tmp_path / "peripherals.json").stat().st_mode)[-3:] == "600"
    )
    device(terminal, "1-3", "dead", "beef", "X", "03")  # a keyboard-class device where the printer was
    problems = judge(learned(tmp_path), [d.present for d in scan_devices(terminal) or []])
    assert [(p.kind, p.required.port) for p in problems] == [("identity_changed", "1-3")]


def test_cli_inventory_accept_and_show(tmp_path: Path, terminal: Path) -> None:
    """`sentinel inventory accept --by` then `sentinel inventory --json` shows every required device ok."""
    (tmp_path / "sentinel.toml").write_text('[agent]\nstate_dir = "state"\nbranch = "0101"\n')
    base = [sys.executable, "-m", "sentinel", "inventory"]
    tail = ["--config", str(tmp_path / "sentinel.toml"), "--sys-root", str(terminal)]
    done = subprocess.run(
        [*base, "accept", "--by", "alice", "--role", "1-2=pin_pad", *tail],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "accepted 3 devices" in done.stdout
    unplug(terminal, "1-1")
    shown = subprocess.run([*base, "--json", *tail], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    inventory = json.loads(shown.stdout)
    states = {r["port"]: r["state"] for r in inventory["peripherals"]["required"]}
    assert states == {"1-1": "required_missing", "1-2": "ok", "1-3": "ok"}
    assert inventory["software"]["manager"] in ("dpkg", None)


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs root and unshare(1)")
def test_the_default_socket_hears_the_kernel_group_in_a_private_network_namespace(
    tmp_path: Path, terminal: Path
) -> None:
    """The collector's own socket (bound to the kernel's uevent group) in a private network
    namespace, where a multicast to group 1 reaches only that namespace: a remove is heard."""
    script = f"""
import json, socket, sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.sources.detectors.test_peripherals import REQUIRED, uevent, unplug
from sentinel.sources.detectors.usb import NETLINK_KOBJECT_UEVENT, UsbCollector, UsbConfig
from pathlib import Path
out = []
c = UsbCollector(UsbConfig(interval=3600, required=REQUIRED), state_dir=Path({str(tmp_path / "state")!r}),
                 sys_root=Path({str(terminal)!r}))
c.start(lambda items: out.extend(items) or True)
deadline = time.monotonic() + 10
while not c.stats.up and time.monotonic() < deadline:
    time.sleep(0.05)
unplug(Path({str(terminal)!r}), "1-1")
s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
s.bind((0, 0))
s.sendto(uevent("remove", "1-1"), (0, 1))
while not any(e.kind == "required_missing" for e in out) and time.monotonic() < deadline:
    time.sleep(0.05)
c.stop()
print(json.dumps(sorted(e.kind for e in out)))
"""
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"no private network namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["device_removed", "required_missing"]
