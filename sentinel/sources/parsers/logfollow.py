"""Follow a growing log file across rotation, truncation and agent restarts, losing no line.

`FileFollower.read()` returns the complete lines written since the last call. Its position
(device, inode, offset of the end of the last complete line) is what the caller persists; given
back at the next start it resumes exactly there:

- same inode, file at least as long: continue at the offset (nothing read twice);
- same inode, file shorter (or the bytes before the offset changed): it was truncated
  (copytruncate) — first the rest of the copy logrotate made (found next to it by the bytes
  before our offset), then the file again from 0;
- another inode: the file was rotated while the agent was down — finish the rotated file
  (found next to it as `NAME.1` or `NAME-*` by its inode) from the saved offset, then read the
  new one from the start.

While running, a rename-rotation is noticed when the path names another inode: the old file is
drained to its end (the writer may still append to it until it reopens), then the new file is
read from 0. A line that has no newline yet is left for the next call; one longer than
`max_line` is skipped and counted (`skipped`). Reads are bounded per call so a huge backlog is
consumed in steps instead of all in memory.

copytruncate copies the file and then empties it: what was written after our last read and
before the truncation exists only in the copy. The copy is the sibling (`NAME.1`, `NAME-*`, not
compressed) whose bytes just before our offset are the ones we last read; its rest is read
before the truncated file (only lines written between logrotate's copy and its truncation are
beyond anyone's reach).

The followed path is opened without following a symlink (O_NOFOLLOW) and must be a regular
file: a log replaced by a symlink (to /etc/shadow, to another user's 0600 file) or by a FIFO is
refused and logged, unless `follow_symlinks` is set. Rotated copies are opened the same way.
"""

from __future__ import annotations

import errno
import os
import stat
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
        follow_symlinks: bool = False,
    ) -> None:
        self.path = path
        self.max_line = max_line
        self.follow_symlinks = follow_symlinks
        self.refused: str | None = None  # why the path was not opened (symlink, not a file)
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
        fh = self._open_file(self.path, followed=True)
        if fh is None:
            return False
        st = os.fstat(fh.fileno())
        saved = self._saved or {}
        same = saved.get("inode") == st.st_ino and saved.get("dev") == st.st_dev
        if same:
            offset = int(saved.get("offset", 0))
            tail_hex = str(saved.get("tail", ""))
            if offset > st.st_size or not _tail_matches(fh, offset, tail_hex):
                log.info("log_truncated", path=str(self.path), offset=offset, size=st.st_size)
                self._pending = self._finish_copy(offset, tail_hex, exclude=(st.st_dev, st.st_ino))
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

    def _open_file(self, path: Path, *, followed: bool) -> BinaryIO | None:
        """`path` opened for reading if it is a regular file and (unless configured) not a
        symlink; None otherwise, with the reason logged once per change (for the followed path)."""
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        if not self.follow_symlinks:
            flags |= os.O_NOFOLLOW
        reason = None
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                reason = "symlink"
            else:
                return None  # absent or unreadable: the caller tries again later
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                if followed:
                    self.refused = None
                return os.fdopen(fd, "rb")
            os.close(fd)
            reason = "not a regular file"
        if followed and self.refused != reason:
            log.warning(
                "log_refused", path=str(path), reason=reason, hint="set follow_symlinks = true to follow one"
            )
        if followed:
            self.refused = reason
        return None

    def _finish_copy(self, offset: int, tail_hex: str, *, exclude: tuple[int, int]) -> list[bytes]:
        """After a copytruncate: the lines after `offset` in the copy logrotate made, if found.

        The copy is a sibling (another inode) at least `offset` long whose bytes just before
        `offset` are the ones we last read (`tail_hex`)."""
        if offset <= 0 or not tail_hex:
            return []
        for candidate in self._rotated_candidates():
            fh = self._open_file(candidate, followed=False)
            if fh is None:
                continue
            with fh:
                st = os.fstat(fh.fileno())
                if (st.st_dev, st.st_ino) == exclude or st.st_size < offset:
                    continue
                if not _tail_matches(fh, offset, tail_hex):
                    continue
                log.info("log_truncated_copy_found", path=str(self.path), copy=str(candidate), offset=offset)
                fh.seek(offset)
                return list(self._split(fh.read(), final=True))
        log.warning("log_truncated_copy_not_found", path=str(self.path), offset=offset)
        return []

    def _finish_rotated(self, saved: dict[str, Any]) -> list[bytes]:
        """The unread rest of the file we followed before a restart, if it is still next door."""
        for candidate in self._rotated_candidates():
            try:
                st = candidate.lstat()
            except OSError:
                continue
            if st.st_ino == saved.get("inode") and st.st_dev == saved.get("dev"):
                offset = int(saved.get("offset", 0))
                log.info("log_rotated_while_down", path=str(self.path), rotated=str(candidate))
                fh = self._open_file(candidate, followed=False)
                if fh is None:
                    log.warning("log_rotated_unreadable", path=str(candidate))
                    return []
                with fh:
                    fh.seek(offset if offset <= st.st_size else 0)
                    return list(self._split(fh.read(), final=True))
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
            st = os.fstat(self._fh.fileno())
            recovered = (
                []
                if self._discarding
                else self._finish_copy(self._offset, self._tail_hex, exclude=(st.st_dev, st.st_ino))
            )
            self._offset, self._discarding, self._tail_hex = 0, False, ""
            return recovered + self._read_current(budget)
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
            # a symlink swapped in is another inode (lstat): handled like a rotation, then refused
            st = self.path.stat() if self.follow_symlinks else self.path.lstat()
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
