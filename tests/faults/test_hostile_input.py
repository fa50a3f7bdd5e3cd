"""Hostile input: fuzzed configs and hostile strings through findings, records, exports, tickets,
metrics and logs — only clean errors, never a crash, a hang or a broken output format."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from sentinel.config.loader import ConfigError, load
from sentinel.core.ids import SequentialIds
from sentinel.core.model import Category, Finding, Severity, clean_text, freeze_fields
from sentinel.core.status import AgentStatus
from sentinel.exposition.catalog import agent_collectors
from sentinel.hazards import export
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.rules.text import render
from sentinel.testing import FakeClock
from sentinel.tickets import payload

HOSTILE = [
    "name\nwith newline",
    "\x1b[31mred\x1b[0m",
    "=cmd|' /C calc'!A0",
    "+1",
    "-2",
    "@SUM(1)",
    "$(rm -rf /)",
    "`reboot`",
    "a\x00b",
    "\udcff\udcfe invalid utf-8",
    "/" + "x" * 4096,
    "{subject}{0}{__class__}",
    "emoji 🏦",
    'quote " and \\ backslash',
    "| table | breaker |",
]

toml_text = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            [
                "[agent]",
                "[metrics]",
                "[[rules]]",
                "[hazards]",
                'state_dir = "s"',
                'branch = "b"',
                'listen = "x"',
                "queue_size = -1",
                'for = "5q"',
                'name = "r"',
                'category = "stability"',
                'metric = "m"',
                "threshold = 1",
                'severity = "major"',
                "levels = { huge = 1 }",
                "count = 0",
                "[collectors.health]",
                'interval = "0s"',
                "= =",
                '"unterminated',
            ]
        ),
        max_size=25,
    ).map("\n".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(toml_text)
def test_config_loader_only_raises_config_errors(tmp: Path, text: str) -> None:
    """Any text: either a Config or a ConfigError whose lines all name the file."""
    path = tmp / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load(path)
    except ConfigError as exc:
        assert exc.errors
        assert all(line.startswith(str(path)) for line in exc.errors), exc.errors


@given(st.text())
def test_ticket_payload_always_encodes_to_ascii_json(text: str) -> None:
    """Any string (lone surrogates included) gives parseable ASCII JSON."""
    body = payload.encode({"title": text, "subject": text})
    assert body.isascii()
    assert json.loads(body)["title"] == text


@given(st.text(), st.dictionaries(st.text(max_size=10), st.one_of(st.text(), st.integers(), st.floats())))
def test_templates_insert_values_never_interpret_them(template: str, values: dict[str, object]) -> None:
    """render() never raises and never evaluates a value's own braces."""
    render(template, values)  # type: ignore[arg-type]
    assert render("{x}", {"x": "{__class__}"}) == "{__class__}"


@pytest.fixture
def hostile_store(tmp: Path) -> HazardStore:
    clock = FakeClock()
    # fixed ids: a random store id in the chain head's labels could hold "-2" by chance
    store = HazardStore(
        tmp / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock, ids=SequentialIds()
    )
    for i, text in enumerate(HOSTILE):
        store.apply(
            Finding(
                rule=f"r{i}",
                subject=text,
                state="firing",
                severity=Severity.MAJOR,
                category=Category.DATA_SECURITY,
                title=f"changed {text}",
                time=clock.time(),
                evidence=freeze_fields({"path": text}),
                rectification=(f"check {text}",),
            )
        )
    return store


def test_hostile_strings_survive_the_store_and_the_exports(hostile_store: HazardStore) -> None:
    """Records keep the exact strings; CSV defuses formulas; markdown rows stay one line each."""
    try:
        records = hostile_store.records(full=True)
        assert {r.subject for r in records} == {clean_text(h) for h in HOSTILE}
        assert clean_text("\udcff\udcfe invalid utf-8") == "\\xff\\xfe invalid utf-8"
        rows = list(csv.DictReader(io.StringIO(export.to_csv(records))))
        assert len(rows) == len(HOSTILE)
        for row in rows:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@"))
        md = export.to_markdown(records, terminal="t", branch="b", generated="now")
        table = [line for line in md.splitlines() if re.match(r"^\| \d+ \|", line)]
        assert len(table) == len(HOSTILE)
        assert all(line.count("|") - line.count("\\|") == 11 for line in table)
        json.loads(export.to_json(records))
    finally:
        hostile_store.close()


def test_hostile_strings_never_break_the_exposition(hostile_store: HazardStore, promtool: str) -> None:
    """Paths and titles are not labels; the scrape stays valid for promtool."""
    try:
        registry = CollectorRegistry(auto_describe=False)
        for collector in agent_collectors(
            status=AgentStatus(),
            store=hostile_store,
            specs=dict,
            terminal="t\n",
            branch='b"',
            open_info_limit=100,
        ):
            registry.register(collector)
        text = generate_latest(registry).decode()
        for value in HOSTILE:
            assert value not in text
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        hostile_store.close()


def test_the_code_never_uses_a_shell_or_eval() -> None:
    """No shell=True, os.system, eval or exec anywhere in the package."""
    root = Path(__file__).resolve().parents[2] / "sentinel"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r"shell\s*=\s*True",
            r"\bos\.system\(",
            r"\bos\.popen\(",
            r"(?<![\w.])eval\(",
            r"(?<![\w.])exec\(",
        ):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []


def test_logging_an_undecodable_file_name_does_not_raise(capsys: pytest.CaptureFixture[str]) -> None:
    """A lone surrogate in a log field is escaped, in console and in JSON output."""
    import structlog

    from sentinel.core import logging as sentinel_logging
    from sentinel.core.logging import CurrentStream

    for fmt in ("console", "json"):
        sentinel_logging.configure("info", fmt, stream=CurrentStream("stdout"))  # type: ignore[arg-type]
        structlog.get_logger("t").info("file_changed", path="/data/\udcffname\nline2")
    out = capsys.readouterr().out
    assert "\\xffname" in out
    sentinel_logging.configure("warning", "console", stream=CurrentStream("stderr"))


TERMINAL_CONTROL = "\x1b]0;owned\x07\x1b[31m\x1b[2J\x9b1m\x00\x08"  # OSC title, SGR, clear, CSI, NUL, BS


def test_exports_escape_control_characters(tmp: Path) -> None:
    """Item 9: ESC, BEL and the other controls from a file or user name never reach an export raw."""
    clock = FakeClock()
    store = HazardStore(tmp / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    try:
        for i, text in enumerate((f"/srv/{TERMINAL_CONTROL}.txt", f"root{TERMINAL_CONTROL}")):
            store.apply(
                Finding(
                    rule=f"r{i}",
                    subject=text,
                    state="firing",
                    severity=Severity.MAJOR,
                    category=Category.DATA_SECURITY,
                    title=f"changed {text}",
                    time=clock.time(),
                    evidence=freeze_fields({"path": text}),
                    rectification=(f"check {text}",),
                )
            )
        records = store.records(full=True)
        outputs = {
            "markdown": export.to_markdown(records, terminal="t\x1b[1m", branch="b\x07", generated="now"),
            "csv": export.to_csv(records),
            "json": export.to_json(records),
        }
        for name, text in outputs.items():
            raw = [c for c in text if not c.isprintable() and c != "\n"]
            assert raw == [], (name, sorted(set(raw)))
        assert "\\x1b]0;owned\\x07" in outputs["markdown"] and "\\x1b]0;owned\\x07" in outputs["csv"]
    finally:
        store.close()


@pytest.mark.parametrize("key", ["branch", "terminal_id"])
def test_identity_with_control_characters_is_refused_at_load(tmp: Path, key: str) -> None:
    """Item 9: an ESC in agent.branch (or terminal_id) is one config error, never a label."""
    from sentinel.config.loader import ConfigError, load

    config = tmp / "sentinel.toml"
    config.write_text(
        f'[agent]\nstate_dir = "s"\nbranch = "b"\n{key} = "01\\u001b]0;x\\u0007"\n'.replace(
            'branch = "b"\nbranch', "branch"
        )
    )
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert (
        len(caught.value.errors) == 1
        and f"agent.{key}: must not contain control characters" in (caught.value.errors[0])
    )
