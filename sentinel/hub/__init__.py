"""`sentinel hub`: the fleet's ledger (issue 21).

Each terminal stays the system of record for its own hazards; the hub ingests their signed ticket
streams, keeps the fleet ledger (SQLite embedded, PostgreSQL in production), lets authenticated
people act on it, and queues their actions for the terminals to pull. docs/hub.md describes it.

The hub depends on `sentinel.core`, `sentinel.hazards` (lifecycle, export) and `sentinel.tickets`
(payload) only — never on the agent (DESIGN §2). Its extra dependencies come with
`pip install 'sentinel-agent[hub]'`.
"""
