"""Single sign-on through the trusted reverse proxy, end to end through the pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.hub.web.support import Web, make_web
from tests.support.logs import captured_logs

PROXY = "10.20.0.5"


@pytest.fixture
def sso_web(hub_factory: Callable[..., Any]) -> Iterator[Web]:
    """Pages configured for X-Remote-User from 10.20.0.0/29."""
    hub = hub_factory(web={"sso_header": "X-Remote-User", "trusted_proxies": ["10.20.0.0/29"]})
    with make_web(hub) as web:
        yield web


def test_the_proxy_header_logs_the_user_in(sso_web: Web) -> None:
    """From the proxy, X-Remote-User: olga is Olga, with her roles, without a password."""
    client = sso_web.client(client=(PROXY, 40000))
    page = client.get("/ledger", headers={"X-Remote-User": "Olga"})
    assert page.status_code == 200
    assert "Olga Officer" in page.text
    assert client.get("/ledger?unit=west", headers={"X-Remote-User": "olga"}).status_code == 403


def test_the_header_from_anyone_else_is_ignored_and_logged(sso_web: Web) -> None:
    """A client that sends the header itself gets the login page, and the attempt is logged."""
    client = sso_web.client(client=("10.20.0.77", 40000))
    with captured_logs() as logs:
        page = client.get("/ledger", headers={"X-Remote-User": "ada"})
    assert "/login" in str(page.url)
    assert any(e["event"] == "hub_sso_header_untrusted" for e in logs)


def test_an_unknown_or_disabled_name_from_the_proxy_is_not_logged_in(sso_web: Web) -> None:
    """The proxy can only name users the hub has, and enabled ones."""
    sso_web.site.users.set_disabled("wes", True)
    for name in ("mallory", "wes"):
        client = sso_web.client(client=(PROXY, 40000))
        assert "/login" in str(client.get("/ledger", headers={"X-Remote-User": name}).url)


def test_the_sso_session_ends_when_the_proxy_stops_asserting(sso_web: Web) -> None:
    """A cookie from an SSO login is worthless without the header; another name gets a new session."""
    client = sso_web.client(client=(PROXY, 40000))
    assert client.get("/ledger", headers={"X-Remote-User": "olga"}).status_code == 200
    assert "/login" in str(client.get("/ledger").url)
    client.get("/ledger", headers={"X-Remote-User": "olga"})
    switched = client.get("/account", headers={"X-Remote-User": "vera"})
    assert "Vera Verifier" in switched.text and "Olga Officer" not in switched.text


def test_sso_actions_still_need_the_csrf_token(sso_web: Web) -> None:
    """The proxy's header is no CSRF token: a post without the form's token is refused."""
    client = sso_web.client(client=(PROXY, 40000))
    client.get("/ledger", headers={"X-Remote-User": "olga"})
    pk = sso_web.pk("teller-01", 1)
    response = client.post(
        f"/hazards/{pk}/actions", data={"action": "ack"}, headers={"X-Remote-User": "olga"}
    )
    assert response.status_code == 403
