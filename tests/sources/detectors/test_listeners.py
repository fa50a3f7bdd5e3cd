"""The listeners detector: fixture /proc trees and real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sentinel.core.model import Event
from sentinel.sources.detectors.listeners import ListenersCollector, ListenersConfig
from sentinel.sources.parsers.procnet import decode_address, read_sockets

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def row(local: str, remote: str, state: str, inode: int, uid: int = 0) -> str:
    timers = "00000000:00000000 00:00000000 00000000"
    return f"   0: {local} {remote} {state} {timers} {uid:5d} 0 {inode} 1 0 100 0 0 10 0\n"


def proc_tree(
    root: Path, tcp: list[str], tcp6: list[str] = (), owners: dict[int, tuple[str, int]] | None = None
) -> Path:
    (root / "net").mkdir(parents=True, exist_ok=True)
    (root / "net" / "tcp").write_text(HEADER + "".join(tcp))
    (root / "net" / "tcp6").write_text(HEADER + "".join(tcp6))
    (root / "net" / "udp").write_text(HEADER)
    (root / "net" / "udp6").write_text(HEADER)
    for pid, (name, inode) in (owners or {}).items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True, exist_ok=True)
        for link in fd.iterdir():
            link.unlink()
        os.symlink(f"socket:[{inode}]", fd / "3")
        (root / str(pid) / "comm").write_text(name + "\n")
    return root


def events(items: object) -> list[Event]:
    return [i for i in items if isinstance(i, Event)]  # type: ignore[attr-defined]


def test_decode_ipv4_and_ipv6_addresses() -> None:
    """Little-endian words: 0100007F is 127.0.0.1; ::ffff:10.0.0.1 maps back to IPv4."""
    assert decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert decode_address("00000000000000000000000001000000:0016") == ("::1", 22)
    assert decode_address("0000000000000000FFFF00000100000A:01BB") == ("10.0.0.1", 443)
    assert decode_address("B80D0120000000000000000001000000:0050") == ("2001:db8::1", 80)


def test_garbage_rows_are_counted(tmp_path: Path) -> None:
    """A row that cannot be decoded is counted as malformed and skipped."""
    proc = proc_tree(
        tmp_path / "proc", [row("0100007F:0016", "00000000:0000", "0A", 10), "   1: zz:yy garbage\n"]
    )
    bad: list[int] = []
    sockets = read_sockets(proc, ("tcp",), malformed=lambda: bad.append(1))
    assert len(sockets) == 1 and bad == [1]


def test_first_run_learns_then_a_new_listener_is_reported_once(tmp_path: Path) -> None:
    """The baseline is learnt silently; a new (port, process) raises listener_new once."""
    proc = proc_tree(
        tmp_path / "proc", [row("00000000:0016", "00000000:0000", "0A", 10)], owners={100: ("sshd", 10)}
    )
    c = ListenersCollector(ListenersConfig(), state_dir=tmp_path / "state", proc_root=proc)
    assert events(c.collect()) == []
    proc_tree(
        proc,
        [row("00000000:0016", "00000000:0000", "0A", 10), row("0100007F:115C", "00000000:0000", "0A", 20)],
        owners={100: ("sshd", 10), 200: ("nc", 20)},
    )
    (new,) = events(c.collect())
    assert new.subject == "tcp 127.0.0.1:4444 (nc)"
    assert (new.get("port"), new.get("process"), new.get("pid")) == (4444, "nc", 200)
    assert events(c.collect()) == []


def test_baseline_survives_a_restart(tmp_path: Path) -> None:
    """A restarted detector does not report the listeners it already knew."""
    proc = proc_tree(
        tmp_path / "proc", [row("00000000:0016", "00000000:0000", "0A", 10)], owners={100: ("sshd", 10)}
    )
    ListenersCollector(ListenersConfig(), state_dir=tmp_path / "state", proc_root=proc).collect()
    again = ListenersCollector(ListenersConfig(), state_dir=tmp_path / "state", proc_root=proc)
    assert events(again.collect()) == []


def test_same_port_by_another_program_is_new(tmp_path: Path) -> None:
    """Port 22 served by something other than sshd is a new listener."""
    proc = proc_tree(
        tmp_path / "proc", [row("00000000:0016", "00000000:0000", "0A", 10)], owners={100: ("sshd", 10)}
    )
    c = ListenersCollector(ListenersConfig(), state_dir=tmp_path / "state", proc_root=proc)
    c.collect()
    proc_tree(proc, [row("00000000:0016", "00000000:0000", "0A", 11)], owners={100: ("python3", 11)})
    assert [e.get("process") for e in events(c.collect())] == ["python3"]


def test_allowlists_and_established_sockets_are_ignored(tmp_path: Path) -> None:
    """allow_ports and allow_processes are never reported; established sockets are not listeners."""
    proc = proc_tree(tmp_path / "proc", [])
    cfg = ListenersConfig(allow_ports=(631,), allow_processes=("chronyd",))
    c = ListenersCollector(cfg, state_dir=tmp_path / "state", proc_root=proc)
    c.collect()
    proc_tree(
        proc,
        [
            row("00000000:0277", "00000000:0000", "0A", 30),
            row("00000000:0050", "00000000:0000", "0A", 31),
            row("0100007F:9000", "0100007F:0050", "01", 32),
        ],
        owners={300: ("cupsd", 30), 301: ("chronyd", 31), 302: ("curl", 32)},
    )
    assert events(c.collect()) == []


def test_real_socket_on_loopback_is_seen(tmp_path: Path) -> None:
    """A socket this test opens on 127.0.0.1 appears as listener_new with this process as owner."""
    c = ListenersCollector(ListenersConfig(), state_dir=tmp_path / "state")
    c.collect()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        found = [e for e in events(c.collect()) if e.get("port") == port]
    assert len(found) == 1
    assert found[0].get("address") == "127.0.0.1"
    assert found[0].get("pid") == os.getpid()
    samples = {s.name: s.value for s in c.stats.samples() if s.name == "sentinel_detector_up"}
    assert samples["sentinel_detector_up"] == 1
