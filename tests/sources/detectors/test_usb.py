"""The USB detector: a fixture sysfs tree, uevent parsing, and a uevent over a real socket."""

from __future__ import annotations

import queue
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel.sources.detectors.usb import (
    UsbCollector,
    UsbConfig,
    open_uevent_socket,
    parse_uevent,
    scan_devices,
)
from sentinel.testing import wait_until

UEVENT = (
    b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0"
    b"SUBSYSTEM=usb\0DEVTYPE=usb_device\0PRODUCT=781/5567/100\0TYPE=0/0/0\0BUSNUM=001\0DEVNUM=005\0SEQNUM=4242\0"
)


def device(
    sys_root: Path, port: str, vendor: str, product: str, serial: str = "", iface_class: str = "03"
) -> None:
    base = sys_root / "bus" / "usb" / "devices"
    d = base / port
    d.mkdir(parents=True, exist_ok=True)
    (d / "idVendor").write_text(vendor + "\n")
    (d / "idProduct").write_text(product + "\n")
    (d / "bDeviceClass").write_text("00\n")
    (d / "manufacturer").write_text("Maker\n")
    (d / "product").write_text("Thing\n")
    if serial:
        (d / "serial").write_text(serial + "\n")
    iface = base / f"{port}:1.0"
    iface.mkdir(exist_ok=True)
    (iface / "bInterfaceClass").write_text(iface_class + "\n")


def sysfs(tmp: Path) -> Path:
    root = tmp / "sys"
    device(root, "usb1", "1d6b", "0002")  # root hub: ignored
    device(root, "1-1", "046d", "c31c")  # keyboard, present from the start
    return root


def test_scan_reads_ids_serial_and_storage_class(tmp_path: Path) -> None:
    """vendor:product, serial and the mass-storage interface class come from sysfs; hubs are skipped."""
    root = sysfs(tmp_path)
    device(root, "1-2", "0781", "5567", "4C530001231", iface_class="08")
    devices = {d.port: d for d in scan_devices(root) or []}
    assert set(devices) == {"1-1", "1-2"}
    assert devices["1-2"].storage and not devices["1-1"].storage
    assert devices["1-2"].ident == "0781:5567:4C530001231"


def test_first_scan_learns_then_a_stick_is_storage_attached(tmp_path: Path) -> None:
    """What is plugged in at the first start is learnt; a stick plugged in later is reported."""
    root = sysfs(tmp_path)
    c = UsbCollector(UsbConfig(), state_dir=tmp_path / "state", sys_root=root)
    assert c.scan() == []
    device(root, "1-2", "0781", "5567", "4C530001231", iface_class="08")
    (event,) = c.scan()
    assert (event.kind, event.subject) == ("storage_attached", "0781:5567 4C530001231")
    assert event.get("port") == "1-2"
    assert c.scan() == []


def test_plugged_in_while_down_is_reported_at_start(tmp_path: Path) -> None:
    """The present set is persisted: a device that appeared during a restart is reported."""
    root = sysfs(tmp_path)
    UsbCollector(UsbConfig(), state_dir=tmp_path / "state", sys_root=root).scan()
    device(root, "1-3", "1234", "abcd")
    again = UsbCollector(UsbConfig(), state_dir=tmp_path / "state", sys_root=root)
    assert [e.kind for e in again.scan()] == ["device_attached"]


def test_allowlist_by_vendor_product_and_serial(tmp_path: Path) -> None:
    """`vvvv:pppp` allows a model; `vvvv:pppp:SERIAL` one device; others of the model still fire."""
    root = sysfs(tmp_path)
    cfg = UsbConfig(allow=("1234:abcd", "0781:5567:GOOD"))
    c = UsbCollector(cfg, state_dir=tmp_path / "state", sys_root=root)
    c.scan()
    device(root, "1-2", "1234", "abcd")
    device(root, "1-3", "0781", "5567", "GOOD", iface_class="08")
    device(root, "1-4", "0781", "5567", "OTHER", iface_class="08")
    assert [e.subject for e in c.scan()] == ["0781:5567 OTHER"]


def test_no_usb_bus_means_down(tmp_path: Path) -> None:
    """Without /sys/bus/usb the detector reports down and no events."""
    c = UsbCollector(UsbConfig(), state_dir=tmp_path, sys_root=tmp_path / "nothing")
    assert c.scan() == [] and not c.stats.up


def test_parse_kernel_uevent() -> None:
    """The kernel's NUL-separated uevent gives ACTION, SUBSYSTEM, PRODUCT; udev's binary form is ignored."""
    fields = parse_uevent(UEVENT)
    assert (fields["ACTION"], fields["SUBSYSTEM"], fields["PRODUCT"]) == ("add", "usb", "781/5567/100")
    assert parse_uevent(b"libudev\0\xfe\xed") == {}
    assert parse_uevent(b"\xff\xfe garbage") == {}


class Sink:
    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def __call__(self, items: Sequence[Any]) -> bool:
        for item in items:
            self.q.put(item)
        return True


def test_uevent_triggers_an_immediate_scan(tmp_path: Path) -> None:
    """A USB add uevent on the socket makes the collector rescan at once, not after `interval`."""
    root = sysfs(tmp_path)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    c = UsbCollector(
        UsbConfig(interval=3600), state_dir=tmp_path / "state", sys_root=root, uevent_socket=lambda: ours
    )
    sink = Sink()
    c.start(sink)
    try:
        wait_until(lambda: c.stats.up)  # the first scan learnt the baseline
        theirs.send(b"\xff garbage")
        device(root, "1-2", "0781", "5567", "S1", iface_class="08")
        theirs.send(UEVENT)
        event = sink.q.get(timeout=5)
    finally:
        c.stop()
        theirs.close()
    assert event.kind == "storage_attached"
    assert c.stats.malformed_count == 1


def test_real_machine_scan_and_netlink(tmp_path: Path) -> None:
    """On this machine: the scan matches whether /sys/bus/usb exists; the netlink socket opens or is None."""
    c = UsbCollector(UsbConfig(), state_dir=tmp_path)
    c.scan()
    assert c.stats.up == Path("/sys/bus/usb/devices").is_dir()
    sock = open_uevent_socket()
    if sock is not None:
        assert sock.family == socket.AF_NETLINK
        sock.close()
