"""A real hub process, a terminal's own hazard store, and the agent's hub client between them.

Shared by the hub client's tests (tests/hub/test_hubclient.py) and the browser end-to-end test
(tests/hub/web/test_e2e_browser.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from sentinel.agent.hub_client import HubClient
from sentinel.config.sections import HubClientConfig
from sentinel.core.model import Category, Finding, Severity
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.identity import agent_actor
from sentinel.hazards.store import HazardStore
from sentinel.hub.config import load
from sentinel.hub.hub import Hub
from sentinel.hub.ingest import Signed, parse_ticket
from sentinel.hub.testing import SAMPLE_INVENTORY, HubProcess, write_hub_config
from sentinel.tickets import payload
from tests.support.net import free_port


class Setup:
    """A real hub process, a terminal's own store, and the client between them."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.config = write_hub_config(
            tmp / "hub", port=self.port, inventory=SAMPLE_INVENTORY, extra='\n[actions]\nlease = "5s"\n'
        )
        self.hub = Hub(load(self.config))
        self.hub.migrate()
        secret = self.hub.keyring.enroll("teller-01", self.hub.inventory, by="test")
        (tmp / "hub.secret").write_text(secret + "\n")
        self.process = HubProcess(self.config, self.port).wait_ready()
        self.store = HazardStore(
            tmp / "hazards.db", config=HazardsConfig(), terminal="teller-01", branch="0101"
        )
        self.client = HubClient(
            HubClientConfig(url=f"http://127.0.0.1:{self.port}", secret_file=tmp / "hub.secret"),
            self.store,
            terminal="teller-01",
        )

    def raise_hazard(self) -> int:
        """A hazard on the terminal, delivered to the hub as its raise ticket."""
        now = time.time()
        change = self.store.apply(
            Finding(
                rule="disk_full",
                subject="/var",
                state="firing",
                severity=Severity.MAJOR,
                category=Category.STABILITY,
                title="disk full",
                time=now,
                rectification=("free space",),
            )
        )
        assert change is not None
        self.sync(change.hazard_id)
        return change.hazard_id

    def sync(self, hazard_id: int) -> None:
        """Deliver the terminal's record as a ticket (what its webhook sink would do)."""
        record = self.store.get(hazard_id)
        assert record is not None
        history_id = 1000 + len(record.history)
        key = payload.idempotency_key(record.uid, history_id)
        doc = payload.build(
            record=record,
            transition="raised",
            key=key,
            terminal="teller-01",
            branch="0101",
            agent_version="t",
            actor=agent_actor(),
            store_id="store-1",
            at=time.time(),
            note="",
        )
        self.hub.store.apply_tickets([parse_ticket(doc, Signed("teller-01", key, int(time.time())))])

    def pk(self, hazard_id: int) -> int:
        return next(r.pk for r in self.hub.store.ledger(None).rows if r.local_id == hazard_id)

    def close(self) -> None:
        self.process.stop()
        self.store.close()
        self.hub.db.dispose()
