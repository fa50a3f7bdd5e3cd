"""No secret (password, hash, session token, terminal secret) in the pages or in the logs."""

from __future__ import annotations

import sqlalchemy as sa

from sentinel.hub.auth import tables
from tests.hub.web.support import PASSWORD, Web
from tests.support.logs import captured_logs


def _secrets(web: Web) -> list[str]:
    with web.hub.db.read() as c:
        hashes = list(c.execute(sa.select(tables.users.c.password_hash)).scalars())
    terminal_secrets = [str(s) for s in web.made["secrets"].values()]
    return [PASSWORD, *[h for h in hashes if h], *terminal_secrets]


def test_no_secret_reaches_a_page(web: Web) -> None:
    """Every page, as every role, shows no password, hash, terminal secret or session token."""
    pages = [
        "/ledger",
        "/ledger?unit=HO",
        "/board",
        "/terminals",
        "/terminals/teller-01",
        "/account",
        *[f"/hazards/{pk}" for pk in web.made["pk"].values()],
    ]
    for name in ("vic", "ada"):
        client = web.login(name)
        session = next(v for k, v in client.cookies.items() if "sentinel-hub" in k)
        for path in pages:
            html = client.get(path).text
            for secret in [*_secrets(web), session]:
                assert secret not in html, (name, path)
    anonymous = web.client().get("/login").text
    assert all(s not in anonymous for s in _secrets(web))


def test_no_secret_reaches_the_log(web: Web) -> None:
    """Logins (good, bad, locked), actions, CSRF refusals and logout log names, never secrets."""
    with captured_logs() as logs:
        client = web.login("olga")
        session = next(v for k, v in client.cookies.items() if "sentinel-hub" in k)
        web.act(client, web.pk("teller-01", 1), "ack", note="ok")
        client.post(f"/hazards/{web.pk('teller-01', 1)}/actions", data={"csrf": "x", "action": "ack"})
        for _ in range(6):
            web.post_login(web.client(), "vera", "wrong: " + PASSWORD)
        web.post_login(web.client(), PASSWORD, PASSWORD)  # a password typed into the name field
    text = repr(logs)
    assert "hub_login" in text and "hub_login_failed" in text and "hub_user_locked" in text
    for secret in [*_secrets(web), session]:
        assert secret not in text
    failed = [e for e in logs if e["event"] == "hub_login_failed"]
    assert any(str(e["user"]).startswith("unknown:") for e in failed)


def test_no_secret_reaches_an_export_or_report(web: Web) -> None:
    """With people logged in, the ledger exports and the inspection report hold no secret."""
    from sentinel.hub.reports import Period, export_ledger, inspection_report, report_markdown

    client = web.login("olga")
    session = next(v for k, v in client.cookies.items() if "sentinel-hub" in k)
    web.act(client, web.pk("teller-01", 1), "ack", note="noted")
    period = Period(0, web.hub.clock.time() + 86400, "all")
    texts = [export_ledger(web.hub.store, None, period, fmt) for fmt in ("markdown", "csv", "json")]
    texts.append(report_markdown(inspection_report(web.hub.store, None, period)))
    for text in texts:
        for secret in [*_secrets(web), session]:
            assert secret not in text
