"""The words the pages use for the ledger's values, marked for translation.

The keys are the stable values of the hazard record (DESIGN §3) and the hub; the templates show
`_(label)`, so each is translated in the reader's language.
"""

from __future__ import annotations

from sentinel.hub.web.i18n import N_

STATES = {
    "open": N_("Registered"),
    "acknowledged": N_("Acknowledged"),
    "rectifying": N_("Rectifying"),
    "resolved": N_("Rectified, awaiting verification"),
    "closed": N_("Verified and closed"),
    "cancelled": N_("Cancelled (false positive)"),
}
STATE_ORDER = ("open", "acknowledged", "rectifying", "resolved", "closed", "cancelled")

SEVERITIES = {
    "critical": N_("Critical"),
    "major": N_("Major"),
    "minor": N_("Minor"),
    "info": N_("Info"),
}
SEVERITY_ORDER = ("critical", "major", "minor", "info")

CATEGORIES = {
    "terminal_equipment": N_("Terminal equipment"),
    "cyber_attack": N_("Cyber attack"),
    "data_security": N_("Data security"),
    "it_change": N_("Unauthorised IT change"),
    "stability": N_("Service stability"),
}
CATEGORY_ORDER = ("terminal_equipment", "cyber_attack", "data_security", "it_change", "stability")

ACTIONS = {
    "ack": N_("Acknowledge"),
    "assign": N_("Assign"),
    "start": N_("Start rectifying"),
    "note": N_("Add a note"),
    "tick": N_("Tick measure"),
    "resolve": N_("Mark rectified"),
    "close": N_("Verify and close"),
    "cancel": N_("Cancel as false positive"),
    "reopen": N_("Reopen (verification failed)"),
}
"""The buttons, by hub action."""

ACTION_DONE = {
    "ack": N_("acknowledge"),
    "assign": N_("assign"),
    "start": N_("start rectifying"),
    "note": N_("note"),
    "tick": N_("tick a measure"),
    "resolve": N_("mark rectified"),
    "close": N_("verify and close"),
    "cancel": N_("cancel"),
    "reopen": N_("reopen"),
}
"""An action as a noun phrase in the pending/refused list."""

HISTORY = {
    "raise": N_("raised"),
    "ack": N_("acknowledged"),
    "start": N_("started rectifying"),
    "resolve": N_("rectified"),
    "close": N_("verified and closed"),
    "reopen": N_("reopened"),
    "cancel": N_("cancelled"),
    "assign": N_("assigned"),
    "note": N_("noted"),
    "check": N_("ticked a measure"),
    "tick": N_("ticked a measure"),
    "escalate": N_("escalated"),
    "occur": N_("occurred again"),
    "severity": N_("severity changed"),
    "recur": N_("recurred"),
}
"""Audit-trail actions (sentinel.hazards.lifecycle.Action) in words."""

TRANSITIONS = {
    "raised": N_("raised"),
    "reopened": N_("reopened"),
    "severity_changed": N_("severity changed"),
    "escalated": N_("escalated"),
    "acknowledged": N_("acknowledged"),
    "rectifying": N_("rectifying"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
    "assigned": N_("assigned"),
    "noted": N_("noted"),
    "checked": N_("measure ticked"),
}
"""Ticket transitions (docs/tickets.md)."""

ACTION_STATES = {
    "pending": N_("Pending: waiting for the terminal"),
    "applied": N_("Applied by the terminal"),
    "refused": N_("Refused by the terminal"),
}

MEASURE_KINDS = {
    "short_term": N_("Immediate measure"),
    "long_term": N_("Long-term mechanism"),
}

ROLES = {
    "viewer": N_("Viewer"),
    "officer": N_("Officer"),
    "verifier": N_("Verifier"),
    "admin": N_("Administrator"),
}

UNIT_KINDS = {
    "head_office": N_("Head office"),
    "primary_branch": N_("Primary branch"),
    "branch": N_("Branch"),
}

ESCALATION = {
    0: N_("Terminal"),
    1: N_("Branch"),
    2: N_("Primary branch"),
    3: N_("Head office"),
}
"""Levels of the default escalation chain (terminal → branch → primary_branch → head_office)."""


def label(table: dict[str, str], value: str | None) -> str:
    """The label for a value, or the value itself when a newer agent sends one we do not know."""
    if value is None:
        return ""
    return table.get(value, value)
