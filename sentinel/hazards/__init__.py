"""Hazard records: the durable, accountable unit of work that every finding becomes."""

STORE_FILE = "hazards.db"
"""The store's file name in `[agent] state_dir` (here, so that `sentinel status` finds the store
without importing the schema and its migrations; sentinel.hazards.schema.STORE_FILE is the same)."""
