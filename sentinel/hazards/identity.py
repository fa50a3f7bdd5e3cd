"""Who acted: a person as the kernel knows them, a person the hub authenticated, or the agent.

An `Actor` is what the audit trail records for every action, and what the four-eyes rule and
`[[hazards.roles]]` compare — its `id`, never the typed `--by` name (that is only `display`):

- `os:<login name>` for a command run on the terminal (`os_actor`),
- `hub:<hub user>` for an action the hub authenticated and signed (`hub_actor`),
- `agent` for the agent itself (auto-resolution, escalation, drills),
- `legacy:<name>` for rows written before identities existed (migrated stores).

On the terminal the login name comes from the kernel, in this order:

1. the audit login uid (`/proc/self/loginuid`), set by pam_loginuid at login and kept across
   `sudo` and `su`: the person who logged in, whatever account they became;
2. without one (4294967295: no login session, as in some containers), `SUDO_USER` — only when
   the process runs as root (or another account given in `sudo_trusted_uids`, such as the
   store's owner): accounts a person reaches through sudo. In a plain user's shell it is only a
   variable anyone can set, so it is recorded but not believed;
3. else the real uid.

Names come from the passwd database; a uid without an entry is `#<uid>` (`os:#1234`).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from sentinel.core.model import clean_text

UNSET_LOGINUID = 4294967295
AGENT_ID = "agent"
AGENT_DISPLAY = "sentinel"
Source = Literal["os", "hub", "agent", "legacy"]
SOURCES: tuple[Source, ...] = ("os", "hub", "agent", "legacy")
_OS_KEYS = ("uid", "loginuid", "sudo_user", "basis")


def _no_extra() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Actor:
    """One identity in the trail. `id` is compared; `display` is what was typed or is shown."""

    source: Source
    id: str
    display: str
    uid: int | None = None  # os: the real uid of the process
    loginuid: int | None = None  # os: the audit login uid (None: unset)
    sudo_user: str | None = None  # os: SUDO_USER as the environment said
    basis: str = ""  # os: what the id was taken from: "loginuid" | "sudo" | "uid"
    extra: Mapping[str, str] = field(default_factory=_no_extra)  # hub: action_id, proof

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown actor source {self.source!r}")
        if not self.id or not self.display:
            raise ValueError("an actor needs an id and a display name")

    @property
    def name(self) -> str:
        """The id without its source (`os:alice` -> `alice`; `agent` -> `agent`)."""
        return self.id.partition(":")[2] if ":" in self.id else self.id

    @property
    def is_agent(self) -> bool:
        """Whether this is the agent acting on its own."""
        return self.source == "agent"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (trail rows, tickets): `source, id, display`, plus the os or hub details."""
        out: dict[str, Any] = {"source": self.source, "id": self.id, "display": self.display}
        if self.source == "os":
            out |= {
                "uid": self.uid,
                "loginuid": self.loginuid,
                "sudo_user": self.sudo_user,
                "basis": self.basis,
            }
        out |= dict(sorted(self.extra.items()))
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        """Back from `to_json` (keys it does not know become `extra`)."""
        known = {"source", "id", "display", *_OS_KEYS}
        return cls(
            source=data["source"],
            id=str(data["id"]),
            display=str(data.get("display") or data["id"]),
            uid=data.get("uid"),
            loginuid=data.get("loginuid"),
            sudo_user=data.get("sudo_user"),
            basis=str(data.get("basis") or ""),
            extra=MappingProxyType({k: str(v) for k, v in sorted(data.items()) if k not in known}),
        )

    def shown_as(self) -> str:
        """`display (id)` when they differ, else the id: how the ledger names a person."""
        return self.id if self.display in (self.id, self.name) else f"{self.display} ({self.id})"


AGENT = Actor("agent", AGENT_ID, AGENT_DISPLAY)
"""The agent acting on its own (auto-resolution, escalation)."""


def agent_actor(display: str = AGENT_DISPLAY) -> Actor:
    """The agent, shown under another name (a drill's resolver and verifier)."""
    return Actor("agent", AGENT_ID, display)


def legacy_actor(name: str) -> Actor:
    """A name typed before identities were recorded (migrated rows): never an authenticated one."""
    name = name.strip() or "unknown"
    if name == AGENT_DISPLAY:
        return AGENT
    return Actor("legacy", f"legacy:{name}", name)


def _login_name(uid: int, getpwuid: Callable[[int], Any]) -> str:
    try:
        return str(getpwuid(uid).pw_name)
    except KeyError:
        return f"#{uid}"


def read_loginuid(proc_root: Path = Path("/proc")) -> int | None:
    """This process's audit login uid, or None when unset or unreadable."""
    try:
        value = int((proc_root / "self" / "loginuid").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return None if value == UNSET_LOGINUID else value


def os_actor(
    display: str | None = None,
    *,
    proc_root: Path = Path("/proc"),
    environ: Mapping[str, str] = os.environ,
    getuid: Callable[[], int] = os.getuid,
    getpwuid: Callable[[int], Any] = pwd.getpwuid,
    sudo_trusted_uids: Collection[int] = (0,),
) -> Actor:
    """The person running this process, as the kernel says (module docstring); `display` is `--by`."""
    uid = getuid()
    loginuid = read_loginuid(proc_root)
    sudo_user = (environ.get("SUDO_USER") or "").strip() or None
    if loginuid is not None:
        name, basis = _login_name(loginuid, getpwuid), "loginuid"
    elif sudo_user and uid in sudo_trusted_uids:
        name, basis = sudo_user, "sudo"
    else:
        name, basis = _login_name(uid, getpwuid), "uid"
    shown = clean_text(display or "").strip() or name
    return Actor("os", f"os:{name}", shown, uid=uid, loginuid=loginuid, sudo_user=sudo_user, basis=basis)


def hub_actor(user: str, *, display: str = "", action_id: str = "", proof: str = "") -> Actor:
    """A person the hub authenticated; `action_id` (and `proof`, e.g. the signature) are recorded."""
    user = user.strip()
    if not user or any(c.isspace() or not c.isprintable() for c in user):
        raise ValueError(f"a hub action needs the hub user who made it, got {user!r}")
    extra = {k: v for k, v in (("action_id", action_id), ("proof", proof)) if v}
    return Actor("hub", f"hub:{user}", clean_text(display).strip() or user, extra=MappingProxyType(extra))


def named(display: str | None, actor_id: str | None) -> str:
    """How the ledger names who acted: `alice2 (os:alice)` — the typed name, and the identity
    when it says more than the name (not for `os:alice` shown as `alice`, nor the agent)."""
    shown = display or ""
    if not actor_id or actor_id == "agent" or actor_id in (shown, f"os:{shown}"):
        return shown or (actor_id or "")
    return f"{shown} ({actor_id})" if shown else actor_id


def person(actor_id: str, aliases: Mapping[str, str] | None = None) -> str:
    """Who an id is, for four-eyes: `[hazards] aliases` applied, then the bare name, so `os:alice`,
    `hub:alice` and `legacy:alice` are one person (when unsure, the same)."""
    canonical = (aliases or {}).get(actor_id, actor_id)
    return canonical.partition(":")[2] if ":" in canonical else canonical
