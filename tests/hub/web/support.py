"""Helpers for the page tests: a hub with sample hazards and people, and logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from starlette.testclient import TestClient

from sentinel.hub.app import create_app
from sentinel.hub.auth.roles import Grant, Role
from sentinel.hub.testing import load_sample

PASSWORD = "correct horse battery staple"
BASE_URL = "https://hub.test"
PEOPLE: dict[str, tuple[str, list[Grant]]] = {
    "vic": ("Vic Viewer", [Grant("HO", Role.VIEWER)]),
    "olga": ("Olga Officer", [Grant("east", Role.OFFICER)]),
    "vera": ("Vera Verifier", [Grant("east", Role.VERIFIER)]),
    "wes": ("Wes West", [Grant("west", Role.OFFICER)]),
    "ada": ("Ada Admin", [Grant("HO", Role.ADMIN)]),
}
"""Who the page tests log in as: a viewer of everything, east's officer and verifier, a west officer."""

CHEAP = PasswordHasher.from_parameters(CHEAPEST)
"""Test hashing (argon2id with the smallest parameters): the rules are the same, the CPU is spared."""


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login_token_of(html: str) -> str:
    """The login form's double-submit token."""
    match = re.search(r'name="login_token" value="([^"]+)"', html)
    assert match, "no login token on the page"
    return match.group(1)


@dataclass
class Web:
    """A hub with its pages, the sample hazards and PEOPLE."""

    hub: Any
    app: Any
    made: dict[str, Any]
    clients: list[TestClient] = field(default_factory=list)

    @property
    def site(self) -> Any:
        """The pages' Site (users, sessions, templates)."""
        return self.app.state.web.extra["site"]

    def pk(self, terminal: str, local_id: int) -> int:
        """The hub id of a sample hazard."""
        return int(self.made["pk"][(terminal, local_id)])

    def client(self, **kwargs: Any) -> TestClient:
        """A new browser-like client (its own cookie jar), not logged in.

        Not entered as a context manager: the pages need no lifespan (the ingest writer is the
        backend's), and several clients on one app must not start it on several event loops.
        """
        kwargs.setdefault("base_url", BASE_URL)
        kwargs.setdefault("follow_redirects", True)
        client = TestClient(self.app, **kwargs)
        self.clients.append(client)
        return client

    def login(self, name: str, password: str = PASSWORD, client: TestClient | None = None) -> TestClient:
        """A client logged in as `name` (asserts it worked)."""
        client = client or self.client()
        response = self.post_login(client, name, password)
        assert response.status_code == 200, response.text[:500]
        assert str(response.url).endswith("/ledger"), response.url
        return client

    def post_login(self, client: TestClient, name: str, password: str, *, next_: str = "/ledger") -> Any:
        """Fetch the login form and post it."""
        form = client.get("/login")
        token = login_token_of(form.text)
        return client.post(
            "/login", data={"user": name, "password": password, "login_token": token, "next": next_}
        )

    def act(self, client: TestClient, pk: int, action: str, **fields: Any) -> Any:
        """Post an action form from the hazard page, with that page's CSRF token."""
        page = client.get(f"/hazards/{pk}")
        assert page.status_code == 200, page.status_code
        return client.post(
            f"/hazards/{pk}/actions", data={"csrf": csrf_of(page.text), "action": action, **fields}
        )

    def close(self) -> None:
        """Close every client."""
        for client in self.clients:
            client.close()


@contextmanager
def make_web(hub: Any, **_: Any) -> Iterator[Web]:
    """The pages over `hub`, with the sample hazards and PEOPLE (cheap hashes)."""
    made = load_sample(hub)
    app = create_app(hub)
    web = Web(hub, app, made)
    web.site.users.hasher = CHEAP
    for name, (display, grants) in PEOPLE.items():
        web.site.users.add(name, password=PASSWORD, display=display, grants=grants, now=hub.clock.time())
    try:
        yield web
    finally:
        web.close()
