"""Every number in hub.toml and in the inventory has a range (sentinel/hub/bounds.py), as the
agent's config has (issue 19, items 7-8): hostile values give one error line naming the key,
never another exception; a hub built at both ends of every range serves."""

from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from sentinel.core.settings import Size
from sentinel.hub.bounds import HUB_RANGES, INVENTORY_RANGES, hub_bounds, inventory_bounds
from sentinel.hub.config import HubConfig, HubConfigError, load
from sentinel.hub.inventory import Inventory, InventoryError, InventoryFile
from tests.support.settings import HOSTILE, nested, numeric_keys, toml_value

HUB_KEYS = numeric_keys(HubConfig)
INVENTORY_KEYS = numeric_keys(InventoryFile)


@pytest.mark.parametrize(
    ("keys", "table", "ranges"),
    [(HUB_KEYS, hub_bounds, HUB_RANGES), (INVENTORY_KEYS, inventory_bounds, INVENTORY_RANGES)],
    ids=["hub.toml", "inventory"],
)
def test_every_number_has_a_range_and_every_range_a_number(keys: Any, table: Any, ranges: Any) -> None:
    """A new numeric key without a range fails here, and so does a stale range."""
    assert [".".join(p) for p, _ in keys if table(p) is None] == []
    dotted = [".".join(p) for p, _ in keys]
    assert [k for k in ranges if not any(fnmatch.fnmatchcase(d, k) for d in dotted)] == []
    assert len(keys) >= len(ranges) >= 2


def _hub_toml(tmp: Path, path: tuple[str, ...], value: Any) -> Path:
    config = tmp / "hub.toml"
    own = f"[{path[0]}]\n{path[1]} = {toml_value(value)}\n"
    if path[0] != "hub":
        own = f'[hub]\nstate_dir = "{tmp}"\n' + own
    else:
        own = own.replace("[hub]\n", f'[hub]\nstate_dir = "{tmp}"\n')
    config.write_text(own)
    return config


def _value(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = next(v for v in obj if v is not None) if isinstance(obj, tuple) else obj
        obj = getattr(obj, part)
    return obj


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(HUB_KEYS), value=HOSTILE)
def test_hostile_hub_toml_values_give_one_line_per_problem(
    tmp_path: Path, key: tuple[tuple[str, ...], type], value: Any
) -> None:
    """HubConfigError lines naming the key (or the nesting), else a value within its range."""
    path, _ = key
    try:
        loaded = load(_hub_toml(tmp_path, path, value))
    except HubConfigError as exc:
        assert exc.problems and all("\n" not in line for line in exc.problems)
        assert all(path[-1] in line or "nest deeper" in line for line in exc.problems), exc.problems
        return
    low, high = hub_bounds(path)  # type: ignore[misc]
    assert low <= float(_value(loaded, path)) <= high


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(INVENTORY_KEYS), value=HOSTILE)
def test_hostile_inventory_values_give_one_line_per_problem(
    tmp_path: Path, key: tuple[tuple[str, ...], type], value: Any
) -> None:
    """The inventory's numbers (silent_after of a branch or a terminal) the same way."""
    path, _ = key
    entry = f"{path[1]} = {toml_value(value)}\n"
    branch = '[[branches]]\nid = "0101"\nprimary = "east"\n' + (entry if path[0] == "branches" else "")
    terminal = '[[terminals]]\nname = "t1"\nbranch = "0101"\n' + (entry if path[0] == "terminals" else "")
    text = f'[[primary_branches]]\nid = "east"\n\n{branch}\n{terminal}'
    file = tmp_path / "inventory.toml"
    file.write_text(text)
    try:
        inventory = Inventory.load(file)
    except InventoryError as exc:
        assert exc.problems and all("\n" not in line for line in exc.problems)
        assert all("silent_after" in line or "nest deeper" in line for line in exc.problems), exc.problems
        return
    low, high = inventory_bounds(path)  # type: ignore[misc]
    assert (
        low <= float(inventory.terminals["t1"].silent_after or low) <= high
        if path[0] == "terminals"
        else True
    )


def test_a_600_level_array_is_one_line(tmp_path: Path) -> None:
    """Nesting is bounded before tomllib, in hub.toml and in the inventory."""
    with pytest.raises(HubConfigError) as caught:
        load(_hub_toml(tmp_path, ("ingest", "batch_size"), nested(600)))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'hub.toml'}: not valid TOML: line 4: ")
    assert problem.endswith("arrays and inline tables nest deeper than 32 levels")
    file = tmp_path / "inventory.toml"
    file.write_text("x = " + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(InventoryError, match="nest deeper than 32 levels"):
        Inventory.load(file)


def _extreme(tmp: Path, end: int) -> Path:
    tables: dict[str, list[str]] = {}
    for path, kind in HUB_KEYS:
        limit = hub_bounds(path)[end]  # type: ignore[index]
        if kind in (int, Size):
            limit = math.floor(limit) if end else math.ceil(limit)
        if path == ("hub", "workers"):
            limit = 1  # the in-process hub below is one process; `serve` forks workers
        tables.setdefault(path[0], []).append(f"{path[1]} = {toml_value(limit)}")
    tables["hub"] += [f'state_dir = "{tmp}"', 'public_url = "http://testserver"']
    config = tmp / "hub.toml"
    config.write_text("".join(f"[{t}]\n" + "\n".join(lines) + "\n\n" for t, lines in tables.items()))
    return config


@pytest.mark.parametrize("end", [0, 1], ids=["low", "high"])
def test_a_hub_at_both_ends_of_every_range_serves(tmp_path: Path, end: int) -> None:
    """What load() accepts, the hub survives: migrate, ingest a signed ticket, /metrics, a page."""
    from sentinel.hub.app import create_app
    from sentinel.hub.hub import Hub
    from sentinel.hub.testing import SAMPLE_INVENTORY, hazard_record, secret_bytes, signed_headers, ticket

    config = load(_extreme(tmp_path, end))
    hub = Hub(config, inventory=Inventory.from_data(SAMPLE_INVENTORY))
    hub.migrate()
    secret = hub.keyring.enroll("teller-01", hub.inventory, by="test")
    now = hub.clock.time()
    doc = ticket(hazard_record("teller-01", 1, at=now), transition="raised", history_id=1, at=now)
    body = json.dumps(doc).encode()
    headers = signed_headers(secret_bytes(secret), body, msg_id=doc["idempotency_key"], timestamp=int(now))
    with TestClient(create_app(hub)) as client:
        assert client.post("/ingest/v1/tickets", content=body, headers=headers).json() == {
            "status": "accepted"
        }
        assert client.get("/metrics").status_code == 200
        assert client.get("/login").status_code == 200
    assert config.ingest.batch_size == (1, 10_000)[end]  # the extremes are what was loaded
