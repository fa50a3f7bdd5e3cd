"""The real-process fixtures live in tests/conftest.py and sentinel.testing (re-exported here)."""

from __future__ import annotations

from sentinel.testing import AgentProcess, wait_for_log

__all__ = ["AgentProcess", "wait_for_log"]
