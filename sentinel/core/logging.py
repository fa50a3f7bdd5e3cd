"""structlog set-up, done once by `sentinel run` and the CLI: JSON lines to stdout when not on a
terminal (journald captures them), readable console output on a terminal."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from sentinel.core.model import clean_text
from sentinel.core.redact import MASK, redact_text, secret_name

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class CurrentStream:
    """Writes to whatever sys.stdout/sys.stderr is *now* (tests and daemons swap them)."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        self.name = name

    def _target(self) -> TextIO:
        stream: TextIO = getattr(sys, self.name)
        return stream

    def write(self, text: str) -> int:
        """Write to the current stream."""
        return self._target().write(text)

    def flush(self) -> None:
        """Flush the current stream."""
        self._target().flush()

    def isatty(self) -> bool:
        """Whether the current stream is a terminal."""
        return self._target().isatty()


def _printable_strings(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Undecodable file names (lone surrogates) must not crash a log write to a UTF-8 stream."""
    return {k: clean_text(v) if isinstance(v, str) else v for k, v in event.items()}


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and secret_name(key)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: MASK if _secret_key(k) and v else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _redacted(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """No secret in a log line: fields named like secrets are masked, text goes through redact."""
    return {k: MASK if k not in _OWN_KEYS and secret_name(k) and v else _redact(v) for k, v in event.items()}


_OWN_KEYS = frozenset({"event", "level", "timestamp", "logger", "exception"})


def configure(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | CurrentStream | None = None,
) -> None:
    """Configure structlog (and route stdlib logging through the same level)."""
    out = stream or CurrentStream("stdout")
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        _redacted,
        _printable_strings,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,  # reload may change the level; loggers are cheap here
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ThroughStructlog())
    root.setLevel(LEVELS.get(level, logging.INFO))
    warnings.showwarning = _log_warning


class _ThroughStructlog(logging.Handler):
    """Libraries log with the standard library (watchdog's "Inotify queue overflowed" warning):
    their records become structured lines of the same stream and format as ours —
    `{"event": "library_log", "logger": ..., "message": ...}` — never plain text in a JSON log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            name = record.levelname.lower()
            method = name if name in ("debug", "info", "warning", "error", "critical") else "info"
            extra: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                extra["exc_info"] = record.exc_info
            getattr(structlog.get_logger("library"), method)("library_log", **extra)
        except Exception:  # logging must never raise into the library that logged
            self.handleError(record)


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A library's `warnings.warn` (watchdog's "Callback with id ... already exists" when a
    directory is re-watched) as one structured log line, not two raw lines on stderr."""
    module = filename.rsplit("site-packages/", 1)[-1].removesuffix(".py").replace("/", ".")
    structlog.get_logger("sentinel.warnings").warning(
        "library_warning", category=category.__name__, module=module, line=lineno, message=str(message)
    )
