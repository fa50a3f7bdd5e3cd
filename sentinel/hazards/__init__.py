"""Hazard records: the durable, accountable unit of work that every finding becomes."""
