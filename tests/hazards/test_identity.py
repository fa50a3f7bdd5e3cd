"""Who acted: identities from the kernel (fixture /proc trees), the hub and the agent; roles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sentinel.hazards.changes import HazardError
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.identity import AGENT, Actor, hub_actor, legacy_actor, named, os_actor, person
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.roles import RoleConfig, decide
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.people import who

USERS = {0: "root", 1001: "alice", 1002: "bob", 998: "sentinel"}


def _getpwuid(uid: int) -> Any:
    if uid not in USERS:
        raise KeyError(uid)
    return SimpleNamespace(pw_name=USERS[uid])


def _proc(tmp: Path, loginuid: int) -> Path:
    (tmp / "self").mkdir(exist_ok=True)
    (tmp / "self" / "loginuid").write_text(f"{loginuid}\n")
    return tmp


def _actor(tmp: Path, *, loginuid: int, uid: int, env: dict[str, str], **kw: Any) -> Actor:
    return os_actor(
        kw.pop("display", None),
        proc_root=_proc(tmp, loginuid),
        environ=env,
        getuid=lambda: uid,
        getpwuid=_getpwuid,
        **kw,
    )


def test_the_login_uid_names_the_person_whatever_account_and_name(tmp: Path) -> None:
    """loginuid 1001 is os:alice as root after sudo, and under any --by; the rest is recorded."""
    actor = _actor(tmp, loginuid=1001, uid=0, env={"SUDO_USER": "bob"}, display="alice2")
    assert (actor.id, actor.display, actor.basis) == ("os:alice", "alice2", "loginuid")
    assert actor.to_json() == {
        "source": "os",
        "id": "os:alice",
        "display": "alice2",
        "uid": 0,
        "loginuid": 1001,
        "sudo_user": "bob",
        "basis": "loginuid",
    }


def test_without_a_login_uid_sudo_user_counts_only_for_accounts_reached_by_sudo(tmp: Path) -> None:
    """Unset loginuid: SUDO_USER names the person for root (and trusted uids), not for a plain user."""
    unset = 4294967295
    assert _actor(tmp, loginuid=unset, uid=0, env={"SUDO_USER": "alice"}).id == "os:alice"
    as_agent = _actor(tmp, loginuid=unset, uid=998, env={"SUDO_USER": "bob"}, sudo_trusted_uids={0, 998})
    assert (as_agent.id, as_agent.basis) == ("os:bob", "sudo")
    forged = _actor(tmp, loginuid=unset, uid=1001, env={"SUDO_USER": "bob"})
    assert (forged.id, forged.basis, forged.sudo_user) == ("os:alice", "uid", "bob")
    assert _actor(tmp, loginuid=unset, uid=4321, env={}).id == "os:#4321"
    assert (
        os_actor(proc_root=tmp / "nothing", environ={}, getuid=lambda: 0, getpwuid=_getpwuid).id == "os:root"
    )


def test_hub_agent_and_legacy_actors_and_how_people_are_compared() -> None:
    """hub:<user> carries the action id; os:x, hub:x and legacy:x are one person unless aliased."""
    hub = hub_actor("alice.wang", action_id="a-17", proof="v1,abc")
    assert hub.to_json() == {
        "source": "hub",
        "id": "hub:alice.wang",
        "display": "alice.wang",
        "action_id": "a-17",
        "proof": "v1,abc",
    }
    assert Actor.from_json(hub.to_json()) == hub
    with pytest.raises(ValueError):
        hub_actor("two words")
    assert legacy_actor("sentinel") == AGENT and legacy_actor("bob").id == "legacy:bob"
    assert person("os:alice") == person("hub:alice") == person("legacy:alice") == "alice"
    assert person("hub:alice.wang", {"hub:alice.wang": "os:alice"}) == "alice"
    assert named("alice2", "os:alice") == "alice2 (os:alice)" and named("alice", "os:alice") == "alice"
    assert named("sentinel", "agent") == "sentinel"


def test_four_eyes_compares_identities_not_names(store: HazardStore, clock: FakeClock) -> None:
    """The resolver under another --by, or through the hub under an alias, cannot close."""
    store.apply(finding(clock, rectification=()))
    store.act(1, Action.RESOLVE, actor=who("alice"))
    with pytest.raises(HazardError, match=r"os:alice resolved it .* you are os:alice .*four-eyes"):
        store.act(1, Action.CLOSE, actor=who("alice", "alice2"))
    with pytest.raises(HazardError, match="four-eyes"):
        store.act(1, Action.CLOSE, actor=hub_actor("alice"))
    with pytest.raises(HazardError, match="the agent closes only drill hazards"):
        store.act(1, Action.CLOSE, actor=AGENT)
    store.act(1, Action.CLOSE, actor=who("bob", "alice2"))
    record = store.get(1)
    assert record is not None and (record.closed_by, record.closed_by_id) == ("alice2", "os:bob")


def test_aliases_join_a_hub_account_to_its_login(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """[hazards.aliases] "hub:awang" = "os:alice": the hub account may not close what alice resolved."""
    store = make_store(HazardsConfig(aliases={"hub:awang": "os:alice"}))
    store.apply(finding(clock, rectification=()))
    store.act(1, Action.RESOLVE, actor=who("alice"))
    with pytest.raises(HazardError, match="four-eyes"):
        store.act(1, Action.CLOSE, actor=hub_actor("awang"))
    store.act(1, Action.CLOSE, actor=hub_actor("zhao.min"))


def test_an_agent_resolution_can_be_closed_by_any_person(store: HazardStore, clock: FakeClock) -> None:
    """Auto-resolved (resolver: the agent) hazards are verified by whoever closes them."""
    store.apply(finding(clock, rectification=()))
    store.apply(finding(clock, state="cleared"))
    record = store.get(1)
    assert record is not None and (record.resolved_by, record.resolved_by_id) == ("sentinel", "agent")
    store.act(1, Action.CLOSE, actor=who("alice"))


ROLES = (
    RoleConfig(
        name="sec-close", actions=("close", "cancel"), categories=("cyber_attack",), allow=("group:secops",)
    ),
    RoleConfig(name="it-owned", actions=("ack", "resolve"), owners=("hw-team",), allow=("os:carol", "hub:*")),
    RoleConfig(name="nobody-cancels", actions=("cancel",), allow=()),
)  # type: ignore[arg-type]


def _decide(action: str, actor: Actor, *, category: str = "stability", owner: str = "it") -> str | None:
    refusal = decide(
        ROLES,
        action=action,
        category=category,
        severity="major",
        owner=owner,
        actor=actor,
        groups_of=lambda login: frozenset({"secops"}) if login == "bob" else frozenset(),
    )
    return refusal.message if refusal else None


def test_roles_first_governing_entry_decides_and_names_itself() -> None:
    """Entries match on action, category and owner; allow takes ids, globs and Unix groups."""
    assert _decide("close", who("bob"), category="cyber_attack") is None
    refused = _decide("close", who("alice"), category="cyber_attack")
    assert refused == (
        'close refused by role "sec-close" ([[hazards.roles]] entry 1): os:alice is not one of group:secops'
    )
    assert _decide("close", hub_actor("bob"), category="cyber_attack") is not None  # groups are OS groups
    assert _decide("close", who("alice")) is None  # no entry governs it: allowed
    assert _decide("ack", who("alice"), owner="hw-team") is not None
    assert _decide("ack", hub_actor("anyone"), owner="hw-team") is None
    assert _decide("cancel", who("bob"), category="cyber_attack") is None  # sec-close came first
    assert "is not one of nobody" in (_decide("cancel", who("bob")) or "")


def test_roles_are_enforced_by_the_store(make_store: Callable[..., HazardStore], clock: FakeClock) -> None:
    """A refused action writes nothing; the agent's own moves are not checked."""
    store = make_store(
        HazardsConfig(roles=(RoleConfig(name="ro", actions=("ack", "note"), allow=("os:carol",)),))
    )
    store.apply(finding(clock))
    with pytest.raises(HazardError, match='ack refused by role "ro"'):
        store.act(1, Action.ACK, actor=who("alice"))
    with pytest.raises(HazardError, match='note refused by role "ro"'):
        store.act(1, Action.NOTE, actor=who("alice"), note="x")
    store.act(1, Action.ACK, actor=who("carol"))
    record = store.get(1)
    assert record is not None and [h.action for h in record.history] == ["raise", "ack"]
