"""Identifiers unique across the fleet: UUIDv7 for hazard records, UUIDv4 for a store.

Python 3.11 has no `uuid.uuid7` (3.14 adds it); `uuid7` is RFC 9562 §5.7: 48 bits of Unix time
in milliseconds, the version and variant bits, 74 random bits. Ids made on one terminal sort by
creation time; two terminals — or one re-imaged terminal with the same name — never share one.

Randomness is an OS boundary like the clock: `Ids` is what the store is given, and tests pass
`SequentialIds` to get the same ids (and so the same chain hashes) on every run.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import uuid


def uuid7(unix_seconds: float | None = None, *, random: bytes | None = None) -> uuid.UUID:
    """A version-7 UUID for `unix_seconds` (default now); `random` (10 bytes) only for tests."""
    import uuid  # here, not at the top: uuid imports platform, which the CLI's reads never need

    ms = int((time.time() if unix_seconds is None else unix_seconds) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(random if random is not None else os.urandom(10), "big")
    rand_a = (rand >> 62) & 0xFFF  # 12 bits after the version
    rand_b = rand & ((1 << 62) - 1)  # 62 bits after the variant
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)


def uuid7_time(value: str) -> float:
    """The Unix time (seconds, millisecond precision) a UUIDv7 was made at."""
    import uuid

    return (uuid.UUID(value).int >> 80) / 1000.0


class Ids(Protocol):
    """Where a store gets its fresh identifiers."""

    def hazard_uid(self, at: float) -> str:
        """A new hazard record's fleet-unique id (UUIDv7 text, its time `at`)."""
        ...

    def store_id(self) -> str:
        """A new store's random id (UUID text), made once when the store is created."""
        ...


class RandomIds:
    """The real thing: UUIDv7 from the OS's randomness, UUIDv4 for stores."""

    def hazard_uid(self, at: float) -> str:
        """A UUIDv7 for `at`."""
        return str(uuid7(at))

    def store_id(self) -> str:
        """A UUIDv4."""
        import uuid

        return str(uuid.uuid4())


RANDOM_IDS = RandomIds()


class SequentialIds:
    """Deterministic, still well-formed ids for tests: the n-th uid's random bits are n."""

    def __init__(self, seed: int = 0) -> None:
        self._n = 0
        self._seed = seed

    def hazard_uid(self, at: float) -> str:
        """A UUIDv7 for `at` whose random part counts up."""
        self._n += 1
        return str(uuid7(at, random=(self._seed << 40 | self._n).to_bytes(10, "big")))

    def store_id(self) -> str:
        """A fixed UUIDv4-shaped id per seed."""
        import uuid

        return str(uuid.UUID(int=self._seed + 1, version=4))
