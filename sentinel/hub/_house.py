"""The sentinel modules the hub may use, imported from one place.

Until the house restructure (issue 15, tag `house-landed`) lands, some of these live at their old
paths; this shim is the only file that knows, and it goes away after the tag.
"""

from __future__ import annotations

from sentinel.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards import export
from sentinel.hazards.lifecycle import ACTIVE_STATES, LIVE_STATES, TRANSITIONS, Action, State
from sentinel.model import Category, Severity, clean_text
from sentinel.settings import (
    Builder,
    Duration,
    KeyPath,
    Size,
    field,
    format_path,
    non_empty,
    positive,
)
from sentinel.tickets import payload

__all__ = [
    "ACTIVE_STATES",
    "LIVE_STATES",
    "SYSTEM_CLOCK",
    "TRANSITIONS",
    "Action",
    "Builder",
    "Category",
    "Clock",
    "Duration",
    "KeyPath",
    "Severity",
    "Size",
    "State",
    "clean_text",
    "export",
    "field",
    "format_path",
    "non_empty",
    "payload",
    "positive",
]
