"""The suspicious-event detectors as the registry builds them (one factory each).

Kept apart from `registry.py` so that adding or changing a detector touches only detector files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.clock import Clock
from sentinel.collectors.accounts import AccountsCollector
from sentinel.collectors.auth import AuthCollector
from sentinel.collectors.base import PolledCollector, StreamingCollector
from sentinel.collectors.listeners import ListenersCollector
from sentinel.collectors.outbound import OutboundCollector
from sentinel.collectors.processes import ProcessesCollector
from sentinel.collectors.usb import UsbCollector

if TYPE_CHECKING:
    from sentinel.config import CollectorsConfig

DETECTORS = ("auth", "usb", "listeners", "processes", "outbound", "accounts")

Factory = tuple[str, bool, Callable[[], PolledCollector | StreamingCollector]]


def detector_factories(c: CollectorsConfig, *, state_dir: Path, clock: Clock) -> list[Factory]:
    """(name, enabled, build) for each detector, with its state directory and clock."""
    return [
        ("auth", c.auth.enabled, lambda: AuthCollector(c.auth, state_dir=state_dir, clock=clock)),
        ("usb", c.usb.enabled, lambda: UsbCollector(c.usb, state_dir=state_dir, clock=clock)),
        (
            "listeners",
            c.listeners.enabled,
            lambda: ListenersCollector(c.listeners, state_dir=state_dir, clock=clock),
        ),
        ("processes", c.processes.enabled, lambda: ProcessesCollector(c.processes, clock=clock)),
        ("outbound", c.outbound.enabled, lambda: OutboundCollector(c.outbound, clock=clock)),
        (
            "accounts",
            c.accounts.enabled,
            lambda: AccountsCollector(c.accounts, state_dir=state_dir, clock=clock),
        ),
    ]
