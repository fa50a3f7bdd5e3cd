"""The proc connector: message parsing, subscription on new and old kernels (a fake kernel on a
socketpair), losses, and the real kernel's connector where this machine has one."""

from __future__ import annotations

import errno
import socket
import struct
import subprocess

import pytest

from sentinel.sources.detectors import procevents
from sentinel.sources.detectors.procevents import PROC_EVENT_EXEC, ProcConnector, parse

NL = struct.Struct("=IHHII")
CN = struct.Struct("=IIIIHH")
EV = struct.Struct("=IIQ")


def message(what: int, payload: bytes, ack: int = 0) -> bytes:
    body = CN.pack(1, 1, 7, ack, EV.size + len(payload), 0) + EV.pack(what, 0, 123) + payload
    return NL.pack(NL.size + len(body), 3, 0, 0, 0) + body


def exec_event(pid: int, tgid: int | None = None) -> bytes:
    return message(PROC_EVENT_EXEC, struct.pack("=II", pid, pid if tgid is None else tgid))


def ack_event(ack: int, err: int = 0) -> bytes:
    return message(0, struct.pack("=I", err), ack=ack)


class FakeKernel:
    """A proc-connector socket whose 'kernel' answers like a real one of the given vintage."""

    def __init__(self, *, filters: bool, needs_cap: bool = False, refuse_bind: bool = False) -> None:
        self.filters, self.needs_cap, self.refuse_bind = filters, needs_cap, refuse_bind
        self.ours, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.subscribed = False
        self.next_pid = 4000

    # the socket API ProcConnector uses
    def setsockopt(self, *_args: object) -> None:
        pass

    def bind(self, _address: object) -> None:
        if self.refuse_bind:
            raise PermissionError(errno.EPERM, "Operation not permitted")

    def send(self, data: bytes) -> int:
        length = CN.unpack_from(data, NL.size)[4]
        ack = CN.unpack_from(data, NL.size)[3]
        op = struct.unpack_from("=I", data, NL.size + CN.size)[0]
        if length == 8 and not self.filters:
            return len(data)  # an old kernel ignores the filtered form: no event, no ack
        if op == procevents.PROC_CN_MCAST_LISTEN:
            err = errno.EPERM if self.needs_cap else 0
            self.subscribed = not err
            if length == 4:
                self.kernel.send(ack_event(ack + 1, err))
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        return self.ours.recv(size, flags)

    def fileno(self) -> int:
        return self.ours.fileno()

    def close(self) -> None:
        self.ours.close()
        self.kernel.close()

    def probe(self) -> int:
        """The trivial program the connector starts: the kernel reports its exec if subscribed."""
        self.next_pid += 1
        if self.subscribed or (self.filters and not self.needs_cap):
            self.kernel.send(exec_event(self.next_pid))
        return self.next_pid


def test_parse_reads_execs_and_acks_and_skips_junk() -> None:
    """Execs of thread groups are kept, a thread's exec is not doubled, junk ends the datagram."""
    data = exec_event(10) + exec_event(11, tgid=10) + ack_event(5, 0) + exec_event(12) + b"\x01\x02"
    assert parse(data) == ([10, 12], [(5, 0)])
    assert parse(b"") == ([], [])
    assert parse(NL.pack(9999, 3, 0, 0, 0) + b"\0" * 60) == ([], [])  # claims more than it holds


def test_a_6_6_kernel_sends_execs_only() -> None:
    """The filtered subscription is seen working (its probe exec arrives): exec-only mode."""
    kernel = FakeKernel(filters=True)
    conn = ProcConnector.open(make_socket=lambda: kernel, probe=kernel.probe, timeout=2)
    assert conn.filtered
    kernel.kernel.send(exec_event(77))
    assert conn.read().pids == (77,)
    conn.close()


def test_an_older_kernel_gets_the_classic_subscription() -> None:
    """No answer to the filtered form: subscribe to everything, acknowledged and proven."""
    kernel = FakeKernel(filters=False)
    conn = ProcConnector.open(make_socket=lambda: kernel, probe=kernel.probe, timeout=2)
    assert not conn.filtered
    conn.close()


@pytest.mark.parametrize("refuse_bind", [True, False])
def test_a_kernel_that_wants_cap_net_admin_refuses_with_eperm(refuse_bind: bool) -> None:
    """EPERM at bind or in the acknowledgement comes out as PermissionError (the reason shown)."""
    kernel = FakeKernel(filters=False, needs_cap=True, refuse_bind=refuse_bind)
    with pytest.raises(PermissionError):
        ProcConnector.open(make_socket=lambda: kernel, probe=kernel.probe, timeout=1)


def test_a_connector_that_never_reports_times_out() -> None:
    """Subscribed but silent (no exec ever arrives): ETIMEDOUT, not a connector that sees nothing."""
    kernel = FakeKernel(filters=False)
    kernel.probe = lambda: 1  # nothing is ever reported
    with pytest.raises(OSError) as raised:
        ProcConnector.open(make_socket=lambda: kernel, probe=kernel.probe, timeout=1)
    assert raised.value.errno == errno.ETIMEDOUT


def test_a_full_receive_buffer_is_reported_as_lost() -> None:
    """ENOBUFS from recv: the batch says events were lost (the detector rescans)."""

    class Overflowing(socket.socket):
        calls = 0

        def recv(self, size: int, flags: int = 0) -> bytes:
            Overflowing.calls += 1
            if Overflowing.calls == 1:
                raise OSError(errno.ENOBUFS, "No buffer space available")
            return super().recv(size, flags)

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock = Overflowing(fileno=ours.detach())
    theirs.send(exec_event(5))
    batch = ProcConnector(sock, filtered=True).read()
    assert batch.lost and batch.pids == (5,)
    sock.close()
    theirs.close()


def test_the_real_kernel_reports_a_short_exec() -> None:
    """On this machine's kernel: subscribe and see a process that lives a few milliseconds."""
    try:
        conn = ProcConnector.open()
    except OSError as exc:
        pytest.skip(f"this kernel's proc connector refuses this process: {exc}")
    try:
        child = subprocess.Popen(["true"])
        child.wait()
        seen: set[int] = set()
        for _ in range(200):
            seen |= set(conn.read().pids)
            if child.pid in seen:
                break
            subprocess.run(["sleep", "0.01"], check=True)
        assert child.pid in seen
    finally:
        conn.close()
