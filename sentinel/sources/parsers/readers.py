"""Reading /proc and /sys files for the device collectors: small, forgiving, and never silent.

The kernel's pseudo-files are the OS boundary of the device collectors. Each collector reads them
under its own `proc_root` / `sys_root` (fixture trees in tests) through a `FileReader`, which:

- returns None for a file that does not exist (hardware that is absent is not an error),
- counts every other failure (permission denied, EIO from a dying sensor, garbage where a number
  belongs) and logs it once per path, so a broken sensor is one line in the log, not one a run,
- exposes the count as `sentinel_device_read_errors_total{collector}`.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import structlog

from sentinel.core.model import MetricSpec, Sample

log = structlog.get_logger("sentinel.collectors")

READ_ERRORS = "sentinel_device_read_errors_total"
READ_ERRORS_SPEC = MetricSpec(
    READ_ERRORS,
    "counter",
    "Unreadable or unparsable /proc and /sys files met by a device collector.",
    ("collector",),
)
MAX_LOGGED_PATHS = 256  # bounded memory for the log-once set
# Errors that mean "nothing there right now" rather than "something is broken": a vanished
# interface or process (ENOENT, ESRCH), a speed file on a link that is down (EINVAL), a sensor
# file the driver lists but cannot answer for (ENODATA, ENXIO, EAGAIN).
_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.ESRCH, errno.EINVAL, errno.ENODATA, errno.ENXIO, errno.EAGAIN}


class FileReader:
    """Reads small text files, counting and logging (once per path) what cannot be read."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.errors = 0
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def text(self, path: Path) -> str | None:
        """The stripped content, or None when the file is absent or unreadable (counted)."""
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as exc:
            if exc.errno in _ABSENT:
                return None
            self.garbage(path, exc.strerror or str(exc))
            return None

    def number(self, path: Path, scale: float = 1.0) -> float | None:
        """The file's number times `scale`, or None (absent, or garbage that is counted)."""
        text = self.text(path)
        if text is None or text == "":
            return None
        try:
            return float(text) * scale
        except ValueError:
            self.garbage(path, f"not a number: {text[:40]!r}")
            return None

    def garbage(self, path: Path | str, problem: str) -> None:
        """Count one bad read; log it the first time this path goes wrong."""
        key = str(path)
        with self._lock:
            self.errors += 1
            first = key not in self._logged and len(self._logged) < MAX_LOGGED_PATHS
            if first:
                self._logged.add(key)
        if first:
            log.warning("device_read_failed", collector=self.collector, path=key, error=problem)

    def sample(self) -> Sample:
        """The error counter as a sample."""
        return Sample.of(READ_ERRORS, self.errors, collector=self.collector)


def parse_key_values(text: str) -> dict[str, str]:
    """`Key: value` or `key value` lines (meminfo, /proc/stat) into a dict of the first word after."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":") if ":" in line else line.partition(" ")
        parts = rest.split()
        if key and parts:
            out[key.strip()] = parts[0]
    return out
