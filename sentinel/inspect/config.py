"""`[inspect]`: where the posture checks live and what a failed check does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentinel.core.settings import Duration, field, positive


@dataclass(frozen=True, slots=True)
class InspectConfig:
    """`[inspect]`."""

    checks_dir: Path | None = None  # default: checks.d next to the main config file
    raise_hazards: bool = True
    skip: tuple[str, ...] = ()
    root: Path = Path("/")  # filesystem root the checks read under (fixtures in tests)
    command_timeout: Duration = field(Duration(20), check=positive)
