"""The hub store: the fleet ledger over one Database, composed of its parts by job.

- sentinel/hub/storebase.py: the database, the inventory's org units and terminals, org scopes;
- sentinel/hub/apply.py: tickets applied in batches (convergence on any delivery order), terminal facts;
- sentinel/hub/ledger.py: what the pages and reports read;
- sentinel/hub/queue.py: the actions queue the terminals pull;
- sentinel/hub/rows.py: between ticket JSON, table rows and the value types.

Several hub processes share one PostgreSQL: every write is one transaction, rows are touched in
a fixed order (no deadlocks between two batches), the snapshot update is conditional on `seq`,
and the actions queue is claimed with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

from sentinel.hub.apply import TicketApply
from sentinel.hub.ledger import NO_FILTER, FleetQueries, LedgerQueries
from sentinel.hub.queue import ActionQueue, HubActionError
from sentinel.hub.storebase import UnknownUnit

__all__ = ["NO_FILTER", "HubActionError", "HubStore", "UnknownUnit"]


class HubStore(TicketApply, LedgerQueries, FleetQueries, ActionQueue):
    """The fleet ledger over one Database (its parts share StoreBase's state)."""
