"""The state directory's lock: one agent per state_dir, and who holds it (for `sentinel status`)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sentinel.core.files import open_private, prepare_private_dir

LOCK_FILE = "agent.lock"


class AlreadyRunning(Exception):
    """Another agent holds the state directory's lock."""


class StateDirLock:
    """An exclusive flock on `state_dir/agent.lock` holding the owner's pid."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder."""
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another agent (pid {holder}) is already running on state_dir {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content is stale by design)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder_pid(state_dir: Path) -> int | None:
    """The pid of the running agent on `state_dir`, or None if nobody holds the lock."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def prepare_state_dir(path: Path) -> None:
    """Create the state directory 0700 (everything the agent writes lives in it); refuse one
    that others can write or another account owns (UnsafePathError, one line)."""
    prepare_private_dir(path)
