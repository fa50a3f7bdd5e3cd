"""`[hazards]`: ownership, deadlines, escalation, recurrence, retention, who may act
(`[[hazards.routes]]`, `[[hazards.roles]]`, `[hazards.aliases]`, `[hazards.escalation_owners]`)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

from sentinel.core.model import Category, Severity, severity_levels_check
from sentinel.core.settings import Duration, KeyPath, field, frozen_map, non_empty, positive
from sentinel.hazards.roles import RoleConfig


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


def _aliases(value: Mapping[str, str]) -> str | None:
    for key, target in value.items():
        for text in (key, target):
            if text != "agent" and not text.startswith(("os:", "hub:")):
                return f'expected identities like "hub:alice.wang" = "os:alice", got {text!r}'
    return None


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
    # who may act, and who is who (docs/hazards.md "Identities and roles")
    roles: tuple[RoleConfig, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=frozen_map, check=_aliases)
    # a level of escalation_chain -> the owner who becomes accountable when a hazard reaches it
    escalation_owners: Mapping[str, str] = field(default_factory=frozen_map)
    # the hash-chained trail is verified at start and this often (docs/hazards.md "The trail")
    verify_interval: Duration = Duration(3600)  # range: sentinel.config.bounds

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Escalation owners name levels of the chain."""
        chain = set(self.escalation_chain)
        problems: list[tuple[KeyPath, str]] = []
        for level, owner in self.escalation_owners.items():
            key: KeyPath = ("escalation_owners", level)
            if level not in chain:
                problems.append(
                    (key, f"not a level of escalation_chain ({', '.join(self.escalation_chain)})")
                )
            elif not owner.strip():
                problems.append((key, "must not be empty"))
        return problems
