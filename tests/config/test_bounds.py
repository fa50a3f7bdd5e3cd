"""Issue 19, items 7-8: every number in the config has a range; hostile values give one line.

- every numeric, duration and size key a section declares has a range in config/bounds.py;
- hypothesis sets one key at a time to nested, huge, negative, tiny and non-finite values:
  loading gives ConfigError lines (one per problem, naming the key) or a value in range, never
  another exception; through `check-config` it is one stderr line and exit 2;
- a SIGHUP-style reload with such a value keeps the running config;
- the agent starts with every key at the low end of its range, and again at the high end
  (what check-config accepts, the agent survives).
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.agent.lifecycle import Agent
from sentinel.config.bounds import RANGES, bounds
from sentinel.config.loader import ConfigError, load
from sentinel.config.schema import Config
from sentinel.core.settings import Size
from tests.support.settings import HOSTILE, nested, numeric_keys, toml_value

LISTS: set[tuple[str, ...]] = set()  # numeric keys that hold a list of numbers
KEYS = numeric_keys(Config, LISTS)
# the keys a single-key config can set on its own (lists of tables need their other keys)
SIMPLE = [
    (p, t)
    for p, t in KEYS
    if p[0] not in ("rules", "sinks")
    and p[:2] != ("changes", "windows")
    and "*" not in p
    and "processes" not in p
]


def test_every_number_has_a_range() -> None:
    """A new numeric key without a range in config/bounds.py fails here."""
    missing = [".".join(p) for p, _ in KEYS if bounds(tuple(x if x != "*" else "k" for x in p)) is None]
    assert missing == []
    assert len(KEYS) >= 60


def test_every_range_is_used() -> None:
    """No stale entries: each pattern of bounds.RANGES matches a declared key."""
    import fnmatch

    keys = [".".join(x if x != "*" else "k" for x in p) for p, _ in KEYS]
    unused = [pattern for pattern in RANGES if not any(fnmatch.fnmatchcase(k, pattern) for k in keys)]
    assert unused == []


BASE = '[agent]\nstate_dir = "state"\nbranch = "b"\n'


# the other keys an entry of a list of tables needs, so that only the key under test is wrong
ENTRIES = {
    "rules": 'name = "r"\ncategory = "stability"\nmetric = "m"\nthreshold = 1\nseverity = "minor"\n'
    'window = "1m"\n',
    "sinks": 'name = "s"\ntype = "file"\npath = "tickets.jsonl"\n',
    "collectors.services.processes": 'name = "p"\ncomm = "p"\n',
    "changes.windows": 'ticket = "CHG-1"\ncron = "0 2 * * 6"\nduration = "1h"\n',
}


def setting(path: tuple[str, ...], value: Any) -> str:
    """TOML text that sets `path` (a "*" part: one key of that table) to `value`."""
    if path[-1] == "*":
        table = ".".join(path[:-2])
        inner = "critical" if table == "hazards" else "major"
        key = f"{path[-2]} = {{ {inner} = {toml_value(value)} }}"
    else:
        table, key = ".".join(path[:-1]), f"{path[-1]} = {toml_value(value)}"
    if table in ENTRIES:
        name = path[-2] if path[-1] == "*" else path[-1]
        lines = [line for line in ENTRIES[table].splitlines() if not line.startswith(name + " ")]
        if name == "levels":
            lines = [line for line in lines if not line.startswith(("threshold ", "severity "))]
        return f"\n[[{table}]]\n" + "\n".join(lines) + f"\n{key}\n"
    return f"\n[{table}]\n{key}\n"


def config_with(directory: Path, path: tuple[str, ...], value: Any) -> Path:
    """A minimal config that sets `path` to `value` (TOML text, so any value can be written)."""
    own = f"{path[-1]} = {toml_value(value)}\n" if path[0] == "agent" else setting(path, value)
    text = BASE + own
    config = directory / "sentinel.toml"
    config.write_text(text)
    return config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=HOSTILE)
def test_hostile_values_load_cleanly_or_give_one_line_per_problem(
    tmp_path: Path, key: tuple[tuple[str, ...], type], value: Any
) -> None:
    """Never an exception other than ConfigError; every error line names the key; accepted
    values are within the key's range."""
    path, _ = key
    config = config_with(tmp_path, path, value)
    try:
        loaded = load(config)
    except ConfigError as exc:
        assert exc.errors and all("\n" not in line for line in exc.errors)
        name = [p for p in path if p != "*"][-1]
        assert any(name in line or "nest deeper" in line for line in exc.errors), exc.errors
        return
    got: Any = loaded
    for part in path:
        if part == "*":
            got = next(iter(got.values()))
            continue
        if isinstance(got, tuple):
            got = got[-1]
        names = {f.metadata.get("key") or f.name: f.name for f in dataclasses.fields(got)}
        got = getattr(got, names[part])
    low, high = bounds(tuple(p if p != "*" else "k" for p in path))  # type: ignore[misc]
    for number in got if isinstance(got, tuple) else (got,):
        assert low <= float(number) <= high


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("agent", "status_interval"), 1e308),
        (("collectors", "auth", "poll_interval"), "9999999w"),
        (("metrics", "open_hazards_info_limit"), 99999999999999999999),
        (("agent", "status_interval"), "0.000000001s"),
        (("agent", "queue_size"), nested(600)),
    ],
)
def test_check_config_gives_one_line_and_exit_2(tmp_path: Path, path: tuple[str, ...], value: Any) -> None:
    """The four values of the issue and the 600-level array: one stderr line, exit 2."""
    config = config_with(tmp_path, path, value)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_nested_array_in_a_drop_in_is_one_line(tmp_path: Path) -> None:
    """Item 7 as reported: 600 levels in conf.d; one error naming the drop-in."""
    config = config_with(tmp_path, ("agent", "queue_size"), 10)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "50-nested.toml").write_text("x = " + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.errors == [
        f"{tmp_path / 'conf.d' / '50-nested.toml'}: invalid TOML: line 1: "
        "arrays and inline tables nest deeper than 32 levels"
    ]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Agent, Path]]:
    """An in-process agent (quiet collectors) on a config file the test may rewrite."""
    from tests.support.agent import write_config

    config = write_config(tmp_path, health=False)
    agent = Agent(load(config))
    agent.start()
    try:
        yield agent, config
    finally:
        agent._teardown()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(SIMPLE), value=HOSTILE)
def test_a_reload_with_a_hostile_value_keeps_the_running_config(
    running: tuple[Agent, Path], key: tuple[tuple[str, ...], type], value: Any
) -> None:
    """SIGHUP with a bad value: reload() returns False, the config object is the old one."""
    agent, config = running
    before = agent.config
    original = config.read_text()
    path, _ = key
    table, name = ".".join(path[:-1]), path[-1]
    line = f"{name} = {toml_value(value)}\n"
    text = (
        original.replace("[agent]\n", "[agent]\n" + line, 1)
        if table == "agent"
        else original + f"\n[{table}]\n{line}"
    )
    config.write_text(text)
    try:
        try:
            load(config)
        except ConfigError:
            assert agent.reload() is False
            assert agent.config is before
    finally:
        config.write_text(original)


def extreme_config(directory: Path, end: int) -> Path:
    """Every simple numeric key at one end of its range (0: low, 1: high), quiet detectors."""
    tables: dict[str, list[str]] = {}
    for path, kind in SIMPLE:
        limit = bounds(path)[end]  # type: ignore[index]
        if kind in (int, Size):
            limit = math.floor(limit) if end else math.ceil(limit)
        value = [limit] if path in LISTS else limit
        tables.setdefault(".".join(path[:-1]), []).append(f"{path[-1]} = {toml_value(value)}")
    text = BASE.replace(
        'state_dir = "state"\n', 'state_dir = "state"\n' + "\n".join(tables.pop("agent")) + "\n"
    )
    text += '\n[metrics]\nlisten = "127.0.0.1:0"\n' + "\n".join(tables.pop("metrics", []))
    watched = directory / "watched"
    watched.mkdir(exist_ok=True)
    (watched / "f").write_text("x")
    for table, lines in tables.items():
        text += f"\n[{table}]\n" + "\n".join(lines) + "\n"
        if (
            table.startswith("collectors.")
            and table.count(".") == 1
            and table.split(".")[1]
            in (
                "auth",
                "usb",
                "listeners",
                "processes",
                "outbound",
                "accounts",
                "packages",
            )
        ):
            text += "enabled = false\n"
    text += f'\n[[integrity.watch]]\npath = "{watched}"\npolicy = "critical"\n'
    text += f'\n[[sinks]]\nname = "f"\ntype = "file"\npath = "{directory / "tickets.jsonl"}"\n'
    sink = [(p[-1], bounds(p)[end]) for p, _ in KEYS if p[0] == "sinks"]  # type: ignore[index]
    text += (
        "\n".join(f"{k} = {toml_value(math.floor(v) if k == 'concurrency' else v)}" for k, v in sink) + "\n"
    )
    config = directory / "sentinel.toml"
    config.write_text(text)
    return config


@pytest.mark.parametrize("end", [0, 1], ids=["low", "high"])
def test_the_agent_starts_at_both_ends_of_every_range(tmp_path: Path, end: int) -> None:
    """What check-config accepts, the agent survives: start, serve /metrics twice, stop."""
    config = load(extreme_config(tmp_path, end))
    agent = Agent(config)
    agent.start()
    try:
        assert agent.address is not None
        for _ in range(2):
            url = f"http://127.0.0.1:{agent.address[1]}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200 and b"sentinel_up 1.0" in response.read()
        assert all(c.enabled for c in agent.status.collectors() if c.name in ("health", "integrity"))
    finally:
        agent._teardown()


@pytest.mark.e2e
def test_sighup_with_a_600_level_array_keeps_the_agent_running(start_agent: Any, tmp: Path) -> None:
    """Item 7 as reported, on a real process: the reload is rejected in one line, the agent stays."""
    import signal

    from tests.support.agent import AgentProcess, wait_for_log

    agent: AgentProcess = start_agent(health=False)
    (tmp / "conf.d").mkdir()
    (tmp / "conf.d" / "50-nested.toml").write_text("x = " + "[" * 600 + "]" * 600 + "\n")
    agent.signal(signal.SIGHUP)
    rejected = wait_for_log(agent, "reload_rejected", timeout=20)
    assert "nest deeper than 32 levels" in rejected["error"]
    assert agent.proc.poll() is None
    assert "sentinel_config_last_reload_successful 0.0" in agent.scrape()
    assert "Traceback" not in agent.log()
