"""The suspicious-event detectors as the registry builds them (one factory each).

Kept apart from `registry.py` so that adding or changing a detector touches only detector files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.core.clock import Clock
from sentinel.sources.base import PolledCollector, StreamingCollector
from sentinel.sources.detectors.accounts import AccountsCollector
from sentinel.sources.detectors.auth import AuthCollector
from sentinel.sources.detectors.listeners import ListenersCollector
from sentinel.sources.detectors.outbound import OutboundCollector
from sentinel.sources.detectors.processes import ProcessesCollector
from sentinel.sources.detectors.usb import UsbCollector

if TYPE_CHECKING:
    from sentinel.config.loader import CollectorsConfig

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
