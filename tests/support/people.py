"""People for tests: OS identities for store-level tests, and real logins for CLI processes.

A process's audit login uid (/proc/self/loginuid) is what the CLI records as the person. A root
process with CAP_AUDIT_CONTROL may write its own (the kernel lets it unless loginuid is made
immutable), and every child inherits it across exec, `setpriv` and `su` — so `as_login()` runs a
command as a session of another login would: a tiny `sh` writes the loginuid, then execs it.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence

import pytest

from sentinel.hazards.identity import Actor, read_loginuid

_SET_LOGINUID = 'echo "$0" > /proc/self/loginuid && exec "$@"'


def who(name: str, display: str | None = None) -> Actor:
    """`os:<name>` as if that login ran the CLI (shown as `display`, default the name)."""
    return Actor("os", f"os:{name}", display or name, uid=1000, loginuid=1000, basis="loginuid")


@functools.cache
def loginuid_settable() -> bool:
    """Whether a child of this process can set its own audit login uid."""
    probe = subprocess.run(["sh", "-c", _SET_LOGINUID, "4242", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


def as_login(uid: int, command: Sequence[str], *, name: str = "") -> tuple[list[str], dict[str, str]]:
    """(argv, env) that run `command` as a session of login `uid` would: with that loginuid, or —
    where this test process cannot set one but is root without one — with SUDO_USER=`name`, as
    sudo would. Skips the test when neither is possible here."""
    env = dict(os.environ)
    env.pop("SUDO_USER", None)
    if loginuid_settable():
        return ["sh", "-c", _SET_LOGINUID, str(uid), *command], env
    if os.getuid() == 0 and read_loginuid() is None and name:
        env["SUDO_USER"] = name
        return list(command), env
    pytest.skip("cannot give a child another login: /proc/self/loginuid is not writable (CAP_AUDIT_CONTROL)")
