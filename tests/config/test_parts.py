"""Loading a part of the config (status, hazards): same files and errors for the sections it
reads, nothing about the others; check-config still validates everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.cli import main as cli
from sentinel.config.loader import ConfigError, load, load_part
from sentinel.config.sections import AgentView
from sentinel.config.store_view import StoreView

BROKEN_ELSEWHERE = """
[agent]
state_dir = "state"
branch = "0101"

[hazards]
escalation_chain = ["owner", "branch_manager"]

[collectors.auth]
colour = "blue"

[[rules]]
name = "x"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_part_reads_its_sections_and_ignores_the_others(tmp: Path) -> None:
    """[agent] and [hazards] come through with drop-ins merged; broken collector and rule
    sections are not this command's to report."""
    main = write(tmp / "sentinel.toml", BROKEN_ELSEWHERE)
    write(tmp / "conf.d" / "10.toml", '[agent]\nbranch = "0202"\n')
    agent = load_part(main, AgentView)
    assert (agent.agent.branch, agent.agent.state_dir, agent.source) == ("0202", tmp / "state", main)
    store = load_part(main, StoreView)
    assert store.hazards.escalation_chain == ("owner", "branch_manager") and store.sinks == ()
    with pytest.raises(ConfigError) as info:
        load(main)  # the whole config still finds both
    assert any("collectors.auth.colour: unknown key" in e for e in info.value.errors)
    assert any("rules[0]" in e for e in info.value.errors)


def test_unknown_keys_inside_a_part_are_still_errors(tmp: Path) -> None:
    """A typo in [agent] or a sink level not in the chain fails a part load, naming file and key."""
    main = write(tmp / "sentinel.toml", '[agent]\nstate_dir = "s"\nbranch = "b"\ncolour = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_part(main, AgentView)
    assert info.value.errors == [
        f"{main}: agent.colour: unknown key (known keys: {_agent_keys()})",
    ]
    sink = '[[sinks]]\nname = "f"\ntype = "file"\npath = "t.jsonl"\nlevels = ["regional"]\n'
    write(main, '[agent]\nstate_dir = "s"\nbranch = "b"\n' + sink)
    with pytest.raises(ConfigError) as info:
        load_part(main, StoreView)
    assert "sinks[0].levels" in info.value.errors[0]


def test_check_config_validates_what_status_does_not(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status` answers on a config with a broken collector section; `check-config` exits 2."""
    main = write(tmp / "sentinel.toml", BROKEN_ELSEWHERE)
    assert cli.main(["status", "--config", str(main)]) == 1  # not running, but it answered
    assert "open hazards" in capsys.readouterr().out
    assert cli.main(["check-config", "--config", str(main)]) == 2
    assert "collectors.auth.colour: unknown key" in capsys.readouterr().err


def _agent_keys() -> str:
    from dataclasses import fields

    from sentinel.config.sections import AgentConfig

    return ", ".join(sorted(f.name for f in fields(AgentConfig)))
