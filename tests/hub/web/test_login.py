"""Logging in and out of the pages: sessions, cookie flags, lockout, expiry, login CSRF."""

from __future__ import annotations

from typing import Any

from tests.hub.web.support import PASSWORD, Web, login_token_of


def test_pages_need_a_login_and_come_back_after_it(web: Web) -> None:
    """An anonymous request goes to the login page, and the login returns to where it was."""
    client = web.client()
    page = client.get("/board?unit=east")
    assert "/login?next=" in str(page.url)
    token = login_token_of(page.text)
    after = client.post(
        "/login",
        data={"user": "olga", "password": PASSWORD, "login_token": token, "next": "/board?unit=east"},
    )
    assert after.status_code == 200
    assert str(after.url).endswith("/board?unit=east")


def test_the_session_cookie_is_httponly_secure_samesite_and_host_prefixed(web: Web) -> None:
    """Set-Cookie: __Host-sentinel-hub=…; HttpOnly; Path=/; SameSite=lax; Secure (no Max-Age)."""
    client = web.client(follow_redirects=False)
    token = login_token_of(client.get("/login").text)
    response = client.post("/login", data={"user": "olga", "password": PASSWORD, "login_token": token})
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "sentinel-hub=" in v)
    assert cookie.startswith("__Host-sentinel-hub=")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= flags
    assert not any(f.startswith(("max-age", "expires", "domain")) for f in flags)


def test_a_wrong_password_gets_one_answer_for_every_cause(web: Web) -> None:
    """Unknown user, wrong password, locked or disabled: the same 401 and the same words."""
    web.site.users.set_disabled("wes", True)
    answers = set()
    for name, password in (("olga", "wrong password!"), ("nobody", PASSWORD), ("wes", PASSWORD)):
        response = web.post_login(web.client(), name, password)
        assert response.status_code == 401
        answers.add(response.text.split('role="alert">')[1].split("<")[0])
    assert len(answers) == 1


def test_five_failures_lock_the_account_through_the_login_page(web: Web, clock: Any) -> None:
    """After lockout_attempts failures the right password is refused until lockout_period passes."""
    client = web.client()
    for _ in range(web.hub.config.web.lockout_attempts):
        assert web.post_login(client, "olga", "wrong password!").status_code == 401
    assert web.post_login(client, "olga", PASSWORD).status_code == 401
    clock.advance(web.hub.config.web.lockout_period + 1)
    assert web.post_login(client, "olga", PASSWORD).status_code == 200


def test_the_login_form_needs_its_double_submit_token(web: Web) -> None:
    """A login posted without the form's token (login CSRF) is refused."""
    client = web.client()
    client.get("/login")
    response = client.post("/login", data={"user": "olga", "password": PASSWORD, "login_token": "forged"})
    assert response.status_code == 403
    other = web.client()
    token = login_token_of(other.get("/login").text)
    fresh = web.client()
    assert (
        fresh.post("/login", data={"user": "olga", "password": PASSWORD, "login_token": token}).status_code
        == 403
    )


def test_logout_ends_the_session_on_the_server(web: Web) -> None:
    """After logout the old cookie is worthless even if replayed."""
    client = web.login("olga")
    stolen = dict(client.cookies)
    page = client.get("/ledger")
    from tests.hub.web.support import csrf_of

    client.post("/logout", data={"csrf": csrf_of(page.text)})
    replay = web.client()
    for name, value in stolen.items():
        replay.cookies.set(name, value)
    assert "/login" in str(replay.get("/ledger").url)


def test_an_idle_session_expires(web: Web, clock: Any) -> None:
    """No request for session_idle: the next one goes to the login page."""
    client = web.login("olga")
    clock.advance(web.hub.config.web.session_idle + 1)
    assert "/login" in str(client.get("/ledger").url)


def test_a_session_does_not_outlive_its_lifetime(web: Web, clock: Any) -> None:
    """Even an active session ends at session_lifetime."""
    client = web.login("olga")
    lifetime = web.hub.config.web.session_lifetime
    step = web.hub.config.web.session_idle / 2
    elapsed = 0.0
    while elapsed + step < lifetime:
        clock.advance(step)
        elapsed += step
        assert str(client.get("/ledger").url).endswith("/ledger")
    clock.advance(step)
    assert "/login" in str(client.get("/ledger").url)


def test_a_login_makes_a_new_session_id(web: Web) -> None:
    """A session id planted before the login is never adopted (no fixation)."""
    client = web.client()
    client.cookies.set("__Host-sentinel-hub", "planted-by-someone-else", domain="hub.test")
    web.login("olga", client=client)
    assert client.cookies.get("__Host-sentinel-hub") not in (None, "planted-by-someone-else")
    second = web.login("olga")
    assert second.cookies.get("__Host-sentinel-hub") != client.cookies.get("__Host-sentinel-hub")


def test_next_never_leaves_the_site(web: Web) -> None:
    """An open redirect through ?next= goes to the ledger instead."""
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = web.post_login(web.client(), "olga", PASSWORD, next_=target)
        assert str(response.url) == "https://hub.test/ledger"
