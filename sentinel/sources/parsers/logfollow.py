"""Follow a growing log file across rotation, truncation and agent restarts, losing no line.

`FileFollower.read()` returns the complete lines written since the last call. Its position
(device, inode, offset of the end of the last complete line) is what the caller persists; given
back at the next start it resumes exactly there:

- same inode, file at least as long: continue at the offset (nothing read twice);
- same inode, file shorter: it was truncated (copytruncate) — start again at 0;
- another inode: the file was rotated while the agent was down — finish the rotated file
  (found next to it as `NAME.1` or `NAME-*` by its inode) from the saved offset, then read the
  new one from the start.

While running, a rename-rotation is noticed when the path names another inode: the old file is
drained to its end (the writer may still append to it until it reopens), then the new file is
read from 0. A line that has no newline yet is left for the next call; one longer than
`max_line` is skipped and counted (`skipped`). Reads are bounded per call so a huge backlog is
consumed in steps instead of all in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import structlog

log = structlog.get_logger("sentinel.logfollow")

READ_CHUNK = 1 << 20
TAIL = 32


class FileFollower:
    """Reads new complete lines of one log file; survives rotation, truncation and restarts."""

    def __init__(
        self,
        path: Path,
        *,
        saved: dict[str, Any] | None = None,
        max_line: int = 65536,
        start_at_end: bool = True,
    ) -> None:
        self.path = path
        self.max_line = max_line
        self.skipped = 0  # over-long lines dropped (the caller counts them as malformed)
        self._saved = saved
        self._start_at_end = start_at_end and saved is None
        self._fh: BinaryIO | None = None
        self._ino = 0
        self._dev = 0
        self._offset = 0
        self._tail_hex = ""  # the bytes just before the offset, to notice truncate-and-regrow
        self._discarding = False  # inside an over-long line: drop bytes up to its newline
        self._pending: list[bytes] = []  # lines recovered from a rotated file at open
        if not self._open():  # open now, so "the end" is where it was when following began
            self._start_at_end = False  # absent at start: whatever appears later is all new

    @property
    def is_open(self) -> bool:
        """Whether a file is being followed right now."""
        return self._fh is not None

    def position(self) -> dict[str, Any] | None:
        """What to persist: the end of the last complete line handed out."""
        if self._fh is None:
            return self._saved
        return {"dev": self._dev, "inode": self._ino, "offset": self._offset, "tail": self._tail().hex()}

    def close(self) -> None:
        """Close the file (the position stays valid)."""
        if self._fh is not None:
            self._saved = self.position()
            self._fh.close()
            self._fh = None

    def rewind(self, position: dict[str, Any] | None) -> None:
        """Go back to `position` (an earlier `position()`): what was read after it is read again.

        For lines that could not be handed on (the agent was stopping with a full queue): the
        position saved next is this one, so the collector that follows reads them again."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._saved, self._pending, self._discarding = position, [], False
        self._start_at_end = False

    def read(self, budget: int = READ_CHUNK) -> list[bytes]:
        """Complete new lines (without the newline), at most about `budget` bytes of them."""
        if self._fh is None and not self._open():
            return []
        lines, self._pending = self._pending, []
        lines += self._read_current(budget)
        if not lines or self._at_end():
            lines += self._follow_rotation(budget)
        return lines

    # -- opening --------------------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except OSError:
            return False
        st = os.fstat(fh.fileno())
        saved = self._saved or {}
        same = saved.get("inode") == st.st_ino and saved.get("dev") == st.st_dev
        if same:
            offset = int(saved.get("offset", 0))
            if offset > st.st_size or not _tail_matches(fh, offset, str(saved.get("tail", ""))):
                log.info("log_truncated", path=str(self.path), offset=offset, size=st.st_size)
                offset = 0
        elif saved:
            self._pending = self._finish_rotated(saved)
            offset = 0
        else:
            offset = st.st_size if self._start_at_end else 0
        self._start_at_end = False  # a file that appears later is read from its start
        self._fh, self._ino, self._dev, self._offset = fh, st.st_ino, st.st_dev, offset
        self._tail_hex = self._tail().hex()
        return True

    def _finish_rotated(self, saved: dict[str, Any]) -> list[bytes]:
        """The unread rest of the file we followed before a restart, if it is still next door."""
        for candidate in self._rotated_candidates():
            try:
                st = candidate.stat()
            except OSError:
                continue
            if st.st_ino == saved.get("inode") and st.st_dev == saved.get("dev"):
                offset = int(saved.get("offset", 0))
                log.info("log_rotated_while_down", path=str(self.path), rotated=str(candidate))
                try:
                    with open(candidate, "rb") as fh:
                        fh.seek(offset if offset <= st.st_size else 0)
                        return list(self._split(fh.read(), final=True))
                except OSError as exc:
                    log.warning("log_rotated_unreadable", path=str(candidate), error=str(exc))
                    return []
        log.warning("log_rotated_not_found", path=str(self.path), inode=saved.get("inode"))
        return []

    def _rotated_candidates(self) -> list[Path]:
        name = self.path.name
        siblings = sorted(self.path.parent.glob(f"{name}-*"), reverse=True)
        plain = [p for p in siblings if not p.name.endswith((".gz", ".xz", ".zst", ".bz2"))]
        return [self.path.with_name(f"{name}.1"), *plain]

    # -- reading --------------------------------------------------------------------------------

    def _read_current(self, budget: int) -> list[bytes]:
        assert self._fh is not None
        try:
            size = os.fstat(self._fh.fileno()).st_size
        except OSError:
            return []
        if size < self._offset or not _tail_matches(self._fh, self._offset, self._tail_hex):
            # copytruncate: emptied under us. A size check alone misses a file that was truncated
            # and then grew past the old offset between two polls; the bytes before the offset
            # (the end of the last line read) no longer being there catches that too.
            log.info("log_truncated", path=str(self.path), offset=self._offset, size=size)
            self._offset, self._discarding, self._tail_hex = 0, False, ""
        if size == self._offset:
            return []
        self._fh.seek(self._offset)
        data = self._fh.read(budget)
        return list(self._split(data, final=False))

    def _split(self, data: bytes, *, final: bool) -> Iterator[bytes]:
        """Yield complete lines of `data` and advance the offset past them (not for `final`)."""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            line = data[start:end]
            start = end + 1
            if self._discarding:
                self._discarding = False  # the newline ending an over-long line
                continue
            if len(line) > self.max_line:
                self.skipped += 1
                continue
            yield line
        rest = data[start:]
        if final:
            if rest and len(rest) <= self.max_line:
                yield rest  # the writer will never finish a rotated file's last line
            elif rest:
                self.skipped += 1
            return
        if len(rest) > self.max_line:  # no newline within max_line bytes: drop up to the next one
            if not self._discarding:
                self.skipped += 1
            self._discarding = True
            start = len(data)
        self._offset += start
        if start:
            self._tail_hex = data[max(0, start - TAIL) : start].hex()

    def _tail(self) -> bytes:
        """Up to TAIL bytes ending at the offset, as the file holds them now."""
        if self._fh is None or self._offset == 0:
            return b""
        start = max(0, self._offset - TAIL)
        try:
            return os.pread(self._fh.fileno(), self._offset - start, start)
        except OSError:
            return b""

    def _at_end(self) -> bool:
        assert self._fh is not None
        try:
            return os.fstat(self._fh.fileno()).st_size <= self._offset
        except OSError:
            return True

    def _follow_rotation(self, budget: int) -> list[bytes]:
        try:
            st = self.path.stat()
        except OSError:
            return []  # renamed away and not re-created yet: keep draining the old file
        if st.st_ino == self._ino and st.st_dev == self._dev:
            return []
        assert self._fh is not None
        # Only reached with no complete line left unread: what remains is the writer's last
        # words to the old file (appended before it reopened), at most one unfinished line.
        self._fh.seek(self._offset)
        rest = self._fh.read()
        lines = list(self._split(rest, final=True)) if rest else []
        log.info("log_rotated", path=str(self.path))
        self._fh.close()
        self._fh, self._saved, self._discarding = None, None, False
        self._start_at_end = False
        if self._open():
            lines += self._read_current(budget)
        return lines


def _tail_matches(fh: BinaryIO, offset: int, tail_hex: str) -> bool:
    """Whether the bytes before `offset` are still those recorded (True when none were)."""
    if not tail_hex or offset == 0:
        return True
    try:
        expected = bytes.fromhex(tail_hex)
    except ValueError:
        return True  # an old or damaged state file: fall back to the size check
    start = offset - len(expected)
    try:
        return start >= 0 and os.pread(fh.fileno(), len(expected), start) == expected
    except OSError:
        return True
