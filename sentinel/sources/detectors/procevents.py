"""The kernel's process events over the proc connector (NETLINK_CONNECTOR, CN_IDX_PROC).

Every `execve` on the host is announced as a PROC_EVENT_EXEC message carrying the pid, within
microseconds, however short-lived the process (osquery's `process_events` gets the same from
audit, Falco from eBPF). Subscribing needs CAP_NET_ADMIN on kernels before 6.6; from 6.6 any
user may listen, and the subscription may name the event types wanted (`struct proc_input`), so
only execs wake the agent. Older kernels ignore that form silently; `ProcConnector.open` tells by
watching for the exec of a trivial program it starts itself, and falls back to the classic
subscription (every fork, exec and exit; non-execs are skipped here). The same probe proves the
source works end to end before the detector relies on it.

The socket's receive buffer is finite: when the kernel cannot queue an event, `recv` fails with
ENOBUFS. That is reported as `lost` (the detector then rescans /proc), never hidden.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_NONE = 0x0
PROC_EVENT_EXEC = 0x2
RCVBUF = 4 << 20  # 4 MiB: tens of thousands of queued events before the kernel drops any

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_EXEC = struct.Struct("=II")  # process_pid, process_tgid
_U32 = struct.Struct("=I")
_HEADERS = _NLMSGHDR.size + _CN_MSG.size


@dataclass(frozen=True, slots=True)
class Batch:
    """One read: the thread-group ids that exec'd (in order), and whether the kernel lost events."""

    pids: tuple[int, ...]
    lost: bool = False


def request(op: int, event_type: int | None = None, ack: int = 0) -> bytes:
    """A LISTEN/IGNORE message; with `event_type`, the 6.6+ form that filters by event type."""
    payload = _U32.pack(op) if event_type is None else struct.pack("=II", op, event_type)
    body = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, ack, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NLMSG_DONE, 0, 0, 0) + body


def parse(data: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    """(tgids of exec events, acknowledgements as (ack, err)) in one datagram; junk is skipped."""
    execs: list[int] = []
    acks: list[tuple[int, int]] = []
    offset = 0
    while offset + _HEADERS + _EVENT.size <= len(data):
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _HEADERS + _EVENT.size or offset + length > len(data):
            break  # truncated or not a proc event: nothing more in this datagram can be trusted
        cn_ack = _CN_MSG.unpack_from(data, offset + _NLMSGHDR.size)[3]
        event = offset + _HEADERS
        what = _EVENT.unpack_from(data, event)[0]
        union = event + _EVENT.size
        if what == PROC_EVENT_EXEC and union + _EXEC.size <= offset + length:
            pid, tgid = _EXEC.unpack_from(data, union)
            if pid == tgid:  # an exec by a thread is reported for its whole group
                execs.append(tgid)
        elif what == PROC_EVENT_NONE and union + _U32.size <= offset + length:
            acks.append((cn_ack, _U32.unpack_from(data, union)[0]))
        offset += (length + 3) & ~3
    return execs, acks


def spawn_probe() -> int:
    """Start a trivial program (whose exec the subscription must see); return its pid.

    It is reaped by a short-lived thread; a fixed argv, no shell.
    """
    program = shutil.which("true") or "/bin/sh"
    child = subprocess.Popen(  # noqa: S603 - fixed argv
        [program], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    threading.Thread(target=child.wait, name="proc-connector-probe", daemon=True).start()
    return child.pid


def _open_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)


class ProcConnector:
    """A subscribed proc-connector socket (see the module docstring)."""

    def __init__(self, sock: socket.socket, *, filtered: bool) -> None:
        self._sock = sock
        self.filtered = filtered  # True: the kernel sends execs only (6.6+)

    @classmethod
    def open(
        cls,
        *,
        timeout: float = 3.0,
        make_socket: Callable[[], socket.socket] = _open_socket,
        probe: Callable[[], int] = spawn_probe,
    ) -> ProcConnector:
        """Subscribe, and prove it by seeing the exec of a program started by `probe`.

        Raises OSError: EPERM where the kernel wants CAP_NET_ADMIN (at bind, or in its
        acknowledgement), ETIMEDOUT where no exec event arrives at all.
        """
        sock = make_socket()
        try:
            filtered = _subscribe(sock, probe, timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock, filtered=filtered)

    def fileno(self) -> int:
        """For select()."""
        return self._sock.fileno()

    def read(self, limit: int = 256) -> Batch:
        """Everything queued now (up to `limit` datagrams), without blocking."""
        pids: list[int] = []
        lost = False
        for _ in range(limit):
            try:
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                lost = True  # the kernel dropped events: the detector rescans /proc
                continue
            pids += parse(data)[0]
        return Batch(tuple(pids), lost)

    def close(self) -> None:
        """Unsubscribe (best effort) and close."""
        with contextlib.suppress(OSError):
            self._sock.send(request(PROC_CN_MCAST_IGNORE))
        self._sock.close()


def _subscribe(sock: socket.socket, probe: Callable[[], int], timeout: float) -> bool:
    """Subscribe `sock`; True when the kernel filters for execs, False when it sends everything."""
    with contextlib.suppress(OSError):  # the default buffer works too; overflows are reported as lost
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind((0, CN_IDX_PROC))
    sock.send(request(PROC_CN_MCAST_LISTEN, PROC_EVENT_EXEC))
    if _sees(sock, probe(), timeout / 2):
        return True
    # an older kernel ignored the filtered form: subscribe to everything. Acknowledgements go to
    # every listener; ours echoes our `ack` plus one (the kernel's seq is a counter of its own).
    nonce = _U32.unpack(os.urandom(4))[0] & 0x7FFFFFFF
    sock.send(request(PROC_CN_MCAST_LISTEN, None, nonce))
    err = _acknowledged(sock, nonce + 1, timeout / 4)
    if err:
        raise OSError(err, os.strerror(err))
    if _sees(sock, probe(), timeout / 4):
        return False
    raise OSError(errno.ETIMEDOUT, "no exec event arrived from the proc connector")


def _datagrams(sock: socket.socket, timeout: float) -> Iterator[bytes]:
    """What arrives on `sock` until `timeout` passes."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], remaining)[0]:
            return
        try:
            yield sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise


def _sees(sock: socket.socket, pid: int, timeout: float) -> bool:
    return any(pid in parse(data)[0] for data in _datagrams(sock, timeout))


def _acknowledged(sock: socket.socket, ack: int, timeout: float) -> int | None:
    """The error code in the kernel's acknowledgement carrying `ack`; None when none came."""
    for data in _datagrams(sock, timeout):
        for got, err in parse(data)[1]:
            if got == ack:
                return err
    return None
