"""`state_dir/status.json`: the agent's status snapshot, so `sentinel status` works from another
process without HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The last status.json the agent wrote, or None."""
    try:
        return dict(json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
