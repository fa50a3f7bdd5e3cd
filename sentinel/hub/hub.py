"""The hub's composition root: one process's config, database, inventory, store, keys and ingest.

`sentinel.hub.app` builds the ASGI app around a Hub; the endpoints (actions, metrics) and the
pages receive it through `request.app.state.hub`.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hub.config import HubConfig
from sentinel.hub.db import Database
from sentinel.hub.ingest import IngestStats, IngestWriter, Verifier
from sentinel.hub.inventory import Inventory, InventoryError
from sentinel.hub.keys import Keyring, load_master_key
from sentinel.hub.schema import migrate
from sentinel.hub.store import HubStore

log = structlog.get_logger("sentinel.hub")


class Hub:
    """Everything one hub process holds: config, database, inventory, store, keys, ingest."""

    def __init__(
        self,
        config: HubConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        db: Database | None = None,
        inventory: Inventory | None = None,
        master_key: bytes | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.db = db or Database.from_config(config)
        self.inventory = inventory or load_inventory(config)
        self.store = HubStore(
            self.db, self.inventory, clock=clock, silent_after=config.terminals.silent_after
        )
        key = master_key if master_key is not None else load_master_key(config.hub.key_file, create=True)
        self.keyring = Keyring(self.db, key, clock=clock)
        self.verifier = Verifier(
            self.keyring, lambda: self.inventory, tolerance=config.ingest.tolerance, clock=clock
        )
        self.stats = IngestStats()
        self.writer = IngestWriter(
            self.store, self.stats, batch_size=config.ingest.batch_size, batch_wait=config.ingest.batch_wait
        )

    def migrate(self) -> tuple[int, int]:
        """Bring the schema up to date and write the inventory into it."""
        found = migrate(self.db.engine)
        self.store.sync_inventory(self.inventory)
        return found

    def reload_inventory(self) -> bool:
        """Re-read the inventory file; a bad file keeps the old one (and says so)."""
        try:
            fresh = load_inventory(self.config)
        except InventoryError as exc:
            log.error("hub_inventory_invalid", problems=exc.problems, keeps="the previous inventory")
            return False
        self.inventory = fresh
        self.store.sync_inventory(fresh)
        log.info("hub_inventory_reloaded", terminals=len(fresh.terminals), units=len(fresh.units))
        return True

    async def startup(self) -> None:
        """Start the group-commit writer."""
        await self.writer.start()

    async def shutdown(self) -> None:
        """Drain the writer and close the database."""
        await self.writer.stop()
        self.db.dispose()


def load_inventory(config: HubConfig) -> Inventory:
    """The inventory hub.toml names, or an empty one (head office only) when none is set."""
    if config.hub.inventory is None:
        return Inventory.from_data({})
    return Inventory.load(Path(config.hub.inventory))
