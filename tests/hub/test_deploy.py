"""The hub's systemd unit (real systemd-analyze) and the shipped example configs."""

from __future__ import annotations

import re
from pathlib import Path

from sentinel.hub.config import load
from sentinel.hub.inventory import Inventory
from tests.deploy.test_systemd_and_install import exposure

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "sentinel-hub.service"


def test_hub_unit_exposure_is_documented_and_low() -> None:
    """systemd-analyze security scores the hub unit at 1.5 or lower, and docs/hub.md says the score."""
    score, _table = exposure(str(UNIT))
    assert score <= 1.5, score
    documented = re.search(r"exposure of \*\*([0-9.]+)\*\*", (ROOT / "docs" / "hub.md").read_text())
    assert documented and float(documented.group(1)) == score


def test_hub_unit_migrates_then_serves_without_privilege() -> None:
    """No capabilities, its own user, migrate before serve, reload re-reads the inventory."""
    text = UNIT.read_text()
    for line in (
        "User=sentinel-hub",
        "CapabilityBoundingSet=\n",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "UMask=0077",
    ):
        assert line in text
    assert text.index("migrate") < text.index("serve")


def test_shipped_hub_config_and_inventory_load() -> None:
    """config/hub.toml and config/hub-inventory.toml are valid as shipped."""
    config = load(ROOT / "config" / "hub.toml")
    assert config.hub.listen.startswith("127.0.0.1:")
    inventory = Inventory.load(ROOT / "config" / "hub-inventory.toml")
    assert [u.id for u in inventory.path("0101")] == ["HO", "east", "0101"]
