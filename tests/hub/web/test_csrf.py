"""Every state-changing request needs the session's CSRF token and a same-site origin."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.web.support import Web, csrf_of


def _pending(web: Web, pk: int) -> int:
    return len(web.hub.store.actions(hazard_pk=pk, states=["pending"]))


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_an_action_without_the_right_token_is_refused_and_nothing_is_queued(
    web: Web, token: str | None
) -> None:
    """No token, an empty one or a wrong one: 403 and the queue unchanged."""
    client = web.login("olga")
    pk = web.pk("teller-01", 1)
    before = _pending(web, pk)
    data = {"action": "ack"} | ({"csrf": token} if token is not None else {})
    response = client.post(f"/hazards/{pk}/actions", data=data)
    assert response.status_code == 403
    assert _pending(web, pk) == before


def test_another_sessions_token_does_not_work(web: Web) -> None:
    """Tokens are per session: Vera's token in Olga's session is refused."""
    olga, vera = web.login("olga"), web.login("vera")
    pk = web.pk("teller-01", 1)
    vera_token = csrf_of(vera.get(f"/hazards/{pk}").text)
    assert olga.post(f"/hazards/{pk}/actions", data={"csrf": vera_token, "action": "ack"}).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
)
def test_a_cross_site_post_is_refused_even_with_the_token(web: Web, headers: dict[str, str]) -> None:
    """The browser's Origin / Sec-Fetch-Site say another site: refused although the token is right."""
    client = web.login("olga")
    pk = web.pk("teller-01", 1)
    token = csrf_of(client.get(f"/hazards/{pk}").text)
    response = client.post(f"/hazards/{pk}/actions", data={"csrf": token, "action": "ack"}, headers=headers)
    assert response.status_code == 403
    assert _pending(web, pk) == 0


def test_the_same_origin_with_the_token_is_accepted(web: Web) -> None:
    """What a real form post sends (Origin of the hub, same-origin) is accepted."""
    client = web.login("olga")
    pk = web.pk("teller-01", 1)
    token = csrf_of(client.get(f"/hazards/{pk}").text)
    headers = {"Origin": "https://hub.test", "Sec-Fetch-Site": "same-origin"}
    response = client.post(f"/hazards/{pk}/actions", data={"csrf": token, "action": "ack"}, headers=headers)
    assert response.status_code == 200
    assert _pending(web, pk) == 1


@pytest.mark.parametrize(("path", "data"), [("/logout", {}), ("/locale", {"locale": "en"})])
def test_logout_and_the_language_switch_need_the_token_too(web: Web, path: str, data: dict[str, str]) -> None:
    """Even small state changes are POSTs with the token."""
    client = web.login("olga")
    assert client.post(path, data=data).status_code == 403
    assert str(client.get("/ledger").url).endswith("/ledger")  # still logged in


def test_an_anonymous_post_is_refused(web: Web) -> None:
    """Without a session a POST is 403, never a redirect that could replay it."""
    client = web.client(follow_redirects=False)
    assert (
        client.post(f"/hazards/{web.pk('teller-01', 1)}/actions", data={"action": "ack"}).status_code == 403
    )


def test_a_page_is_not_served_to_get_requests_that_change_state(web: Web) -> None:
    """Actions exist only as POST: a GET to the action URL does nothing."""
    client = web.login("olga")
    pk = web.pk("teller-01", 1)
    assert client.get(f"/hazards/{pk}/actions?action=ack").status_code == 405
    assert _pending(web, pk) == 0


def test_pages_forbid_framing_scripts_and_caching(web: Web) -> None:
    """CSP with no script source, no framing, no-store."""
    client = web.login("olga")
    headers = client.get("/ledger").headers
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_behind_a_proxy_that_rewrites_host_the_public_url_is_the_origin(hub_factory: Any) -> None:
    """[hub] public_url = https://ledger.bank.example: its Origin is accepted whatever the Host."""
    from tests.hub.web.support import make_web

    hub = hub_factory(hub={"public_url": "https://ledger.bank.example"})
    with make_web(hub) as web:
        client = web.login("olga")
        pk = web.pk("teller-01", 1)
        token = csrf_of(client.get(f"/hazards/{pk}").text)
        origin = {"Origin": "https://ledger.bank.example", "Host": "127.0.0.1:8780"}
        ok = client.post(f"/hazards/{pk}/actions", data={"csrf": token, "action": "ack"}, headers=origin)
        assert ok.status_code == 200
        evil = {"Origin": "https://evil.example", "Host": "127.0.0.1:8780"}
        bad = client.post(f"/hazards/{pk}/actions", data={"csrf": token, "action": "start"}, headers=evil)
        assert bad.status_code == 403
