"""A real second account for the symlink-attack tests (created with useradd, removed after)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Account:
    """An unprivileged system account that exists for one test."""

    name: str
    uid: int
    gid: int

    @property
    def owner(self) -> tuple[int, int]:
        """(uid, gid), as `core.files` takes owners."""
        return self.uid, self.gid

    def run(self, *cmd: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command as this account (no supplementary groups)."""
        return subprocess.run(
            cmd, user=self.uid, group=self.gid, extra_groups=[], check=check, timeout=30, **kwargs
        )

    def call(self, fn: Callable[[], object]) -> int:
        """Run `fn` in a forked child that has become this account; its exit code (0: no exception)."""
        pid = os.fork()
        if pid == 0:  # the child: drop to the account, run, report only through the exit code
            code = 1
            try:
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
                fn()
                code = 0
            except BaseException:
                code = 3
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def make_account(in_ci: bool) -> Iterator[Account]:
    """Create a uniquely named system account; remove it (and its group) afterwards."""
    if os.geteuid() != 0:
        if in_ci:
            pytest.fail("the symlink-attack tests need root to create a second account")
        pytest.skip("needs root to create a second account (run `make test` as root)")
    name = f"sent-t{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        import pwd

        entry = pwd.getpwnam(name)
        yield Account(name, entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)
