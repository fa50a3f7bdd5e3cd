"""`[[hazards.roles]]`: who may do what to which hazards — compared on identities, never names.

Each entry governs some `actions`, optionally only for hazards of some `categories`,
`severities` or `owners`; `allow` lists who may do them:

- an identity: `os:alice`, `hub:bob`, `agent`;
- a glob over identities: `hub:*` (anyone the hub authenticated), `os:teller-*`;
- `group:NAME`: an OS login that is a member of Unix group NAME (primary or supplementary),
  looked up on the terminal when the action is made.

The first entry that governs a request decides (as `[[hazards.routes]]` do); a request that no
entry governs is allowed, so a store without roles behaves as before. A refusal names the entry.
The agent's own moves (auto-resolution, escalation) are not people's actions and are not checked.
"""

from __future__ import annotations

import fnmatch
import grp
import pwd
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sentinel.core.model import Category, Severity
from sentinel.core.settings import field, non_empty
from sentinel.hazards.identity import Actor

ROLE_ACTIONS = ("ack", "start", "resolve", "close", "reopen", "cancel", "assign", "note", "check")
"""The people's actions a role can govern (the CLI verbs)."""
_PREFIXES = ("os:", "hub:", "group:", "legacy:")

GroupLookup = Callable[[str], frozenset[str]]


def _actions(value: tuple[str, ...]) -> str | None:
    if not value:
        return f"must list at least one action ({', '.join(ROLE_ACTIONS)})"
    bad = [a for a in value if a not in ROLE_ACTIONS]
    return f"unknown action {bad[0]!r} (known: {', '.join(ROLE_ACTIONS)})" if bad else None


def _patterns(value: tuple[str, ...]) -> str | None:
    bad = [p for p in value if p != "agent" and not (p.startswith(_PREFIXES) and len(p.split(":", 1)[1]) > 0)]
    if bad:
        return f'expected "os:NAME", "hub:NAME", "group:NAME", "agent" or a glob like "hub:*", got {bad[0]!r}'
    return None


@dataclass(frozen=True, slots=True)
class RoleConfig:
    """One `[[hazards.roles]]` entry (first governing entry decides)."""

    name: str = field(check=non_empty)
    actions: tuple[str, ...] = field((), check=_actions)
    allow: tuple[str, ...] = field((), check=_patterns)  # empty: nobody may
    categories: tuple[Category, ...] = ()
    severities: tuple[Severity, ...] = ()
    owners: tuple[str, ...] = ()

    def governs(self, action: str, *, category: str, severity: str, owner: str) -> bool:
        """Whether this entry decides `action` on a hazard of that category, severity and owner."""
        if action not in self.actions:
            return False
        if self.categories and category not in self.categories:
            return False
        if self.severities and severity not in self.severities:
            return False
        return not self.owners or owner in self.owners

    def allows(self, actor: Actor, groups_of: GroupLookup) -> bool:
        """Whether `actor` is one of `allow`."""
        for pattern in self.allow:
            if pattern.startswith("group:"):
                if actor.source == "os" and pattern[6:] in groups_of(actor.name):
                    return True
            elif fnmatch.fnmatchcase(actor.id, pattern):
                return True
        return False


def unix_groups(login: str) -> frozenset[str]:
    """The Unix groups of a login name, primary and supplementary (empty when unknown)."""
    try:
        primary = pwd.getpwnam(login).pw_gid
    except KeyError:
        return frozenset()
    return frozenset(g.gr_name for g in grp.getgrall() if g.gr_gid == primary or login in g.gr_mem)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why `[[hazards.roles]]` refused a request: which entry, and the sentence to show."""

    index: int
    role: str
    message: str


def decide(
    roles: Sequence[RoleConfig],
    *,
    action: str,
    category: str,
    severity: str,
    owner: str,
    actor: Actor,
    groups_of: GroupLookup = unix_groups,
) -> Refusal | None:
    """None when `actor` may do `action` to such a hazard, else the refusal of the deciding entry."""
    for index, role in enumerate(roles):
        if not role.governs(action, category=category, severity=severity, owner=owner):
            continue
        if role.allows(actor, groups_of):
            return None
        allowed = ", ".join(role.allow) or "nobody"
        return Refusal(
            index,
            role.name,
            f'{action} refused by role "{role.name}" ([[hazards.roles]] entry {index + 1}): '
            f"{actor.id} is not one of {allowed}",
        )
    return None
