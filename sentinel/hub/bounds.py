"""The allowed range of every number in hub.toml and in the inventory, checked at load.

The hub's counterpart of sentinel/config/bounds.py (the agent's): a value outside its range is
one error line naming file and key (`HubConfigError`, `InventoryError`), never an exception from
deeper down. Every number, duration and size the hub's config dataclasses declare must match an
entry (tests/hub/test_bounds.py checks both ways), so a new key cannot arrive without its range.
"""

from __future__ import annotations

from sentinel.core.settings import RangeTable

MS, S, MIN, H, D = 0.001, 1.0, 60.0, 3600.0, 86400.0
YEAR = 366 * D
KIB, MIB = 1024, 1024**2

HUB_RANGES: dict[str, tuple[float, float]] = {
    # [hub]
    "hub.workers": (1, 64),  # uvicorn worker processes
    # [database]
    "database.pool_size": (1, 200),
    "database.busy_timeout": (100 * MS, 10 * MIN),
    # [ingest]
    "ingest.max_body": (4 * KIB, 64 * MIB),
    "ingest.tolerance": (10 * S, 1 * H),  # the replay window, each way
    "ingest.batch_size": (1, 10_000),  # tickets per group commit
    "ingest.batch_wait": (0, 1 * S),
    # [actions]
    "actions.lease": (5 * S, 1 * D),
    "actions.max_per_poll": (1, 1_000),
    "actions.keep": (1 * D, 10 * YEAR),
    # [terminals]
    "terminals.silent_after": (10 * S, 30 * D),
    # [web]
    "web.session_lifetime": (1 * MIN, 7 * D),
    "web.session_idle": (1 * MIN, 1 * D),
    "web.lockout_attempts": (1, 100),
    "web.lockout_period": (10 * S, 1 * D),
    "web.page_size": (5, 500),
}

INVENTORY_RANGES: dict[str, tuple[float, float]] = {
    "branches.silent_after": (10 * S, 30 * D),
    "terminals.silent_after": (10 * S, 30 * D),
}

hub_bounds = RangeTable(HUB_RANGES)
"""The Builder's `bounds` for hub.toml."""

inventory_bounds = RangeTable(INVENTORY_RANGES)
"""The Builder's `bounds` for the inventory file."""
