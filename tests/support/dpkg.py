"""Real Debian packages for tests: built with `dpkg-deb --build`, installed, upgraded and removed
by the real `dpkg` into a private root, so the machine's own /usr and dpkg database stay untouched
and tests run in parallel.

`dpkg --root=DIR` keeps its database in DIR/var/lib/dpkg and installs into DIR, but would log to
the system's /var/log/dpkg.log (dpkg.cfg's `log` is not relative to the root): every call here
passes `--log=DIR/var/log/dpkg.log`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def dpkg_available() -> bool:
    """Whether dpkg and dpkg-deb are installed (Debian and derivatives)."""
    return bool(shutil.which("dpkg") and shutil.which("dpkg-deb"))


@contextmanager
def lock_held(lock: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds `lock` as dpkg does (an fcntl write lock) until the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, time\n"
            f"f = open({str(lock)!r}, 'a+')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('ok', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        yield holder
    finally:
        holder.kill()
        holder.wait(5)


class DpkgRoot:
    """A private dpkg installation under `root`: its admin dir, log and the packages built for it."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.admin = root / "var/lib/dpkg"
        self.log = root / "var/log/dpkg.log"
        self.history = root / "var/log/apt/history.log"
        for directory in (self.admin / "info", self.admin / "updates", self.log.parent, self.history.parent):
            directory.mkdir(parents=True, exist_ok=True)
        (self.admin / "status").touch()
        self.work.mkdir(parents=True, exist_ok=True)

    def build(self, name: str, version: str, files: Mapping[str, str | bytes], *, mode: int = 0o755) -> Path:
        """A .deb of `name` `version` holding `files` (path under the root -> content)."""
        tree = self.work / f"{name}-{version}"
        if tree.exists():
            shutil.rmtree(tree)
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
            "Maintainer: Sentinel tests <tests@example.invalid>\nDescription: test package\n",
            encoding="utf-8",
        )
        for path, content in files.items():
            target = tree / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
            target.chmod(mode)
        deb = self.work / f"{name}_{version}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
            check=True,
            capture_output=True,
        )
        return deb

    def dpkg(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run dpkg on this root (its own log; checked)."""
        command = ["dpkg", f"--root={self.root}", f"--log={self.log}", "--force-not-root", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def install(self, *debs: Path) -> None:
        """`dpkg -i` (an install or an upgrade)."""
        self.dpkg("-i", *map(str, debs))

    def remove(self, *names: str) -> None:
        """`dpkg -r`."""
        self.dpkg("-r", *names)

    def write_history(self, *, start: str, end: str, command: str, user: str, uid: int, lines: str) -> None:
        """Append one block to apt's history.log as apt writes it (for who-ran-it tests)."""
        head = f"\nStart-Date: {start}\nCommandline: {command}\nRequested-By: {user} ({uid})\n"
        block = f"{head}{lines}\nEnd-Date: {end}\n"
        with open(self.history, "a", encoding="utf-8") as fh:
            fh.write(block)
