"""Roles per org unit in the pages: a viewer cannot act, an officer cannot close, units confine."""

from __future__ import annotations

import pytest

from tests.hub.web.support import Web, csrf_of


def _forms(html: str) -> set[str]:
    """The actions whose forms a hazard page offers."""
    import re

    return set(re.findall(r'name="action" value="([a-z]+)"', html))


def test_a_viewer_sees_everything_and_is_offered_nothing(web: Web) -> None:
    """Vic (viewer at the head office) reads every unit's hazards and gets no form."""
    client = web.login("vic")
    for terminal, local in (("teller-01", 1), ("teller-11", 1)):
        page = client.get(f"/hazards/{web.pk(terminal, local)}")
        assert page.status_code == 200
        assert _forms(page.text) == set()


@pytest.mark.parametrize("action", ["ack", "start", "resolve", "note", "assign", "cancel"])
def test_a_viewer_cannot_act_even_by_posting_the_form(web: Web, action: str) -> None:
    """A hand-made POST from a viewer is 403 and queues nothing."""
    client = web.login("vic")
    pk = web.pk("teller-01", 1)
    token = csrf_of(client.get("/ledger").text)
    response = client.post(
        f"/hazards/{pk}/actions", data={"csrf": token, "action": action, "note": "n", "owner": "o"}
    )
    assert response.status_code == 403
    assert web.hub.store.actions(hazard_pk=pk, states=["pending"]) == []


def test_an_officer_is_offered_rectification_but_not_verification(web: Web) -> None:
    """Olga (officer, east) may ack/start/resolve/assign/note an open hazard; close/cancel are not hers."""
    client = web.login("olga")
    page = client.get(f"/hazards/{web.pk('teller-01', 1)}")
    assert _forms(page.text) == {"ack", "start", "resolve", "assign", "note", "tick"}
    resolved = client.get(f"/hazards/{web.pk('teller-01', 2)}")
    assert "close" not in _forms(resolved.text)
    assert web.act(client, web.pk("teller-01", 2), "close").status_code == 403


def test_a_verifier_is_offered_close_on_someone_elses_resolution(web: Web) -> None:
    """Vera (verifier, east) may close #2 (resolved by os:alice) and reopen it."""
    client = web.login("vera")
    page = client.get(f"/hazards/{web.pk('teller-01', 2)}")
    assert {"close", "reopen", "cancel", "note", "assign"} <= _forms(page.text)
    assert web.act(client, web.pk("teller-01", 2), "close", note="checked on site").status_code == 200
    [queued] = web.hub.store.actions(hazard_pk=web.pk("teller-01", 2), states=["pending"])
    assert (queued.action, queued.actor_id) == ("close", "hub:vera")


def test_whoever_resolved_is_not_offered_close(web: Web) -> None:
    """Vera resolves kiosk-01 #1 herself: the page offers her no close, says why; a post is refused."""
    client = web.login("vera")
    pk = web.pk("kiosk-01", 1)
    assert web.act(client, pk, "resolve").status_code == 200
    page = client.get(f"/hazards/{pk}")
    assert "close" not in _forms(page.text)
    assert "another person must verify" in page.text or "须由他人验收" in page.text
    refused = web.act(client, pk, "close")
    assert refused.status_code == 409
    assert [a.action for a in web.hub.store.actions(hazard_pk=pk, states=["pending"])] == ["resolve"]


def test_roles_are_confined_to_their_org_unit(web: Web) -> None:
    """Olga (east) cannot see west: its ledger is 403, its hazard and terminal pages 404, its forms 404."""
    client = web.login("olga")
    west_pk = web.pk("teller-11", 1)
    assert client.get("/ledger?unit=west").status_code == 403
    assert client.get("/ledger?unit=0201").status_code == 403
    assert client.get("/board?unit=HO").status_code == 403
    assert client.get(f"/hazards/{west_pk}").status_code == 404
    assert client.get("/terminals/teller-11").status_code == 404
    token = csrf_of(client.get("/ledger").text)
    assert (
        client.post(f"/hazards/{west_pk}/actions", data={"csrf": token, "action": "ack"}).status_code == 404
    )
    assert web.hub.store.actions(hazard_pk=west_pk, states=["pending"]) == []


def test_the_ledger_shows_only_the_viewers_units(web: Web) -> None:
    """Wes (west) sees teller-11's hazard and none of east's on his default ledger."""
    page = web.login("wes").get("/ledger")
    assert "teller-11" in page.text
    assert "teller-01" not in page.text and "kiosk-01" not in page.text


def test_a_user_without_any_role_sees_nothing(web: Web) -> None:
    """A user with no grant is refused every ledger."""
    web.site.users.add("nora", password="correct horse battery staple", now=web.hub.clock.time())
    client = web.client()
    assert web.post_login(client, "nora", "correct horse battery staple").status_code == 403
    assert client.get("/ledger").status_code == 403
    assert client.get(f"/hazards/{web.pk('teller-01', 1)}").status_code == 404
