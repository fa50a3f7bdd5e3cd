"""`[hazards]`: ownership, deadlines, escalation, recurrence and retention (and `[[hazards.routes]]`)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

from sentinel.core.model import Category, Severity, severity_levels_check
from sentinel.core.settings import Duration, field, non_empty, positive


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One `[[hazards.routes]]` entry: who owns the hazards it matches (first match wins)."""

    owner: str = field(check=non_empty)
    categories: tuple[Category, ...] = ()
    severities: tuple[Severity, ...] = ()
    rules: tuple[str, ...] = ()


def _default_sla() -> Mapping[str, Duration]:
    return types.MappingProxyType(
        {
            "critical": Duration(4 * 3600),
            "major": Duration(24 * 3600),
            "minor": Duration(7 * 86400),
        }
    )


@dataclass(frozen=True, slots=True)
class HazardsConfig:
    """`[hazards]`: ownership, deadlines, escalation, recurrence and retention."""

    default_owner: str = field("branch-it", check=non_empty)
    routes: tuple[RouteConfig, ...] = ()
    sla: Mapping[str, Duration] = field(default_factory=_default_sla, check=severity_levels_check)
    escalation_chain: tuple[str, ...] = ("terminal", "branch", "primary_branch", "head_office")
    escalation_interval: Duration | None = None
    recurrence_count: int = field(3, check=positive)
    recurrence_window: Duration = field(Duration(30 * 86400), check=positive)
    evidence_keep: int = field(20, check=positive)
    retention: Duration = field(Duration(365 * 86400), check=positive)
    check_interval: Duration = field(Duration(30), check=positive)
