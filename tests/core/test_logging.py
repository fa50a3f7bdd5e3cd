"""Issue 19, item 11: a library's stdlib log record is a structured line, not plain text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sentinel.core import logging as sentinel_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_watchdog_overflow_warning_is_a_json_line(restore_root: None) -> None:
    """watchdog's overflow warning (stdlib logging) lands in the JSON stream with its logger name."""
    out = io.StringIO()
    sentinel_logging.configure("info", "json", stream=out)
    structlog.get_logger("sentinel.x").info("ours")
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    logging.getLogger("urllib3").debug("below the level: dropped")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]  # every line is JSON
    assert [e["event"] for e in lines] == ["ours", "library_log"]
    entry = lines[1]
    assert entry["logger"] == "watchdog.observers.inotify_c" and entry["level"] == "warning"
    assert entry["message"] == "Inotify queue overflowed; filesystem events were lost"
