"""Config loading: defaults, drop-ins, rules.d, and one clear line per error with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.cli import main as cli
from sentinel.config.loader import ConfigError, load
from sentinel.core.model import Category, Severity

MINIMAL = '[agent]\nstate_dir = "state"\nbranch = "0101"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    return info.value.errors


def test_minimal_config_gets_documented_defaults(tmp: Path) -> None:
    """Only state_dir and branch are needed; the rest has safe defaults (loopback metrics)."""
    cfg = load(write(tmp / "sentinel.toml", MINIMAL))
    assert cfg.agent.state_dir == tmp / "state"
    assert cfg.metrics.listen == "127.0.0.1:9787"
    assert cfg.agent.terminal_id  # the host name
    assert cfg.hazards.sla["critical"] == 4 * 3600


def test_shipped_config_is_valid() -> None:
    """config/sentinel.toml and its rules.d load without error."""
    root = Path(__file__).resolve().parents[2]
    cfg = load(root / "config" / "sentinel.toml")
    assert cfg.metrics.host == "127.0.0.1"
    assert {r.name for r in cfg.rules} >= {"filesystem_space_low", "memory_high"}


def test_drop_ins_merge_in_name_order(tmp: Path) -> None:
    """conf.d/*.toml override the main file, later files winning."""
    main = write(tmp / "sentinel.toml", MINIMAL + '[metrics]\nlisten = "127.0.0.1:1"\n')
    write(tmp / "conf.d" / "20-late.toml", '[metrics]\nlisten = "127.0.0.1:3"\n')
    write(
        tmp / "conf.d" / "10-early.toml",
        '[metrics]\nlisten = "127.0.0.1:2"\n[agent]\nbranch = "0202"\n',
    )
    cfg = load(main)
    assert cfg.metrics.listen == "127.0.0.1:3"
    assert cfg.agent.branch == "0202"
    assert cfg.agent.state_dir == tmp / "state"


RULE = """
[[rules]]
name = "{name}"
category = "stability"
metric = "m"
threshold = {threshold}
severity = "major"
"""


def test_rules_from_rules_dir_and_override_by_name(tmp: Path) -> None:
    """rules.d rules load; a drop-in rule with the same name replaces the shipped one."""
    main = write(tmp / "sentinel.toml", MINIMAL)
    write(
        tmp / "rules.d" / "a.toml",
        RULE.format(name="one", threshold=1) + RULE.format(name="two", threshold=2),
    )
    write(tmp / "conf.d" / "x.toml", RULE.format(name="two", threshold=9) + "enabled = false\n")
    cfg = load(main)
    rules = {r.name: r for r in cfg.rules}
    assert rules["one"].threshold == 1
    assert rules["two"].threshold == 9 and not rules["two"].enabled
    assert [r.name for r in cfg.enabled_rules] == ["one"]
    assert rules["one"].severity_levels == {Severity.MAJOR: 1}
    assert rules["one"].category is Category.STABILITY


def test_relative_paths_resolve_against_the_file_that_wrote_them(tmp: Path) -> None:
    """A path set in a drop-in is relative to the drop-in's own directory."""
    main = write(tmp / "etc" / "sentinel.toml", MINIMAL)
    write(tmp / "etc" / "conf.d" / "paths.toml", '[agent]\nstate_dir = "../../var/lib/sentinel"\n')
    assert load(main).agent.state_dir == tmp / "var" / "lib" / "sentinel"


def test_every_error_is_reported_not_just_the_first(tmp: Path) -> None:
    """Three problems give three lines."""
    path = write(
        tmp / "s.toml",
        MINIMAL + "[metrics]\nlisten = 5\nbogus = 1\n[hazards]\nrecurrence_count = 0\n",
    )
    errors = errors_of(path)
    assert len(errors) == 3, errors


# The table the issue asks for: each bad config, its one-line message, exit code 2.
BAD_CONFIGS = [
    ("unknown key", MINIMAL + "colour = 1\n", "sentinel.toml: agent.colour: unknown key"),
    (
        "wrong type",
        MINIMAL + 'queue_size = "big"\n',
        'sentinel.toml: agent.queue_size: expected an integer, got "big"',
    ),
    (
        "bad duration",
        MINIMAL + RULE.format(name="r", threshold=1) + 'for = "five"\n',
        'sentinel.toml: rules[0].for: expected a duration like "5m", got "five"',
    ),
    (
        "impossible value",
        MINIMAL + "queue_size = -3\n",
        "sentinel.toml: agent.queue_size: must be between 1 and 10000000, got -3",
    ),
    (
        "missing required key",
        '[agent]\nbranch = "x"\n',
        "sentinel.toml: agent.state_dir: required key is missing",
    ),
    (
        "bad listen address",
        MINIMAL + '[metrics]\nlisten = "localhost"\n',
        'sentinel.toml: metrics.listen: expected "host:port" like "127.0.0.1:9787", got "localhost"',
    ),
    ("invalid TOML", MINIMAL + "[metrics\n", "sentinel.toml: invalid TOML: "),
    (
        "unknown severity",
        MINIMAL + RULE.format(name="r", threshold=1).replace('"major"', '"huge"'),
        "sentinel.toml: rules[0].severity: expected one of 'info', 'minor', 'major', 'critical'",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_gives_one_line_and_exit_2(
    tmp: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, message: str
) -> None:
    """check-config prints one line naming file and key, and exits 2."""
    path = write(tmp / "sentinel.toml", text)
    code = cli.main(["check-config", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert "Traceback" not in err


def test_invalid_toml_names_the_line(tmp: Path) -> None:
    """A TOML syntax error says where it is."""
    path = write(tmp / "sentinel.toml", MINIMAL + "\n\nbroken = \n")
    (line,) = errors_of(path)
    assert "line 6" in line


def test_missing_file(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing config file is one line and exit 2."""
    code = cli.main(["check-config", "--config", str(tmp / "nope.toml")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"sentinel: {tmp / 'nope.toml'}: cannot read: no such file"


def test_unreadable_file_permission_denied(tmp: Path) -> None:
    """A config the agent may not read is one line and exit 2 (root runs without DAC override)."""
    path = write(tmp / "sentinel.toml", MINIMAL)
    path.chmod(0)
    command = [sys.executable, "-m", "sentinel", "check-config", "--config", str(path)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"sentinel: {path}: cannot read: permission denied"


def test_unreadable_file(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that cannot be read as a file (here a directory) is one line and exit 2."""
    path = tmp / "sentinel.toml"
    path.mkdir()
    assert cli.main(["check-config", "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"sentinel: {path}: cannot read: is a directory"


def test_error_in_drop_in_names_the_drop_in(tmp: Path) -> None:
    """The file named is the one that holds the bad key, with its own rule index."""
    main = write(tmp / "sentinel.toml", MINIMAL + RULE.format(name="a", threshold=1))
    drop = write(tmp / "conf.d" / "10-branch.toml", RULE.format(name="b", threshold=1) + 'for = "soon"\n')
    (line,) = errors_of(main)
    assert line.startswith(f"{drop}: rules[0].for: ")


def test_rule_needs_exactly_one_form(tmp: Path) -> None:
    """A rule with neither metric nor event is refused with its path."""
    path = write(
        tmp / "s.toml",
        MINIMAL + '[[rules]]\nname = "x"\ncategory = "stability"\nseverity = "minor"\n',
    )
    (line,) = errors_of(path)
    assert 'rules[0]: needs exactly one of "metric" (threshold) or "event"' in line


def test_env_var_names_the_default_config(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTINEL_CONFIG is used when --config is absent."""
    path = write(tmp / "other.toml", MINIMAL)
    monkeypatch.setenv("SENTINEL_CONFIG", str(path))
    assert load().source == path.resolve()


def test_bad_regex_matchers_fail_at_load(tmp: Path) -> None:
    """A rule whose matcher is not a valid regex is a config error, not a runtime crash."""
    text = MINIMAL + RULE.format(name="r", threshold=1) + 'match = { mountpoint = "~/data(" }\n'
    (line,) = errors_of(write(tmp / "sentinel.toml", text))
    assert "rules[0].match.mountpoint: invalid regular expression" in line


def test_roles_aliases_escalation_owners_and_sink_levels_are_checked(tmp: Path) -> None:
    """[[hazards.roles]], [hazards.aliases], [hazards.escalation_owners] and a sink's levels:
    every mistake is named; a valid set loads."""
    good = MINIMAL + (
        '[hazards.aliases]\n"hub:awang" = "os:alice"\n'
        '[hazards.escalation_owners]\nprimary_branch = "committee-0101"\n'
        '[[hazards.roles]]\nname = "sec"\nactions = ["close"]\ncategories = ["cyber_attack"]\n'
        'allow = ["group:secops", "hub:*"]\n'
        '[[sinks]]\nname = "committee"\ntype = "file"\npath = "t.jsonl"\nlevels = ["primary_branch"]\n'
    )
    cfg = load(write(tmp / "good.toml", good))
    assert cfg.hazards.roles[0].allow == ("group:secops", "hub:*")
    assert cfg.hazards.escalation_owners["primary_branch"] == "committee-0101"
    assert cfg.sinks[0].levels == ("primary_branch",)
    bad_values = MINIMAL + (
        '[hazards.aliases]\nawang = "alice"\n'
        '[[hazards.roles]]\nname = "r"\nactions = ["approve"]\nallow = ["alice"]\n'
    )
    errors = "\n".join(errors_of(write(tmp / "bad.toml", bad_values)))
    for expected in ("hazards.aliases", "hazards.roles[0].actions", "hazards.roles[0].allow"):
        assert expected in errors, errors
    bad_names = MINIMAL + (
        '[hazards.escalation_owners]\nregion = "x"\n'
        '[[sinks]]\nname = "s"\ntype = "file"\npath = "t.jsonl"\nlevels = ["region"]\n'
    )
    errors = "\n".join(errors_of(write(tmp / "names.toml", bad_names)))
    for expected in ("hazards.escalation_owners.region", "sinks[0].levels"):
        assert expected in errors, errors
