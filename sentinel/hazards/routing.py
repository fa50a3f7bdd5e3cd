"""Who owns a hazard, by when it must be rectified, and who hears when that slips."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.core.model import Category, Severity
from sentinel.hazards.config import HazardsConfig


@dataclass(frozen=True, slots=True)
class Assignment:
    """The owner and the deadline (None: no deadline) a new hazard gets."""

    owner: str
    deadline: float | None


class Router:
    """Applies `[hazards]` routes and SLAs."""

    def __init__(self, config: HazardsConfig) -> None:
        self.config = config

    def owner(self, rule: str, category: Category, severity: Severity) -> str:
        """The first matching route's owner, else the default owner."""
        for route in self.config.routes:
            if route.categories and category not in route.categories:
                continue
            if route.severities and severity not in route.severities:
                continue
            if route.rules and rule not in route.rules:
                continue
            return route.owner
        return self.config.default_owner

    def sla(self, severity: Severity) -> float | None:
        """Seconds allowed to rectify a hazard of this severity (None: no deadline)."""
        value = self.config.sla.get(severity.value)
        return float(value) if value else None

    def assign(
        self,
        *,
        rule: str,
        category: Category,
        severity: Severity,
        now: float,
        rule_owner: str = "",
        rule_deadline: float | None = None,
    ) -> Assignment:
        """Owner and deadline for a hazard raised now; the rule's own settings win."""
        owner = rule_owner or self.owner(rule, category, severity)
        allowed = rule_deadline if rule_deadline else self.sla(severity)
        return Assignment(owner, now + allowed if allowed else None)

    def escalation_interval(self, severity: Severity) -> float | None:
        """Time between escalation steps once overdue: configured, else the severity's SLA."""
        if self.config.escalation_interval:
            return float(self.config.escalation_interval)
        return self.sla(severity)

    def escalation_target(self, severity: Severity, deadline: float, now: float) -> int:
        """The chain level an overdue hazard should have reached by `now` (0 while on time)."""
        if now <= deadline:
            return 0
        top = max(len(self.config.escalation_chain) - 1, 0)
        step = self.escalation_interval(severity) or 0.0
        if step <= 0:
            return min(1, top)
        return min(1 + int((now - deadline) // step), top)

    def chain_name(self, level: int) -> str:
        """Who sits at `level` of the responsibility chain."""
        chain = self.config.escalation_chain
        if not chain:
            return "owner"
        return chain[min(level, len(chain) - 1)]
