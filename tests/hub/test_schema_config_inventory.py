"""Schema migrations, hub.toml checks and the inventory (TOML and Prometheus file_sd)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sentinel.hub.config import HubConfigError, build, load
from sentinel.hub.inventory import Inventory, InventoryError
from sentinel.hub.schema import METADATA, SchemaTooNew, current_version, meta, migrate, schema_version


def test_migrate_records_version_and_is_idempotent(hub: Any) -> None:
    """A migrated database has every table and the version; migrating again changes nothing."""
    with hub.db.read() as c:
        assert current_version(c) == schema_version()
        assert set(sa.inspect(c).get_table_names()) >= set(METADATA.tables)
    assert migrate(hub.db.engine) == (schema_version(), schema_version())


def test_a_newer_database_is_refused(hub: Any) -> None:
    """A database written by a newer hub is refused, not damaged."""
    with hub.db.write() as c:
        c.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="99"))
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        migrate(hub.db.engine)


def test_config_defaults_and_every_error_at_once(tmp: Path) -> None:
    """Defaults are usable; unknown keys and out-of-range numbers are all reported with their keys."""
    config = build({})
    assert config.hub.listen == "127.0.0.1:8780" and config.is_sqlite
    with pytest.raises(HubConfigError) as caught:
        build(
            {
                "hub": {"listen": "everywhere", "colour": "red"},
                "ingest": {"tolerance": "2d", "batch_size": 0},
                "database": {"url": "postgresql://hub:pw@db/hub"},
            }
        )
    text = "\n".join(caught.value.problems)
    for expected in (
        "hub.listen",
        "hub.colour: unknown key",
        "ingest.tolerance: must be between",
        "ingest.batch_size: must be between",
        "password_file",
    ):
        assert expected in text
    path = tmp / "hub.toml"
    path.write_text('[hub]\nlisten = "127.0.0.1:9999"\ninventory = "inv.toml"\n')
    loaded = load(path)
    assert loaded.hub.port == 9999 and loaded.hub.inventory == tmp / "inv.toml"


def test_inventory_from_file_sd_like_prometheus(tmp: Path) -> None:
    """Terminals and branches come from the same file_sd files Prometheus relabels."""
    (tmp / "targets").mkdir()
    (tmp / "targets" / "0101.yml").write_text(
        '- targets: ["teller-01.b0101.bank.example:9787", "teller-02.b0101.bank.example:9787"]\n'
        '  labels: {branch: "0101", region: "east"}\n'
    )
    (tmp / "targets" / "0201.json").write_text(
        json.dumps(
            [
                {
                    "targets": ["kiosk-09.b0201.bank.example:9787"],
                    "labels": {"branch": "0201", "region": "west"},
                }
            ]
        )
    )
    (tmp / "inventory.toml").write_text(
        '[head_office]\nid = "HO"\nname = "Head office"\n'
        '[[primary_branches]]\nid = "east"\nname = "East"\n'
        '[[branches]]\nid = "0101"\nname = "Riverside"\nprimary = "east"\nsilent_after = "10m"\n'
        '[file_sd]\nfiles = ["targets/*.yml", "targets/*.json"]\n'
    )
    inv = Inventory.load(tmp / "inventory.toml")
    assert inv.terminal("teller-01").branch_id == "0101" and inv.terminal("teller-01").silent_after == 600
    assert inv.terminal("kiosk-09").primary_id == "west"
    assert [u.id for u in inv.path("0201")] == ["HO", "west", "0201"]
    assert inv.contains("east", "0101") and not inv.contains("west", "0101")
    assert [t.name for t in inv.terminals_in("east")] == ["teller-01", "teller-02"]


def test_inventory_errors_name_the_entry() -> None:
    """Unknown branches, duplicate terminals and bad names are errors, all listed."""
    with pytest.raises(InventoryError) as caught:
        Inventory.from_data(
            {
                "primary_branches": [{"id": "east"}],
                "branches": [{"id": "0101", "primary": "nowhere"}],
                "terminals": [
                    {"name": "t1", "branch": "0101"},
                    {"name": "t1", "branch": "0101"},
                    {"name": "t2", "branch": "9999"},
                ],
            }
        )
    text = "\n".join(caught.value.problems)
    assert "no primary branch 'nowhere'" in text and "listed twice" in text and "no branch '9999'" in text
    with pytest.raises(InventoryError, match=r"terminals\[0\]\.name"):
        Inventory.from_data({"terminals": [{"name": "bad name", "branch": "0101"}]})


def test_hubs_starting_together_sync_the_inventory_without_colliding(hub_factory: Any) -> None:
    """Two hub processes start at once and both write the inventory (a race once seen as a duplicate
    `HO` org unit on PostgreSQL): the syncs take turns and upsert, each succeeds, the rows are right."""
    import threading

    hubs = [hub_factory() for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(hubs))

    def sync(h: Any) -> None:
        try:
            start.wait(30)
            for _ in range(5):
                h.store.sync_inventory()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync, args=(h,)) for h in hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with hubs[0].db.read() as c:
        units = sorted(c.execute(sa.text("SELECT id FROM hub_org_units")).scalars())
        names = sorted(c.execute(sa.text("SELECT name FROM hub_terminals WHERE in_inventory")).scalars())
    assert units == sorted(hubs[0].inventory.units) and names == sorted(hubs[0].inventory.terminals)


def test_an_inventory_change_moves_terminals_and_drops_units(hub: Any) -> None:
    """A branch removed and a terminal moved: the unit goes, the terminal has its new place, a
    terminal no longer listed stays known (its hazards stay) but is out of the inventory."""
    data = {
        "primary_branches": [{"id": "east"}, {"id": "west"}],
        "branches": [{"id": "0101", "primary": "east"}, {"id": "0201", "primary": "west"}],
        "terminals": [{"name": "teller-01", "branch": "0201"}, {"name": "teller-11", "branch": "0201"}],
    }
    hub.store.sync_inventory(Inventory.from_data(data))
    with hub.db.read() as c:
        units = set(c.execute(sa.text("SELECT id FROM hub_org_units")).scalars())
        places = dict(
            c.execute(sa.text("SELECT name, branch_id FROM hub_terminals WHERE in_inventory")).all()
        )
        out = set(c.execute(sa.text("SELECT name FROM hub_terminals WHERE NOT in_inventory")).scalars())
    assert "0102" not in units and {"HO", "east", "west", "0101", "0201"} <= units
    assert places == {"teller-01": "0201", "teller-11": "0201"}
    assert out == {"teller-02", "kiosk-01"}
