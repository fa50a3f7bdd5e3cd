"""Capturing structlog events in-process, whatever an earlier test configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog


@contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """The structlog events logged inside the block.

    Like structlog.testing.capture_logs, but with logger caching off while capturing and the whole
    configuration restored after: a logger first used here must not stay bound to this capture.
    Reading captured stdout instead depends on where the last configure() pointed the output (an
    in-process CLI run earlier in the same worker logs to stderr): it once read '' that way.
    """
    events: list[dict[str, Any]] = []

    def keep(_logger: Any, method: str, event: dict[str, Any]) -> Any:
        events.append({**event, "log_level": method})
        raise structlog.DropEvent

    before = structlog.get_config()
    structlog.configure(processors=[keep], cache_logger_on_first_use=False)
    try:
        yield events
    finally:
        structlog.configure(**before)
