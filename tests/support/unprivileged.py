"""Running `sentinel` as an ordinary account (uid 65534), as an operator without sudo would.

The test interpreter may live where another account cannot reach it (a pyenv under /root): then
the system's Python of the same minor version runs the checkout with the virtualenv's
site-packages on PYTHONPATH, which is the same code on the same libraries.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
DROP = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _runs_as_nobody(python: str, env: dict[str, str]) -> bool:
    probe = subprocess.run(
        [*DROP, python, "-c", "import sentinel.cli.main, watchdog, structlog, prometheus_client"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def unprivileged_python() -> tuple[list[str], dict[str, str]]:
    """(argv prefix that runs Python as uid 65534, its environment); skips when impossible."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as another account")
    paths = [str(ROOT), *site.getsitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HOME": "/nonexistent"}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # no /root entries
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if Path(candidate).exists() and _runs_as_nobody(candidate, env):
            return [*DROP, candidate], env
    pytest.skip(f"no {version} that uid {NOBODY} can run with this checkout")


def run_as_nobody(
    *argv: str, cwd: Path, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`sentinel ARGV` as uid 65534 (stdout and stderr captured as text)."""
    prefix, env = unprivileged_python()
    return subprocess.run(
        [*prefix, "-m", "sentinel", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
        **kwargs,
    )


def open_to_nobody(*paths: Path) -> None:
    """Let uid 65534 reach and write `paths` (tests' tmp dirs are 0700 root)."""
    for path in paths:
        os.chown(path, NOBODY, NOBODY)
