"""Once per connection: an sshd connection's repeated facts, and sources by process."""

from __future__ import annotations

import time

from sentinel.sources.parsers.authconn import SIZE, Connections
from sentinel.sources.parsers.authparse import classify
from sentinel.sources.parsers.logrecord import LogRecord

NOW = time.mktime((2024, 3, 12, 12, 0, 0, 0, 0, -1))


def sort(
    c: Connections, program: str, pid: int, message: str, at: float = NOW
) -> tuple[list[str], list[str]]:
    record = LogRecord(at, "teller07", program, pid, message)
    result = c.sort(record, classify(record))
    return [f"{e.kind}:{e.fields.get('source')}" for e in result.emit], [e.kind for e in result.repeats]


def test_a_connections_invalid_user_lines_are_one_fact() -> None:
    """Invalid user, input_userauth_request, check pass, Connection closed: emitted once."""
    c = Connections()
    assert sort(c, "sshd", 7, "Invalid user oracle from 203.0.113.9 port 5000") == (
        ["invalid_user:203.0.113.9"],
        [],
    )
    assert sort(c, "sshd", 7, "input_userauth_request: invalid user oracle [preauth]") == (
        [],
        ["invalid_user"],
    )
    assert sort(c, "sshd", 7, "pam_unix(sshd:auth): check pass; user unknown") == ([], ["invalid_user"])
    closed = "Connection closed by invalid user oracle 203.0.113.9 port 5000 [preauth]"
    assert sort(c, "sshd", 7, closed) == ([], ["invalid_user"])


def test_openssh_10_splits_a_connection_over_two_pids() -> None:
    """sshd-auth states it, sshd-session closes it: the endpoint ties them."""
    c = Connections()
    assert sort(c, "sshd-auth", 8, "Invalid user oracle from 203.0.113.9 port 5001")[0]
    closed = "Connection closed by invalid user oracle 203.0.113.9 port 5001 [preauth]"
    assert sort(c, "sshd-session", 9, closed) == ([], ["invalid_user"])


def test_one_process_naming_other_users_is_not_one_connection() -> None:
    """Different users (or sources) from one pid are different facts."""
    c = Connections()
    got = [sort(c, "sshd", 1, f"Invalid user u{i} from 192.0.2.{i} port 1")[0] for i in range(3)]
    assert got == [["invalid_user:192.0.2.0"], ["invalid_user:192.0.2.1"], ["invalid_user:192.0.2.2"]]


def test_a_reused_pid_is_a_new_connection() -> None:
    """Ten minutes later the same pid and user is another connection."""
    c = Connections()
    assert sort(c, "sshd", 7, "Invalid user oracle from 203.0.113.9")[0]
    assert sort(c, "sshd", 7, "Invalid user oracle from 203.0.113.9", at=NOW + 3600)[0]


def test_a_line_without_a_source_takes_its_processs() -> None:
    """`Disconnecting: Too many authentication failures for root` has the source its pid logged."""
    c = Connections()
    sort(c, "sshd", 11, "Failed password for root from 198.51.100.4 port 7 ssh2")
    emitted, _ = sort(c, "sshd", 11, "Disconnecting: Too many authentication failures for root [preauth]")
    assert emitted == ["max_auth_attempts:198.51.100.4"]


def test_memory_is_bounded() -> None:
    """However many connections, at most SIZE are remembered."""
    c = Connections()
    for pid in range(SIZE + 10):
        sort(c, "sshd", pid, f"Invalid user u from 192.0.2.1 port {pid}")
    assert len(c._facts) <= SIZE and len(c._sources) <= SIZE
