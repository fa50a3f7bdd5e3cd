"""What the process may read: root, the installed unit's one capability, or neither.

The installed unit runs the agent as `sentinel` with `CAP_DAC_READ_SEARCH` (read any file). Run
from a checkout by an ordinary account, the agent still works, but protected files (/etc/shadow,
sudoers, other users' crontabs and logs) and other users' processes are out of its sight. That is
said once, in one clear line, instead of surfacing as scattered permission errors.
"""

from __future__ import annotations

import os
from pathlib import Path

CAP_DAC_READ_SEARCH = 2  # linux/capability.h


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    """The CapEff bit mask of this process (0 when it cannot be read)."""
    try:
        for line in status.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("CapEff:"):
                return int(line.split(":", 1)[1].strip(), 16)
    except (OSError, ValueError):
        pass
    return 0


def reduced_coverage(*, euid: int | None = None, status: Path = Path("/proc/self/status")) -> str:
    """Why this process sees less than the installed agent would ("" when it sees everything)."""
    uid = os.geteuid() if euid is None else euid
    if uid == 0 or effective_capabilities(status) & (1 << CAP_DAC_READ_SEARCH):
        return ""
    return (
        f"running as uid {uid} without root or CAP_DAC_READ_SEARCH: protected files (/etc/shadow, "
        "sudoers), other accounts' logs and processes are not visible, so integrity, detector and "
        "inspection coverage is reduced (run as root, or install the unit: deploy/install.sh)"
    )
