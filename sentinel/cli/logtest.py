"""`sentinel logtest [--json] [FILE]`: what the auth detector makes of log lines, and why.

Like `wazuh-logtest`: lines from FILE (default stdin), each a journal JSON entry when it starts
with `{`, else a syslog line, interpreted in order with the detector's own memory (once-per-
connection facts, sources by process, login hours and root allowlist of the loaded config). For
each line: the parsed record, the events the agent would emit and the enabled rules each counts
toward — or why the line is not an event. `--json` prints one object per line; its keys are
documented in docs/logs.md and stable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from sentinel.cli.common import EXIT_OK, CliError, load_config, printable
from sentinel.core.model import Event
from sentinel.core.timefmt import iso
from sentinel.rules.config import RuleConfig
from sentinel.rules.events import EventRule
from sentinel.sources.detectors.auth import decode_line
from sentinel.sources.detectors.auth_meaning import AuthMeaning, Meaning
from sentinel.sources.parsers.logrecord import LogRecord, Malformed, parse_journal_entry, parse_syslog_line

DESCRIPTION = """\
Show what the auth detector makes of log lines: per line the parsed record, the events the agent
would emit (kind, subject, user, source, ...) and the enabled rules each one counts toward, or
why the line is not an event. A line starting with '{' is a journal entry (journalctl -o json),
any other a syslog line (RFC 3164/5424, ISO stamps, ...). Lines are read in order with the
detector's memory, as the agent reads them. Formats and kinds: docs/logs.md.
"""
JSON_HELP = (
    "one JSON object per input line with keys line, input, format, record, events (each: detector, "
    "kind, subject, time, fields, rules, repeat), note, error"
)


def configure(
    command: str, parser: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Arguments and handler of `logtest`."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config(parser)
    parser.add_argument("file", nargs="?", metavar="FILE", help="the lines to test (default: standard input)")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    parser.set_defaults(func=cmd_logtest)


def cmd_logtest(args: argparse.Namespace) -> int:
    """Interpret every line and print what became of it."""
    cfg = load_config(args)
    auth = cfg.section("collectors.auth")
    meaning = AuthMeaning(login_hours=auth.login_hours, root_allowlist=auth.root_allowlist)
    rules = [(r, EventRule(r)) for r in cfg.enabled_rules if r.event]
    described = {r.name: describe(r) for r, _ in rules}
    for number, raw in enumerate(_lines(args.file), start=1):
        result = examine(number, raw, meaning, rules, now=time.time())
        if args.json:
            print(json.dumps(result, ensure_ascii=False, sort_keys=True), flush=True)
        else:
            print(render(result, described), flush=True)
    return EXIT_OK


def describe(rule: RuleConfig) -> str:
    """`name (8 within 2m, by source)`: what a rule counts."""
    parts = [f"{rule.count} within {_duration(rule.window)}" if rule.window else f"{rule.count}"]
    if rule.group_by and rule.group_by != ("subject",):
        parts.append("by " + ", ".join(rule.group_by))
    return f"{rule.name} ({', '.join(parts)})"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _lines(path: str | None) -> Iterator[bytes]:
    if path is None or path == "-":
        yield from _split(sys.stdin.buffer)
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, read lazily
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield from _split(fh)


def _split(stream: BinaryIO) -> Iterable[bytes]:
    for raw in stream:
        yield raw.rstrip(b"\n").removesuffix(b"\r")


def examine(
    number: int, raw: bytes, meaning: AuthMeaning, rules: list[tuple[RuleConfig, EventRule]], *, now: float
) -> dict[str, Any]:
    """The documented JSON object for one input line (see docs/logs.md)."""
    text = decode_line(raw)
    result: dict[str, Any] = {
        "line": number,
        "input": printable(text),
        "format": None,
        "record": None,
        "events": [],
        "note": "",
        "error": None,
    }
    if not text.strip():
        result["note"] = "empty line"
        return result
    journal = text.lstrip().startswith("{")
    try:
        record = parse_journal_entry(raw, now=now)[0] if journal else parse_syslog_line(text, now=now)
    except Malformed as exc:
        result["error"] = str(exc)
        return result
    result["format"] = "journal" if journal else "syslog"
    result["record"] = _record(record)
    outcome: Meaning = meaning.of(record)
    result["events"] = [_event(e, rules, repeat=False) for e in outcome.events] + [
        _event(e, rules, repeat=True) for e in outcome.repeats
    ]
    result["note"] = outcome.note
    return result


def _record(record: LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time": iso(record.time),
        "host": printable(record.host),
        "program": printable(record.program),
        "pid": record.pid,
        "message": printable(record.message),
        "stamped_at_read": record.stamped_at_read,
    }
    if record.origin is not None:
        o = record.origin
        out["origin"] = {
            "comm": o.comm,
            "exe": o.exe,
            "uid": o.uid,
            "unit": o.unit,
            "transport": o.transport,
            "identifier": o.identifier,
        }
    return out


def _event(event: Event, rules: list[tuple[RuleConfig, EventRule]], *, repeat: bool) -> dict[str, Any]:
    return {
        "detector": event.detector,
        "kind": event.kind,
        "subject": printable(event.subject),
        "time": iso(event.time),
        "fields": {k: printable(v) if isinstance(v, str) else v for k, v in event.fields},
        "rules": [] if repeat else [config.name for config, rule in rules if rule.wants(event)],
        "repeat": repeat,
    }


def render(result: dict[str, Any], described: Mapping[str, str] | None = None) -> str:
    """The text form of one line's result (`described`: rule name -> what it counts)."""
    described = described or {}
    head = f"line {result['line']}: "
    if result["error"]:
        return f"{head}not read: {result['error']}\n  {_clip(result['input'])}"
    record = result["record"]
    if record is None:
        return head + str(result["note"])
    pid = f" pid={record['pid']}" if record["pid"] is not None else ""
    stamp = record["time"] + (" (stamped when read)" if record["stamped_at_read"] else "")
    lines = [f"{head}{result['format']} {stamp} host={record['host']} program={record['program']}{pid}"]
    for event in result["events"]:
        fields = " ".join(f"{k}={v}" for k, v in event["fields"].items() if k != "host")
        lines.append(f"  {event['detector']}.{event['kind']} subject={event['subject']} {fields}".rstrip())
        if event["repeat"]:
            lines.append("    repeat of this connection's fact: the agent does not emit it again")
        elif event["rules"]:
            lines.append("    counts toward: " + ", ".join(described.get(n, n) for n in event["rules"]))
        else:
            lines.append("    counts toward: no enabled rule")
    if not result["events"]:
        lines.append(f"  not an event: {result['note'] or 'no authentication fact'}")
    elif result["note"]:
        lines.append(f"  note: {result['note']}")
    return "\n".join(lines)


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
