"""The one place Sentinel writes files: private (0600) and never half-written.

Every file the agent or the CLI writes goes through these helpers, so that how a file is written
(temporary name, fsync, rename, directory fsync; later symlink safety) is decided once:

- `write_json_atomic` / `write_text_atomic`: a whole small file replaced in one rename.
- `atomic_writer`: the same for a file written in pieces (the signed baseline).
- `append_durably`: JSON lines appended and fsynced (the ticket file sink, the hazard archive).
- `open_private`: a 0600 file descriptor for files kept open (the state lock, a new database).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

PRIVATE = 0o600


def open_private(path: Path, flags: int) -> int:
    """`os.open` with mode 0600 and O_CLOEXEC (the caller closes the descriptor)."""
    return os.open(path, flags | os.O_CLOEXEC, PRIVATE)


@contextlib.contextmanager
def atomic_writer(path: Path, *, sync_dir: bool = False) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` when the block ends (fsynced first); on error the
    temporary file is removed and `path` is untouched. `sync_dir` also fsyncs the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, fsync it and rename it over `path` (never half-written)."""
    text = json.dumps(data, indent=1, sort_keys=True, default=str)
    with atomic_writer(path) as fh:
        fh.write(text.encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) in one rename."""
    with atomic_writer(path) as fh:
        fh.write(text.encode("utf-8"))


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` (0600) holding `data`, fsynced with its directory; False if it exists."""
    try:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return True


def append_durably(path: Path, data: bytes) -> None:
    """Append `data` to `path` (created 0600) and fsync before returning."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a creation in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
