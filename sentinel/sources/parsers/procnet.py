"""Sockets from /proc/net/{tcp,tcp6,udp,udp6} and the processes that own them (/proc/<pid>/fd).

What osquery's `listening_ports` and `process_open_sockets` read, without psutil's need to walk
every process on every call: the socket tables are parsed each poll (cheap), and only sockets
not seen before are traced to their process, by scanning `fd` links for `socket:[inode]`.
Without root, other users' fds are unreadable: the owner is then unknown (`?`), never a crash.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TCP_ESTABLISHED = 0x01
TCP_LISTEN = 0x0A
UDP_UNCONNECTED = 0x07
PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")
UNKNOWN = "?"


@dataclass(frozen=True, slots=True)
class Socket:
    """One row of a /proc/net socket table."""

    proto: str
    local: str
    local_port: int
    remote: str
    remote_port: int
    state: int
    uid: int
    inode: int

    @property
    def listening(self) -> bool:
        """A TCP socket in LISTEN, or a bound UDP socket with no peer."""
        if self.proto.startswith("tcp"):
            return self.state == TCP_LISTEN
        return self.state == UDP_UNCONNECTED and self.remote_port == 0

    @property
    def established(self) -> bool:
        """A TCP connection with a peer (UDP 'connections' are not tracked)."""
        return self.proto.startswith("tcp") and self.state == TCP_ESTABLISHED


@dataclass(frozen=True, slots=True)
class Owner:
    """The process holding a socket."""

    pid: int
    name: str
    exe: str


def decode_address(text: str) -> tuple[str, int]:
    """`0100007F:1F90` -> ("127.0.0.1", 8080); IPv6 words are in host (little-endian) order.

    IPv4-mapped IPv6 addresses come back as IPv4, so allowlists need one spelling.
    """
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1])), int(port_hex, 16)
    if len(raw) != 16:
        raise ValueError(f"bad address length {len(raw)}")
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    v6 = ipaddress.IPv6Address(packed)
    return (str(v6.ipv4_mapped) if v6.ipv4_mapped else str(v6)), int(port_hex, 16)


def read_sockets(
    proc_root: Path, protocols: Iterable[str] = PROTOCOLS, *, malformed: Callable[[], None] = lambda: None
) -> list[Socket]:
    """Every row of the given tables; an unreadable table is skipped, a bad row counted."""
    out: list[Socket] = []
    for proto in protocols:
        try:
            text = (proc_root / "net" / proto).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # no IPv6 in this kernel, or /proc not mounted: nothing to report
        for line in text.splitlines()[1:]:
            parts = line.split()
            try:
                local, lport = decode_address(parts[1])
                remote, rport = decode_address(parts[2])
                out.append(
                    Socket(
                        proto, local, lport, remote, rport, int(parts[3], 16), int(parts[7]), int(parts[9])
                    )
                )
            except (IndexError, ValueError):
                malformed()
    return out


def socket_owners(proc_root: Path, inodes: set[int]) -> dict[int, Owner]:
    """Which process holds each socket inode (those not found are absent from the result)."""
    wanted = {f"socket:[{i}]": i for i in inodes if i}
    found: dict[int, Owner] = {}
    if not wanted:
        return found
    try:
        pids = [e.name for e in os.scandir(proc_root) if e.name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = proc_root / pid / "fd"
        try:
            fds = [e.name for e in os.scandir(fd_dir)]
        except OSError:
            continue  # gone, or another user's process without root
        for fd in fds:
            try:
                target = str((fd_dir / fd).readlink())
            except OSError:
                continue
            inode = wanted.get(target)
            if inode is not None and inode not in found:
                found[inode] = process_identity(proc_root, int(pid))
        if len(found) == len(wanted):
            break
    return found


def process_identity(proc_root: Path, pid: int) -> Owner:
    """A process's short name and executable path (`?` for what cannot be read)."""
    base = proc_root / str(pid)
    try:
        name = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        name = UNKNOWN
    try:
        exe = str((base / "exe").readlink())
    except OSError:
        exe = UNKNOWN
    return Owner(pid, name or UNKNOWN, exe)
