"""The outbound detector: unexpected peers and sustained transmit volume, fixtures and real sockets."""

from __future__ import annotations

import socket
from pathlib import Path

from sentinel.core.model import Event
from sentinel.sources.detectors.outbound import OutboundCollector, OutboundConfig
from sentinel.testing import FakeClock
from tests.sources.detectors.test_listeners import proc_tree, row

DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast"
    "|bytes    packets errs drop fifo colls carrier compressed\n"
)


def dev(proc: Path, sent: int) -> None:
    (proc / "net" / "dev").write_text(
        DEV_HEADER
        + f"    lo: 100 1 0 0 0 0 0 0 {sent * 10} 1 0 0 0 0 0 0\n"
        + f"  eth0: 200 2 0 0 0 0 0 0 {sent} 2 0 0 0 0 0 0\n"
    )


def events(items: object) -> list[Event]:
    return [i for i in items if isinstance(i, Event)]  # type: ignore[attr-defined]


def test_connection_to_a_public_address_is_reported_once(tmp_path: Path) -> None:
    """203.0.113.9:4444 is outside the private ranges; private and loopback peers are not reported."""
    proc = proc_tree(
        tmp_path,
        [
            row("0A00000A:C350", "097100CB:115C", "01", 10),  # 10.0.0.10 -> 203.0.113.9:4444
            row("0A00000A:C351", "0200000A:01BB", "01", 11),  # -> 10.0.0.2:443
            row("0100007F:C352", "0100007F:0050", "01", 12),  # loopback
            row("00000000:0016", "00000000:0000", "0A", 13),  # a listener
        ],
        owners={700: ("curl", 10)},
    )
    dev(proc, 0)
    c = OutboundCollector(OutboundConfig(), proc_root=proc, clock=FakeClock())
    (event,) = events(c.collect())
    assert (event.kind, event.subject, event.get("process")) == (
        "connection_unexpected",
        "203.0.113.9:4444",
        "curl",
    )
    assert events(c.collect()) == []


def test_ipv6_peer_and_allowed_port(tmp_path: Path) -> None:
    """An IPv6 peer is reported in brackets; a port in allowed_ports is not reported."""
    proc = proc_tree(
        tmp_path,
        [row("0A00000A:C350", "097100CB:01BB", "01", 10)],
        tcp6=[
            row("00000000000000000000000001000000:C350", "B80D0120000000000000000001000000:0050", "01", 11)
        ],
    )
    dev(proc, 0)
    c = OutboundCollector(OutboundConfig(allowed_ports=(443,)), proc_root=proc, clock=FakeClock())
    assert [e.subject for e in events(c.collect())] == ["[2001:db8::1]:80"]


def test_remember_period_reports_again(tmp_path: Path) -> None:
    """After `remember` the same peer is reported again."""
    proc = proc_tree(tmp_path, [row("0A00000A:C350", "097100CB:115C", "01", 10)])
    dev(proc, 0)
    clock = FakeClock()
    c = OutboundCollector(OutboundConfig(remember=600), proc_root=proc, clock=clock)
    assert len(events(c.collect())) == 1
    clock.advance(601)
    assert len(events(c.collect())) == 1


def test_sustained_transmit_fires_once_per_episode(tmp_path: Path) -> None:
    """3 MB/s on eth0 for 10 minutes is transmit_high once; lo is skipped; a quiet spell re-arms."""
    proc = proc_tree(tmp_path, [])
    clock = FakeClock()
    c = OutboundCollector(OutboundConfig(transmit_for=600), proc_root=proc, clock=clock)
    sent, fired = 0, []
    for minute in range(25):
        dev(proc, sent)
        fired += [(minute, e.subject) for e in events(c.collect())]
        clock.advance(60)
        sent += 0 if 12 <= minute < 14 else 3_000_000 * 60
    assert fired == [(10, "eth0"), (24, "eth0")]


def test_real_connection_to_loopback_is_allowed_by_default(tmp_path: Path) -> None:
    """A real TCP connection on 127.0.0.1 is read from /proc and not reported (loopback is allowed)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            allowed = OutboundCollector(OutboundConfig())
            assert [e for e in events(allowed.collect()) if e.get("port") == port] == []
            strict = OutboundCollector(OutboundConfig(allowed_cidrs=()))
            found = [e for e in events(strict.collect()) if e.get("port") == port]
    assert len(found) == 1 and found[0].get("remote") == "127.0.0.1"
