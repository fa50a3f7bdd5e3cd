"""The provisioned Grafana dashboards: generated, variable-driven, documented."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import grafana_schema

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


def build_module() -> Any:
    spec = importlib.util.spec_from_file_location("grafana_build", ROOT / "deploy" / "grafana" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_and_docs_match_the_builder() -> None:
    """The JSON files and docs/dashboards.md are exactly what build.py writes (no hand drift)."""
    for path, text in build_module().outputs().items():
        assert path.read_text() == text, f"{path} is stale: run python deploy/grafana/build.py"


def test_dashboards_use_the_datasource_variable_never_ds_inputs() -> None:
    """Provisioning cannot fill ${DS_...} inputs; every panel and target uses ${datasource}."""
    assert len(BOARDS) == 2
    for path in BOARDS:
        text = path.read_text()
        assert "${DS_" not in text and "__inputs" not in text
        board = json.loads(text)
        names = [v["name"] for v in board["templating"]["list"]]
        assert names[:3] == ["datasource", "job", "branch"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["description"], panel["title"]
            for target in panel["targets"]:
                assert 'job="$job"' in target["expr"] and 'branch=~"$branch"' in target["expr"], target[
                    "expr"
                ]


def test_terminal_board_drills_down_by_instance() -> None:
    """Every query of the terminal board selects the chosen instance."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/sentinel-terminal.json").read_text())
    assert "instance" in [v["name"] for v in board["templating"]["list"]]
    assert all('instance=~"$instance"' in t["expr"] for p in board["panels"] for t in p["targets"])


def test_it_changes_are_charted_per_branch_and_per_terminal() -> None:
    """Issue 18: the fleet board counts package operations by branch and by terminal, and shows
    changes outside a window, inventory drift and missing peripherals; the terminal board the
    packages changed by action."""
    fleet = json.loads((ROOT / "deploy/grafana/dashboards/sentinel-fleet.json").read_text())
    terminal = json.loads((ROOT / "deploy/grafana/dashboards/sentinel-terminal.json").read_text())

    def exprs(board: dict[str, Any]) -> list[str]:
        return [t["expr"] for p in board["panels"] for t in p["targets"]]

    operations = [e for e in exprs(fleet) if "sentinel_package_operations_total" in e]
    assert any(e.startswith("sum by (branch) (") for e in operations), operations
    assert any(e.startswith("sum by (branch, instance) (") for e in operations), operations
    fleet_text = " ".join(exprs(fleet))
    assert 'rule="package_change_outside_window"' in fleet_text
    assert "count by (branch, digest) (sentinel_inventory_info" in fleet_text
    assert "sentinel_peripherals_missing" in fleet_text
    assert any("sum by (action) (increase(sentinel_package_changes_total" in e for e in exprs(terminal))


def test_every_documented_family_is_charted_or_left_out_with_a_reason() -> None:
    """Each `sentinel_*` row of the metric tables in docs/ is read by a panel or in LEFT_OUT."""
    import re

    build = build_module()
    documented: set[str] = set()
    for doc in (ROOT / "docs").glob("*.md"):
        if doc.name == "hub.md":  # the hub's own /metrics, not an agent's: these boards chart agents
            continue
        documented |= set(re.findall(r"^\| `(sentinel_[a-z0-9_]+)`", doc.read_text(), re.MULTILINE))
    charted = build.charted([build.fleet(), build.terminal()])
    assert sorted(documented - charted - set(build.LEFT_OUT)) == []
    assert sorted(set(build.LEFT_OUT) & charted) == []  # never both


def test_zero_one_gauges_read_as_words_and_rule_levels_colour_the_panels() -> None:
    """Baseline valid and links up have value mappings; filesystem use has the rule's levels."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/sentinel-terminal.json").read_text())
    panels = {p["title"]: p["fieldConfig"]["defaults"] for p in board["panels"]}
    texts = panels["Baseline valid"]["mappings"][0]["options"]
    assert texts["0"]["text"] == "INVALID" and texts["1"]["text"] == "valid"
    steps = [s["value"] for s in panels["Filesystem used"]["thresholds"]["steps"]]
    assert steps == [None, 0.9, 0.97]
    assert all(d.get("unit") for d in panels.values())


def test_dashboards_are_valid_for_grafanas_schema() -> None:
    """Every key is one Grafana's dashboard schema knows (nothing lost in a decode/encode round
    trip through the Foundation SDK's models, panel options and queries included), every value
    has its field's type, and the boards declare the schema version they are checked against."""
    for path in BOARDS:
        board = json.loads(path.read_text())
        assert board["schemaVersion"] == grafana_schema.SCHEMA_VERSION, path.name
        assert grafana_schema.problems(board) == [], path.name


def _first(board: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["type"] == kind)


def _defaults(board: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = _first(board, "timeseries")["fieldConfig"]["defaults"]
    return defaults


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(bogus=1), "$.bogus: not in the schema"),
        (lambda b: b["templating"]["list"][1].update(definition="x"), ".definition: not in the schema"),
        (lambda b: _first(b, "stat")["options"].update(colourMode="x"), ".options.colourMode: not in"),
        (lambda b: _first(b, "timeseries")["targets"][0].update(exp="up"), ".targets[0].exp: not in"),
        (
            lambda b: _first(b, "timeseries")["fieldConfig"]["defaults"]["custom"].update(lineWidht=2),
            "lineWidht",
        ),
        (lambda b: b["links"][0].update(tagz=[]), "$.links[0].tagz: not in the schema"),
        (lambda b: _first(b, "timeseries")["gridPos"].update(w="12"), "grid_pos.w: expected int"),
        (lambda b: _defaults(b).update(decimals="2"), "defaults.decimals: expected float, got '2'"),
        (lambda b: _first(b, "timeseries")["targets"][0].update(legendFormat=5), "expected a string"),
        (lambda b: b.update(graphTooltip=7), "7 is not one of [0, 1, 2]"),
        (
            lambda b: _first(b, "timeseries")["fieldConfig"]["defaults"]["thresholds"].update(mode="x"),
            "'x' is not",
        ),
        (lambda b: _first(b, "timeseries").update(type="graph"), "panel type 'graph' has no model"),
    ],
)
def test_the_schema_check_catches_unknown_keys_wrong_types_and_values(mutate: Any, expected: str) -> None:
    """The check is not a round trip that forgives: each kind of mistake is reported."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/sentinel-terminal.json").read_text())
    broken = copy.deepcopy(board)
    mutate(broken)
    found = grafana_schema.problems(broken)
    assert any(expected in p for p in found), found
