"""What the software inventory says about a changed file or a replaced executable.

The file integrity monitor and the process detector ask; the packages source answers (it knows
the package database, the operations it saw and their time). The composition root hands the same
oracle to all three, or `NO_PACKAGES` when the inventory is off — then every answer is `NONE`
and both behave exactly as they would without it.

Verdicts:

- `PENDING`: a package operation is running or has not settled yet: ask again when the oracle
  calls back (`on_settled`);
- `OPERATION`: the change is part of a recorded operation (the package's file, with the content
  its checksums say, at the time of the operation), or written during it (`unowned`);
- `DIFFERS`: a package-owned file whose content is not what the package's checksums say;
- `NO_OPERATION`: a package-owned path changed with no package operation to explain it;
- `NONE`: nothing to say (no package owns it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Verdict(enum.StrEnum):
    """The oracle's answer for one path."""

    NONE = "none"
    PENDING = "pending"
    OPERATION = "operation"
    DIFFERS = "differs"
    NO_OPERATION = "no_operation"


CONTENT_DIFFERS = "content differs from package"
NO_PACKAGE_OPERATION = "no package operation"


@dataclass(frozen=True, slots=True)
class Attribution:
    """A verdict with what it is based on (package, operation) and a sentence for evidence."""

    verdict: Verdict
    package: str = ""  # name:arch of the owning package
    operation: str = ""  # the operation's id (also the subject of its it_change record)
    note: str = ""  # "content differs from package", "no package operation", ...
    unowned: bool = False  # OPERATION: written during the operation, not shipped by a package

    @property
    def folded(self) -> bool:
        """Whether the change belongs to an operation's record instead of a hazard of its own."""
        return self.verdict is Verdict.OPERATION


NOTHING = Attribution(Verdict.NONE)
WAIT = Attribution(Verdict.PENDING)


@dataclass(frozen=True, slots=True)
class FileState:
    """What the integrity monitor saw of a path: None fields when it is gone."""

    exists: bool
    type: str = ""  # file, dir, symlink ...
    ctime: float | None = None  # seconds; a file dpkg renamed into place has the operation's ctime


class PackageOracle(Protocol):
    """The packages source's side of attribution (thread-safe: asked from several threads)."""

    def watch_roots(self, roots: tuple[str, ...]) -> None:
        """Paths below these are asked about (the index of owned files covers them)."""
        ...

    def busy(self) -> bool:
        """Whether a package operation is running or has not settled."""
        ...

    def file_verdict(self, path: str, state: FileState, *, observed: float) -> Attribution:
        """About one changed path, seen at `observed` (wall clock)."""
        ...

    def exe_verdict(self, pid: int, path: str) -> Attribution:
        """About a process `pid` running the deleted executable `path`."""
        ...

    def on_settled(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the source's thread) each time the package database settles."""
        ...

    def confirm(self, operation: str, path: str, *, unowned: bool = False) -> None:
        """The asker folded `path` into `operation` (the operation's record lists it)."""
        ...


class NoPackages:
    """The oracle when no software inventory runs: nothing is ever attributed or held."""

    def watch_roots(self, roots: tuple[str, ...]) -> None:
        """Nothing is indexed."""

    def busy(self) -> bool:
        """Never."""
        return False

    def file_verdict(self, path: str, state: FileState, *, observed: float) -> Attribution:
        """Nothing to say."""
        return NOTHING

    def exe_verdict(self, pid: int, path: str) -> Attribution:
        """Nothing to say."""
        return NOTHING

    def on_settled(self, callback: Callable[[], None]) -> None:
        """It never settles because it is never busy."""

    def confirm(self, operation: str, path: str, *, unowned: bool = False) -> None:
        """There are no operations."""


NO_PACKAGES: PackageOracle = NoPackages()
