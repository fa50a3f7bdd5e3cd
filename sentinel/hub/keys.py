"""Per-terminal secrets: issued once by `sentinel hub enroll TERMINAL`, never stored.

Decision (issue 21 asked: hashed or encrypted?): neither — derived. HMAC verification needs the
secret itself, so a hash cannot verify and an encrypted copy needs a key anyway. The hub keeps
one random master key in a file (0600, outside the database) and derives each terminal's secret:

    secret = HMAC-SHA256(master, "sentinel-hub/terminal-secret/1" 0x00 terminal 0x00 key_id)

The database holds only the random `key_id`, a short fingerprint (to compare copies) and dates.
A database dump or backup therefore holds no secret; every hub replica reads the same master
key file. Re-enrolling (`--rotate`) issues a new key id; the old secret stays valid for a grace
period so the terminal can be moved over, then expires. `revoke` ends a terminal's secrets.
Secrets are printed once (as Standard Webhooks `whsec_<base64>`), never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random
import threading
from pathlib import Path

import sqlalchemy as sa

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.files import create_exclusive
from sentinel.hub.db import Database
from sentinel.hub.inventory import Inventory
from sentinel.hub.schema import enrolments, terminals

_CONTEXT = b"sentinel-hub/terminal-secret/1"
CACHE_SECONDS = 5.0
"""How long a process trusts its cached view of enrolments (a revocation takes this long)."""
MISS_RELOAD = 1.0
"""An unknown terminal name makes the cache reload, at most this often (new enrolments)."""


class EnrolmentError(Exception):
    """A terminal that cannot be enrolled (unknown to the inventory, already enrolled…)."""


def load_master_key(path: Path, *, create: bool = False) -> bytes:
    """The master key; created (32 random bytes, 0600, directory 0700) when `create` and missing."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = random.token_bytes(32)
        if not create_exclusive(path, base64.b64encode(key) + b"\n"):  # another process made it first
            return load_master_key(path)
        return key
    key = base64.b64decode(raw.strip(), validate=True)
    if len(key) < 32:
        raise ValueError(f"{path}: the master key must be at least 32 bytes")
    return key


def encode_secret(secret: bytes) -> str:
    """The `whsec_` form the agent's webhook sink reads."""
    return "whsec_" + base64.b64encode(secret).decode("ascii")


def fingerprint(secret: bytes) -> str:
    """A short, non-reversible tag of a secret, to compare copies without showing them."""
    return hashlib.sha256(secret).hexdigest()[:16]


class Keyring:
    """Issues, derives and looks up terminal secrets."""

    def __init__(self, db: Database, master: bytes, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._db = db
        self._master = master
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, list[bytes]] = {}
        self._cache_at: float | None = None

    def derive(self, terminal: str, key_id: str) -> bytes:
        """The secret of one enrolment."""
        message = _CONTEXT + b"\x00" + terminal.encode("utf-8") + b"\x00" + key_id.encode("ascii")
        return hmac.new(self._master, message, hashlib.sha256).digest()

    def enroll(
        self,
        terminal: str,
        inventory: Inventory,
        *,
        by: str,
        rotate: bool = False,
        grace: float = 86400.0,
        silent_after: float = 300.0,
    ) -> str:
        """Issue a secret for `terminal` and return it (`whsec_…`, shown once)."""
        info = inventory.terminal(terminal)
        if info is None:
            raise EnrolmentError(f"terminal {terminal!r} is not in the inventory; add it there first")
        now = self._clock.time()
        key_id = random.token_hex(16)
        secret = self.derive(terminal, key_id)
        with self._db.write() as c:
            active = (
                c.execute(
                    sa.select(enrolments.c.id).where(
                        enrolments.c.terminal == terminal,
                        enrolments.c.revoked_at.is_(None),
                        sa.or_(enrolments.c.expires_at.is_(None), enrolments.c.expires_at > now),
                    )
                )
                .scalars()
                .all()
            )
            if active and not rotate:
                raise EnrolmentError(
                    f"terminal {terminal!r} is already enrolled; use --rotate to issue a new secret "
                    "(the old one stays valid for the grace period) or revoke it first"
                )
            if active:
                c.execute(
                    sa.update(enrolments)
                    .where(enrolments.c.id.in_(active), enrolments.c.expires_at.is_(None))
                    .values(expires_at=now + grace)
                )
            c.execute(
                sa.insert(enrolments).values(
                    terminal=terminal,
                    key_id=key_id,
                    fingerprint=fingerprint(secret),
                    created_at=now,
                    created_by=by,
                )
            )
            exists = c.execute(sa.select(terminals.c.name).where(terminals.c.name == terminal)).first()
            if exists is None:
                c.execute(
                    sa.insert(terminals).values(
                        name=terminal,
                        branch_id=info.branch_id,
                        primary_id=info.primary_id,
                        in_inventory=True,
                        silent_after=info.silent_after or silent_after,
                        tickets=0,
                        enrolled_at=now,
                    )
                )
            else:
                c.execute(sa.update(terminals).where(terminals.c.name == terminal).values(enrolled_at=now))
        self.forget(terminal)
        return encode_secret(secret)

    def enroll_many(
        self, names: list[str], inventory: Inventory, *, by: str, silent_after: float = 300.0
    ) -> dict[str, str]:
        """Enrol many terminals not yet enrolled in one transaction (a fleet's first roll-out);
        return {terminal: whsec_ secret}. Terminals already enrolled are left alone (not in the result)."""
        unknown = [n for n in names if inventory.terminal(n) is None]
        if unknown:
            raise EnrolmentError(f"not in the inventory: {', '.join(sorted(unknown)[:10])}")
        now = self._clock.time()
        out: dict[str, str] = {}
        with self._db.write() as c:
            active = set(
                c.execute(
                    sa.select(enrolments.c.terminal).where(
                        enrolments.c.revoked_at.is_(None),
                        sa.or_(enrolments.c.expires_at.is_(None), enrolments.c.expires_at > now),
                    )
                ).scalars()
            )
            known = set(c.execute(sa.select(terminals.c.name)).scalars())
            rows, new_terminals = [], []
            for name in sorted(set(names) - active):
                key_id = random.token_hex(16)
                secret = self.derive(name, key_id)
                out[name] = encode_secret(secret)
                rows.append(
                    {
                        "terminal": name,
                        "key_id": key_id,
                        "fingerprint": fingerprint(secret),
                        "created_at": now,
                        "created_by": by,
                    }
                )
                if name not in known:
                    info = inventory.terminals[name]
                    new_terminals.append(
                        {
                            "name": name,
                            "branch_id": info.branch_id,
                            "primary_id": info.primary_id,
                            "in_inventory": True,
                            "silent_after": info.silent_after or silent_after,
                            "tickets": 0,
                            "enrolled_at": now,
                        }
                    )
            if rows:
                c.execute(sa.insert(enrolments), rows)
            if new_terminals:
                c.execute(sa.insert(terminals), new_terminals)
            if out:
                c.execute(
                    sa.update(terminals).where(terminals.c.name.in_(sorted(out))).values(enrolled_at=now)
                )
        self.forget()
        return out

    def revoke(self, terminal: str) -> int:
        """End every secret of a terminal; return how many were active."""
        now = self._clock.time()
        with self._db.write() as c:
            count = c.execute(
                sa.update(enrolments)
                .where(enrolments.c.terminal == terminal, enrolments.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        self.forget(terminal)
        return int(count or 0)

    def secrets(self, terminal: str) -> list[bytes]:
        """The valid secrets of a terminal (newest first); empty for an unknown terminal.

        The whole fleet's enrolments are read in one query and kept for CACHE_SECONDS: a request
        never waits on the database for its key, and a flood of unknown names costs nothing."""
        now = self._clock.monotonic()
        with self._lock:
            age = None if self._cache_at is None else now - self._cache_at
            if age is not None and age < CACHE_SECONDS:
                found = self._cache.get(terminal)
                # a name not seen yet may have just been enrolled by another process: look again,
                # but at most once a MISS_RELOAD, so a flood of unknown names costs nothing
                if found is not None or age < MISS_RELOAD:
                    return found or []
        fresh = self._load()
        with self._lock:
            self._cache, self._cache_at = fresh, now
            return fresh.get(terminal, [])

    def _load(self) -> dict[str, list[bytes]]:
        wall = self._clock.time()
        with self._db.read() as c:
            rows = c.execute(
                sa.select(enrolments.c.terminal, enrolments.c.key_id)
                .where(
                    enrolments.c.revoked_at.is_(None),
                    sa.or_(enrolments.c.expires_at.is_(None), enrolments.c.expires_at > wall),
                )
                .order_by(enrolments.c.id.desc())
            ).all()
        out: dict[str, list[bytes]] = {}
        for terminal, key_id in rows:
            out.setdefault(terminal, []).append(self.derive(terminal, key_id))
        return out

    def forget(self, terminal: str = "") -> None:
        """Drop the cached enrolments (after an enrol or revoke in this process)."""
        with self._lock:
            self._cache_at = None

    def listing(self) -> list[dict[str, object]]:
        """Enrolments for `sentinel hub enroll --list`: no secrets, fingerprints only."""
        with self._db.read() as c:
            rows = c.execute(sa.select(enrolments).order_by(enrolments.c.terminal, enrolments.c.id)).all()
        return [
            {
                "terminal": r.terminal,
                "fingerprint": r.fingerprint,
                "created_at": r.created_at,
                "created_by": r.created_by,
                "expires_at": r.expires_at,
                "revoked_at": r.revoked_at,
            }
            for r in rows
        ]
