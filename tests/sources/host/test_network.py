"""The network collector on fixture /sys trees (including an interface that disappears)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from sentinel.core.settings import Duration
from sentinel.sources.host.network import NetworkCollector, NetworkConfig
from sentinel.testing import FakeClock
from tests.sources.conftest import value, values


def collector(root: Path, clock: FakeClock, **config: object) -> NetworkCollector:
    return NetworkCollector(NetworkConfig(**config), sys_root=root / "sys", clock=clock)  # type: ignore[arg-type]


def test_links_up_down_and_unknown_with_carrier(machine: Callable[[str], Path], clock: FakeClock) -> None:
    """eth0 up, wlan0 down, tun0 'unknown' with a carrier counts as up; lo and docker0 skipped."""
    items = list(collector(machine("terminal"), clock).collect())
    up = {dict(k)["interface"]: v for k, v in values(items, "sentinel_network_up").items()}
    assert up == {"eth0": 1, "wlan0": 0, "tun0": 1}


def test_speed_and_counters(machine: Callable[[str], Path], clock: FakeClock) -> None:
    """1000 Mb/s is 125 MB/s; counters come from statistics/; no speed for a link that is down."""
    items = list(collector(machine("terminal"), clock).collect())
    assert value(items, "sentinel_network_speed_bytes", device="eth0", interface="eth0") == 125_000_000
    assert value(items, "sentinel_network_speed_bytes", device="wlan0", interface="wlan0") is None
    assert value(items, "sentinel_network_receive_bytes_total", device="eth0", interface="eth0") == 8000
    assert value(items, "sentinel_network_transmit_drops_total", device="eth0", interface="eth0") == 1000


def test_unknown_speed_is_left_out(machine: Callable[[str], Path], clock: FakeClock) -> None:
    """A virtual NIC reports speed -1: no speed series."""
    items = list(collector(machine("no_sensors"), clock).collect())
    assert value(items, "sentinel_network_up", device="eth0", interface="eth0") == 1
    assert value(items, "sentinel_network_speed_bytes", device="eth0", interface="eth0") is None


def test_vanished_interface_is_reported_down_then_forgotten(
    machine: Callable[[str], Path], clock: FakeClock
) -> None:
    """eth0 unplugged: up=0 with no counters until forget_vanished_after, then no series."""
    root = machine("terminal")
    net = collector(root, clock, forget_vanished_after=Duration(3600))
    list(net.collect())
    shutil.rmtree(root / "sys" / "class" / "net" / "eth0")
    clock.advance(60)
    items = list(net.collect())
    assert value(items, "sentinel_network_up", device="eth0", interface="eth0") == 0
    assert value(items, "sentinel_network_receive_bytes_total", device="eth0", interface="eth0") is None
    clock.advance(3600)
    assert value(list(net.collect()), "sentinel_network_up", device="eth0", interface="eth0") is None


def test_interface_vanishing_mid_read_is_not_an_error(
    machine: Callable[[str], Path], clock: FakeClock
) -> None:
    """Statistics files gone between listing and reading: partial readings, nothing counted."""
    root = machine("terminal")
    shutil.rmtree(root / "sys" / "class" / "net" / "wlan0" / "statistics")
    items = list(collector(root, clock).collect())
    assert value(items, "sentinel_network_up", device="wlan0", interface="wlan0") == 0
    assert value(items, "sentinel_device_read_errors_total", collector="network") == 0


def test_interface_that_comes_back_is_up_again(machine: Callable[[str], Path], clock: FakeClock) -> None:
    """Re-plugged: the series returns with its counters."""
    root = machine("terminal")
    net = collector(root, clock)
    eth0 = root / "sys" / "class" / "net" / "eth0"
    list(net.collect())
    shutil.move(eth0, root / "eth0.away")
    list(net.collect())
    shutil.move(root / "eth0.away", eth0)
    items = list(net.collect())
    assert value(items, "sentinel_network_up", device="eth0", interface="eth0") == 1
    assert value(items, "sentinel_network_receive_bytes_total", device="eth0", interface="eth0") == 8000


def test_live_machine() -> None:
    """On this machine: every interface in /sys/class/net that is not skipped is reported."""
    net = NetworkCollector(NetworkConfig())
    items = list(net.collect())
    listed = {p.name for p in Path("/sys/class/net").iterdir()} - {"lo"}
    reported = {dict(k)["interface"] for k in values(items, "sentinel_network_up")}
    assert reported == {n for n in listed if not any(p.fullmatch(n) for p in net._skip)}
    assert value(items, "sentinel_device_read_errors_total", collector="network") == 0
