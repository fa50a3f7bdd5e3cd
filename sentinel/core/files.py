"""The one place Sentinel writes files: symlink-safe, hard-link-safe, unpredictable, durable.

Every file the agent or the CLI writes lands in a directory that another account may be able to
write: the agent's state_dir belongs to the `sentinel` account while `sentinel drill` and
`sentinel baseline` run as root; a file sink's directory may be a shared log directory. So a
write never goes through a path name that someone else can change under it:

- the directory is opened once (`O_DIRECTORY | O_NOFOLLOW`) and checked on its descriptor:
  a directory writable by group or others is refused, and so is one owned by an account that is
  neither us nor root (root may write into a service account's directory: every name below is
  opened relative to the checked descriptor, so that account's symlinks and hard links are
  never followed);
- sub-directories are opened one component at a time relative to it, never following a link;
- a whole-file write goes to a temporary name nobody can predict (64 random bits), opened
  `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`, is fsynced, given its owner with `fchown` on the
  descriptor, renamed over the target relative to the directory descriptor (a planted symlink
  is replaced, not followed), and the directory is fsynced;
- an append (or an in-place rewrite) opens the name `O_NOFOLLOW | O_NONBLOCK` and refuses
  anything that is not a regular file with one link, owned by us, root or the directory's
  owner; a missing file is created `O_EXCL` and given its owner on the descriptor.

A refusal is `UnsafePathError` (an OSError, so callers that already contain write failures
contain it too) whose message is one line saying what and why.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

PRIVATE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(OSError):
    """A write was refused because another account could redirect it; the message says why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(errno.EPERM, f"refusing to write {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.strerror)


Owner = tuple[int, int]


def _token() -> str:
    """16 random hex digits for a temporary name (what secrets.token_hex does, without its imports)."""
    return os.urandom(8).hex()


def _name(name: str) -> str:
    """A single path component (the helper never resolves a path below a checked directory)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _check_dir_stat(path: Path | str, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(path, "not a directory")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        who = "group and others" if mode & 0o022 == 0o022 else ("others" if mode & 0o002 else "its group")
        raise UnsafePathError(path, f"the directory is writable by {who} (mode {mode:04o}; chmod go-w it)")
    me = os.geteuid()
    if st.st_uid not in (me, 0) and me != 0:
        raise UnsafePathError(
            path, f"the directory belongs to uid {st.st_uid}, not to this account (uid {me})"
        )


def _unsafe_to_write(st: os.stat_result, trusted: set[int]) -> str:
    """Why an existing file opened for writing in place must not be written ("" when it may)."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink != 1:
        return f"it has {st.st_nlink} hard links"
    if st.st_uid not in trusted:
        return f"it belongs to uid {st.st_uid}"
    return ""


class Directory:
    """A checked, open directory; every file operation inside it is relative to its descriptor."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path
        st = os.fstat(fd)
        self.owner: Owner = (st.st_uid, st.st_gid)
        """Who owns the directory (new files written for its owner take this)."""

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path | str, *, create: bool = False, mode: int = 0o700, strict: bool = False
    ) -> Directory:
        """Open `path` (its last component must not be a symlink).

        With `create`, missing directories are made with `mode` (parents too, like mkdir -p).
        `strict` also refuses a directory others can write or another account owns
        (`check_private_dir`); without it, safety rests on every operation being relative to
        the descriptor, never following a link and never reusing a name.
        """
        path = Path(path)
        if create:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
        try:
            fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and path.is_symlink():
                raise UnsafePathError(path, "it is a symlink") from None
            raise
        if strict:
            try:
                _check_dir_stat(path, os.fstat(fd))
            except BaseException:
                os.close(fd)
                raise
        return cls(fd, path)

    def sub(self, name: str, *, create: bool = True, mode: int = 0o700) -> Directory:
        """A sub-directory, opened relative to this one without following a link."""
        _name(name)
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=self._fd)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self._fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePathError(self.path / name, "it is a symlink or not a directory") from None
            raise
        return Directory(fd, self.path / name)

    def close(self) -> None:
        """Release the descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def fd(self) -> int:
        """The directory's descriptor (for `dir_fd=` calls the helper does not offer)."""
        return self._fd

    # -- whole files --------------------------------------------------------------------------

    @contextlib.contextmanager
    def replacing(
        self, name: str, *, mode: int = PRIVATE, owner: Owner | None = None, only_files: bool = False
    ) -> Iterator[BinaryIO]:
        """Write a new version of `name`: yields a binary file; on success it replaces `name`
        atomically and durably, on error it is removed and `name` is untouched.

        A link at `name` is replaced, never written through; with `only_files` finding one
        there is refused instead (UnsafePathError): for files that only we write, a link means
        someone tampered with the directory, and the caller should say so.
        """
        _name(name)
        if only_files:
            self._refuse_unless_file(name)
        tmp = f".{name}.{_token()}.tmp"
        fd = os.open(tmp, _NEW_FLAGS, mode, dir_fd=self._fd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as fh:
                yield fh
                fh.flush()
                if owner is not None and owner != (os.geteuid(), os.getegid()):
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)  # the umask may have narrowed it; never widen past `mode`
                os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self._fd)
            raise
        os.fsync(self._fd)

    def write_bytes(
        self,
        name: str,
        data: bytes,
        *,
        mode: int = PRIVATE,
        owner: Owner | None = None,
        only_files: bool = False,
    ) -> None:
        """Replace `name` with `data` (atomic, durable; see `replacing`)."""
        with self.replacing(name, mode=mode, owner=owner, only_files=only_files) as fh:
            fh.write(data)

    def write_text(
        self,
        name: str,
        text: str,
        *,
        mode: int = PRIVATE,
        owner: Owner | None = None,
        only_files: bool = False,
    ) -> None:
        """Replace `name` with UTF-8 `text` (atomic, durable; see `replacing`)."""
        self.write_bytes(name, text.encode("utf-8"), mode=mode, owner=owner, only_files=only_files)

    def write_json(
        self,
        name: str,
        data: Any,
        *,
        mode: int = PRIVATE,
        owner: Owner | None = None,
        only_files: bool = False,
    ) -> None:
        """Replace `name` with `data` as indented JSON (atomic, durable; see `replacing`)."""
        text = json.dumps(data, indent=1, sort_keys=True, default=str)
        self.write_bytes(name, text.encode("utf-8"), mode=mode, owner=owner, only_files=only_files)

    def _refuse_unless_file(self, name: str) -> None:
        try:
            st = os.lstat(name, dir_fd=self._fd)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(self.path / name, "it is a symlink")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(self.path / name, "not a regular file")

    # -- appending ----------------------------------------------------------------------------

    def append(
        self, name: str, data: bytes, *, mode: int = PRIVATE, owner: Owner | None = None, fsync: bool = True
    ) -> None:
        """Append `data` to `name` (created with `mode` and `owner` when missing), never through
        a symlink or into a file with other hard links or a foreign owner."""
        _name(name)
        fd = self._open_append(name, mode, owner)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def rewrite(self, name: str, data: bytes, *, mode: int = PRIVATE, owner: Owner | None = None) -> None:
        """Overwrite `name` in place (same inode; created with `mode` and `owner` when missing),
        never through a link or into a file with other hard links or a foreign owner.

        For a file a watcher must see *modified* (the drill probe): no temporary name appears
        next to it. Not atomic: a reader may see it half-written."""
        _name(name)
        fd = self._open_file_safely(name, os.O_WRONLY, mode, owner)
        try:
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open_append(self, name: str, mode: int, owner: Owner | None) -> int:
        return self._open_file_safely(name, os.O_WRONLY | os.O_APPEND, mode, owner)

    def _open_file_safely(self, name: str, flags: int, mode: int, owner: Owner | None) -> int:
        """An existing regular file with one link and a trusted owner, or a new one made here.

        O_NONBLOCK while opening: a FIFO planted at the name must not hang the writer."""
        safe = flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(name, safe, dir_fd=self._fd)
        except FileNotFoundError:
            try:
                fd = os.open(name, safe | os.O_CREAT | os.O_EXCL, mode, dir_fd=self._fd)
            except FileExistsError:  # someone created it meanwhile: theirs, checked below
                return self._open_file_safely(name, flags, mode, owner)
            try:
                if owner is not None and owner != (os.geteuid(), os.getegid()):
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)
            except BaseException:
                os.close(fd)
                raise
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(self.path / name, "it is a symlink") from None
            raise
        trusted = {os.geteuid(), 0, self.owner[0], *(() if owner is None else (owner[0],))}
        problem = _unsafe_to_write(os.fstat(fd), trusted)
        if problem:
            os.close(fd)
            raise UnsafePathError(self.path / name, problem)
        os.set_blocking(fd, True)
        return fd

    def create(self, name: str, data: bytes, *, mode: int = PRIVATE) -> bool:
        """Create `name` holding `data` (durably); False if the name exists (even as a link)."""
        try:
            fd = os.open(_name(name), _NEW_FLAGS, mode, dir_fd=self._fd)
        except FileExistsError:
            return False
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.fsync(self._fd)
        return True

    def open_file(self, name: str, flags: int, *, mode: int = PRIVATE) -> int:
        """A descriptor of `name` opened with `flags` plus O_NOFOLLOW and O_CLOEXEC (a link is
        refused, a new file is created with `mode`); the caller closes it."""
        try:
            return os.open(_name(name), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self._fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(self.path / name, "it is a symlink") from None
            raise

    # -- the rest -----------------------------------------------------------------------------

    def unlink(self, name: str, *, missing_ok: bool = True) -> None:
        """Remove `name` (a symlink is removed itself, never its target)."""
        try:
            os.unlink(_name(name), dir_fd=self._fd)
        except FileNotFoundError:
            if not missing_ok:
                raise


# -- the house's path API (every writer in the agent and the CLI calls one of these) -----------


def check_private_dir(path: Path | str) -> None:
    """Refuse (UnsafePathError, one line) a directory that is a symlink, not a directory,
    writable by its group or others, or owned by another account than us or root.

    For the state directory at start and before the CLI writes into it: a directory others can
    write is a directory whose contents others choose."""
    Directory.open(path, strict=True).close()


def prepare_private_dir(path: Path | str) -> None:
    """Create `path` 0700 if missing (parents too), then `check_private_dir` it."""
    Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private_dir(path)


def open_private(path: Path, flags: int) -> int:
    """`os.open` of a file kept open (the state lock, a new database): mode 0600, O_CLOEXEC and
    O_NOFOLLOW relative to its checked directory, so a planted link is never opened."""
    with Directory.open(path.parent) as directory:
        return directory.open_file(path.name, flags)


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, sync_dir: bool = True, owner: Owner | None = None, mode: int = PRIVATE
) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` when the block ends (fsynced, then renamed, then the
    directory fsynced); on error the temporary file is removed and `path` is untouched."""
    del sync_dir  # the directory is always fsynced: a rename is durable only then
    with (
        Directory.open(path.parent) as directory,
        directory.replacing(path.name, mode=mode, owner=owner) as fh,
    ):
        yield fh


def write_json_atomic(path: Path, data: Any, *, owner: Owner | None = None, mode: int = PRIVATE) -> None:
    """Replace `path` with `data` as indented JSON, atomically and durably."""
    with Directory.open(path.parent) as directory:
        directory.write_json(path.name, data, owner=owner, mode=mode)


def write_text_atomic(path: Path, text: str, *, owner: Owner | None = None, mode: int = PRIVATE) -> None:
    """Replace `path` with `text` (UTF-8), atomically and durably."""
    with Directory.open(path.parent) as directory:
        directory.write_text(path.name, text, owner=owner, mode=mode)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` (0600) holding `data`, fsynced with its directory; False if it exists."""
    with Directory.open(path.parent) as directory:
        return directory.create(path.name, data)


def append_durably(path: Path, data: bytes, *, owner: Owner | None = None) -> None:
    """Append `data` to `path` (created 0600) and fsync, never through a link (`Directory.append`)."""
    with Directory.open(path.parent) as directory:
        directory.append(path.name, data, owner=owner)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a creation in `directory` durable."""
    fd = os.open(directory, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
