"""The signed baseline on disk, and the agent's signed record of what it has already reported.

Files in `state_dir/integrity/` (directory 0700, files 0600):

- `baseline.key`: 32 random bytes, created by the first `sentinel baseline init` (or the agent's
  first start); never printed, logged or exported.
- `baseline.fim`: the baseline. A header line `SENTINEL-FIM 2 <hmac>`, then the body: one JSON
  line of metadata (`kind`, `created_at`, `roots`, ...) and one compact JSON line per path
  (`[path, type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, sha256,
  xattrs]`). The HMAC-SHA256 with the key covers the whole body, so one changed byte anywhere
  is detected. Written and read in blocks: a 50k-path baseline never sits in memory as text.
- `observed.fim`: same format, `kind = "observed"`: the changes the agent has reported since the
  baseline it names (`base_digest`), so a restart neither repeats nor forgets them.

Writes are atomic: a temporary file in the same directory, fsync, rename, fsync of the
directory. A reader never sees half a baseline.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sentinel.core.files import atomic_writer, create_exclusive
from sentinel.core.model import Event, freeze_fields
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.table import EntryTable

MAGIC = b"SENTINEL-FIM 2 "
VERSION = 2
BLOCK = 1000  # paths per written block of lines
READ_SIZE = 1 << 20
KEY_BYTES = 32
# one encoder for every row: json.dumps with options builds a new encoder per call (a third of the
# time of writing a 50k-path baseline)
_ROW_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
SUBDIR = "integrity"
Kind = Literal["baseline", "observed"]
Problem = Literal["missing", "key_missing", "signature", "malformed", "unreadable", "denied"]

PROBLEM_TEXT: dict[str, str] = {
    "missing": "the baseline file is missing (deleted?)",
    "key_missing": "the baseline key is missing: the baseline cannot be verified",
    "signature": "the baseline signature does not match: it was changed outside Sentinel",
    "malformed": "the baseline file is damaged (not a Sentinel baseline)",
    "unreadable": "the baseline file cannot be read",
    # not tampering: whoever asked may not read the agent's state (a CLI run without root)
    "denied": "permission denied reading the baseline or its key: run as root (sudo) or as the agent's user",
}


class BaselineError(Exception):
    """The baseline cannot be trusted; `problem` says why (one of PROBLEM_TEXT)."""

    def __init__(self, problem: Problem, detail: str = "") -> None:
        super().__init__(PROBLEM_TEXT[problem] + (f" ({detail})" if detail else ""))
        self.problem: Problem = problem


@dataclass
class Baseline:
    """Entries by path with their metadata. In an `observed` record a None entry means deleted."""

    entries: Mapping[str, Entry | None]  # a baseline's: an EntryTable (compact, nothing deleted)
    created_at: float
    roots: list[tuple[str, str]] = field(default_factory=list)
    kind: Kind = "baseline"
    base_digest: str = ""  # observed: the digest of the baseline these changes are relative to
    digest: str = ""  # sha256 of the body as written/read

    def present(self) -> EntryTable:
        """The entries that exist (for a baseline: all of them), as a table of their own."""
        if isinstance(self.entries, EntryTable):
            return self.entries.copy()
        return EntryTable((p, e) for p, e in self.entries.items() if e is not None)

    def metadata(self) -> bytes:
        """The body's first line: everything but the entries."""
        doc = {
            "version": VERSION,
            "kind": self.kind,
            "created_at": self.created_at,
            "roots": [list(r) for r in self.roots],
            "base_digest": self.base_digest,
            "entries": len(self.entries),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def lines(self) -> Iterator[bytes]:
        """The body in blocks of lines: metadata, then one `[path, *row]` (or `[path, null]`) per path."""
        yield self.metadata()
        items = iter(self.entries.items())  # one block of entries unpacked at a time
        while block := list(itertools.islice(items, BLOCK)):
            yield b"\n".join(
                _ROW_ENCODER.encode([p, *e] if e is not None else [p, None]).encode(
                    "utf-8", "surrogateescape"
                )
                for p, e in block
            )


class BaselineFiles:
    """Reads, verifies and atomically writes the baseline, its key and the observed record."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / SUBDIR
        self.baseline = self.directory / "baseline.fim"
        self.key = self.directory / "baseline.key"
        self.observed = self.directory / "observed.fim"

    # -- the key ------------------------------------------------------------------------------

    def has_key(self) -> bool:
        """Whether the key file exists."""
        return self.key.exists()

    def create_key(self) -> bytes:
        """Create the key (0600) if missing; return it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        if not create_exclusive(self.key, key):  # O_EXCL, never through a link
            return self.read_key()
        return key

    def read_key(self) -> bytes:
        """The key, or BaselineError("key_missing")."""
        try:
            key = self.key.read_bytes()
        except FileNotFoundError:
            raise BaselineError("key_missing") from None
        except PermissionError:
            raise BaselineError("denied", str(self.key)) from None
        except OSError as exc:
            raise BaselineError("key_missing", exc.strerror or str(exc)) from None
        if len(key) < 16:
            raise BaselineError("key_missing", "the key file is truncated")
        return key

    # -- signed files -------------------------------------------------------------------------

    def write(self, record: Baseline, key: bytes) -> str:
        """Sign and atomically write `record` (baseline or observed); return its digest.

        The body is streamed in blocks (a 50k-path baseline never exists as one string); the
        header with the HMAC is written last, over a placeholder of the same length.
        """
        path = self.baseline if record.kind == "baseline" else self.observed
        mac, digest = hmac.new(key, digestmod=hashlib.sha256), hashlib.sha256()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # a random temporary name, O_EXCL and no link followed: state_dir may be another account's
        with atomic_writer(path) as fh:
            fh.write(MAGIC + b"0" * 64 + b"\n")
            for i, block in enumerate(record.lines()):
                data = block if i == 0 else b"\n" + block
                mac.update(data)
                digest.update(data)
                fh.write(data)
            fh.flush()
            os.pwrite(fh.fileno(), MAGIC + mac.hexdigest().encode("ascii") + b"\n", 0)
        record.digest = digest.hexdigest()
        return record.digest

    def load(self, kind: Kind = "baseline", key: bytes | None = None) -> Baseline:
        """Read and verify; BaselineError says what is wrong."""
        reader = _Reader(kind)
        self._read(kind, key, reader)
        return reader.result()

    def verify(self, kind: Kind = "baseline", key: bytes | None = None) -> str:
        """Verify without parsing; the digest of the verified body (BaselineError otherwise)."""
        return self._read(kind, key, None)

    def _read(self, kind: Kind, key: bytes | None, reader: _Reader | None) -> str:
        """Stream the file through the HMAC (and `reader`); the body's digest, or BaselineError."""
        path = self.baseline if kind == "baseline" else self.observed
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below; errors become BaselineError
        except FileNotFoundError:
            raise BaselineError("missing") from None
        except PermissionError:
            raise BaselineError("denied", str(path)) from None
        except OSError as exc:
            raise BaselineError("unreadable", exc.strerror or str(exc)) from None
        try:
            with fh:
                key = key if key is not None else self.read_key()
                mac, digest = hmac.new(key, digestmod=hashlib.sha256), hashlib.sha256()
                header = fh.readline(len(MAGIC) + 66)
                if not header.startswith(MAGIC) or not header.endswith(b"\n"):
                    raise BaselineError("malformed", "no Sentinel header")
                while chunk := fh.read(READ_SIZE):
                    mac.update(chunk)
                    digest.update(chunk)
                    if reader is not None:
                        reader.feed(chunk)
        except OSError as exc:
            raise BaselineError("unreadable", exc.strerror or str(exc)) from None
        if not hmac.compare_digest(header[len(MAGIC) : -1], mac.hexdigest().encode("ascii")):
            raise BaselineError("signature")
        if reader is not None:
            reader.digest = digest.hexdigest()
        return digest.hexdigest()

    def remove_observed(self) -> None:
        """Forget the observed record (after a new baseline)."""
        self.observed.unlink(missing_ok=True)


class _Reader:
    """Parses a body as it streams in, a block of lines at a time (no 50k-item document at once).

    Nothing it parses is used before the HMAC over the whole body has been checked.
    """

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.digest = ""
        self._rest = b""
        self._meta: dict[str, Any] | None = None
        # a baseline's entries all exist: packed as they stream in, they never exist all unpacked
        self._table = EntryTable()
        self._observed: dict[str, Entry | None] = {}  # an observed record's (None: deleted)
        self._error = ""

    def feed(self, chunk: bytes, *, final: bool = False) -> None:
        data = self._rest + chunk
        cut = len(data) if final else data.rfind(b"\n") + 1
        self._rest = data[cut:]
        block = data[:cut].rstrip(b"\n")
        if not block or self._error:
            return
        try:
            if self._meta is None:
                first, _, block = block.partition(b"\n")
                self._meta = json.loads(first)
                if not block:
                    return
            # file names need not be UTF-8: written with surrogateescape, so read back the same way
            text = block.decode("utf-8", "surrogateescape")
            rows = json.loads("[" + text.replace("\n", ",") + "]")
            for row in rows:
                path = row[0]
                entry = Entry.from_row(row[1:]) if row[1] is not None else None
                if self.kind == "observed":
                    self._observed[path] = entry
                elif entry is not None:
                    self._table[path] = entry
                else:  # only an observed record holds deletions
                    self._error = f"a baseline entry cannot be a deletion: {path!r}"
                    return
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self._error = str(exc)

    def result(self) -> Baseline:
        self.feed(b"", final=True)
        meta = self._meta
        if self._error or not isinstance(meta, dict):
            raise BaselineError("malformed", self._error or "no metadata")
        if meta.get("kind") != self.kind:  # a signed observed record swapped in for the baseline
            raise BaselineError("malformed", f"expected a {self.kind} record, found {meta.get('kind')!r}")
        try:
            return Baseline(
                entries=self._table if self.kind == "baseline" else self._observed,
                created_at=float(meta["created_at"]),
                roots=[(str(a), str(b)) for a, b in meta.get("roots", [])],
                kind=self.kind,
                base_digest=str(meta.get("base_digest", "")),
                digest=self.digest,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BaselineError("malformed", str(exc)) from None


def tamper_event(files: BaselineFiles, problem: str, detail: str, now: float) -> Event:
    """The `fim.baseline_tampered` event for a baseline that fails verification (agent and CLI)."""
    fields = freeze_fields({"reason": problem, "detail": detail, "path": str(files.baseline)})
    return Event("fim", "baseline_tampered", str(files.baseline), now, fields)
