"""The signed baseline on disk, and the agent's signed record of what it has already reported.

Files in `state_dir/integrity/` (directory 0700, files 0600):

- `baseline.key`: 32 random bytes, created by the first `sentinel baseline init` (or the agent's
  first start); never printed, logged or exported.
- `baseline.fim`: the baseline. One header line `SENTINEL-FIM 1 <hmac>` then a JSON body
  (`kind`, `created_at`, `roots`, `entries` path -> compact row). The HMAC-SHA256 with the key
  covers the whole body, so one changed byte anywhere is detected.
- `observed.fim`: same format, `kind = "observed"`: the changes the agent has reported since the
  baseline it names (`base_digest`), so a restart neither repeats nor forgets them.

Writes are atomic: a temporary file in the same directory, fsync, rename, fsync of the
directory. A reader never sees half a baseline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sentinel.integrity.entry import Entry

MAGIC = b"SENTINEL-FIM 1 "
KEY_BYTES = 32
SUBDIR = "integrity"
Kind = Literal["baseline", "observed"]
Problem = Literal["missing", "key_missing", "signature", "malformed", "unreadable"]

PROBLEM_TEXT: dict[str, str] = {
    "missing": "the baseline file is missing (deleted?)",
    "key_missing": "the baseline key is missing: the baseline cannot be verified",
    "signature": "the baseline signature does not match: it was changed outside Sentinel",
    "malformed": "the baseline file is damaged (not a Sentinel baseline)",
    "unreadable": "the baseline file cannot be read",
}


class BaselineError(Exception):
    """The baseline cannot be trusted; `problem` says why (one of PROBLEM_TEXT)."""

    def __init__(self, problem: Problem, detail: str = "") -> None:
        super().__init__(PROBLEM_TEXT[problem] + (f" ({detail})" if detail else ""))
        self.problem: Problem = problem


@dataclass
class Baseline:
    """Entries by path with their metadata. In an `observed` record a None entry means deleted."""

    entries: dict[str, Entry | None]
    created_at: float
    roots: list[tuple[str, str]] = field(default_factory=list)
    kind: Kind = "baseline"
    base_digest: str = ""  # observed: the digest of the baseline these changes are relative to
    digest: str = ""  # sha256 of the body as written/read

    def present(self) -> dict[str, Entry]:
        """The entries that exist (for a baseline: all of them)."""
        return {p: e for p, e in self.entries.items() if e is not None}

    def body(self) -> bytes:
        """The signed JSON body."""
        doc: dict[str, Any] = {
            "version": 1,
            "kind": self.kind,
            "created_at": self.created_at,
            "roots": [list(r) for r in self.roots],
            "base_digest": self.base_digest,
            "entries": {p: (e.to_row() if e is not None else None) for p, e in self.entries.items()},
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")


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
        try:
            fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return self.read_key()
        key = secrets.token_bytes(KEY_BYTES)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        return key

    def read_key(self) -> bytes:
        """The key, or BaselineError("key_missing")."""
        try:
            key = self.key.read_bytes()
        except FileNotFoundError:
            raise BaselineError("key_missing") from None
        except OSError as exc:
            raise BaselineError("key_missing", exc.strerror or str(exc)) from None
        if len(key) < 16:
            raise BaselineError("key_missing", "the key file is truncated")
        return key

    # -- signed files -------------------------------------------------------------------------

    def write(self, record: Baseline, key: bytes) -> str:
        """Sign and atomically write `record` (baseline or observed); return its digest."""
        path = self.baseline if record.kind == "baseline" else self.observed
        body = record.body()
        mac = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + mac + b"\n")
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.directory)
        record.digest = hashlib.sha256(body).hexdigest()
        return record.digest

    def load(self, kind: Kind = "baseline", key: bytes | None = None) -> Baseline:
        """Read and verify; BaselineError says what is wrong."""
        path = self.baseline if kind == "baseline" else self.observed
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BaselineError("missing") from None
        except OSError as exc:
            raise BaselineError("unreadable", exc.strerror or str(exc)) from None
        key = key if key is not None else self.read_key()
        header, sep, body = data.partition(b"\n")
        if not sep or not header.startswith(MAGIC):
            raise BaselineError("malformed", "no Sentinel header")
        expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
        if not hmac.compare_digest(header[len(MAGIC) :], expected):
            raise BaselineError("signature")
        return _parse(body, kind)

    def remove_observed(self) -> None:
        """Forget the observed record (after a new baseline)."""
        self.observed.unlink(missing_ok=True)


def _parse(body: bytes, kind: Kind) -> Baseline:
    """The verified body as a Baseline (the signature already holds, so damage here is a bug)."""
    try:
        doc = json.loads(body.decode("utf-8", "surrogateescape"))
        found = doc.get("kind")
        entries = {p: (Entry.from_row(r) if r is not None else None) for p, r in doc["entries"].items()}
        record = Baseline(
            entries=entries,
            created_at=float(doc["created_at"]),
            roots=[(str(a), str(b)) for a, b in doc.get("roots", [])],
            kind=kind,
            base_digest=str(doc.get("base_digest", "")),
            digest=hashlib.sha256(body).hexdigest(),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineError("malformed", str(exc)) from None
    if found != kind:  # a signed observed record swapped in for the baseline
        raise BaselineError("malformed", f"expected a {kind} record, found {found!r}")
    return record


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
