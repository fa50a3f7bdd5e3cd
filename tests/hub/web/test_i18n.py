"""Both languages: every message translated in both catalogs, placeholders intact, the switch works."""

from __future__ import annotations

import re

import pytest
from babel.messages import pofile

from sentinel.hub.web import i18n
from tests.hub.web.support import Web, csrf_of

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _catalog(locale: str) -> pofile.Catalog:
    with open(i18n.po_path(locale), "rb") as fh:
        return pofile.read_po(fh, locale=locale)


def _strings(value: object) -> list[str]:
    return list(value) if isinstance(value, list | tuple) else [str(value or "")]


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_of_the_pages_is_translated(locale: str) -> None:
    """Extract from templates and code: each msgid is in the catalog, translated, not fuzzy."""
    catalog = _catalog(locale)
    extracted = i18n.extract_catalog()
    problems = []
    for message in extracted:
        if not message.id:
            continue
        found = catalog.get(message.id)
        if found is None:
            problems.append(f"missing: {message.id!r}")
        elif found.fuzzy or not all(_strings(found.string)):
            problems.append(f"untranslated: {message.id!r}")
    stale = [m.id for m in catalog if m.id and extracted.get(m.id) is None]
    assert not problems, f"{i18n.po_path(locale)} (run python -m sentinel.hub.web.i18n update): {problems}"
    assert not stale, f"messages no longer used, run python -m sentinel.hub.web.i18n update: {stale}"


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_translations_keep_their_placeholders(locale: str) -> None:
    """A translation that drops or renames %(name)s would break the page."""
    for message in _catalog(locale):
        if not message.id:
            continue
        wanted = set(_PLACEHOLDER.findall(" ".join(_strings(message.id))))
        for text in _strings(message.string):
            assert set(_PLACEHOLDER.findall(text)) == wanted, (locale, message.id, text)


def test_the_chinese_catalog_is_chinese() -> None:
    """Every zh_CN string holds Chinese characters (a copied English string is caught)."""
    english = [
        m.id
        for m in _catalog("zh_CN")
        if m.id and not any(re.search(r"[\u4e00-\u9fff]", s) for s in _strings(m.string))
    ]
    assert english == []


def test_the_pages_default_to_chinese_and_switch_per_user(web: Web) -> None:
    """zh_CN by default; Olga switches to English, which follows her to a new session; Vera stays."""
    olga = web.login("olga")
    page = olga.get("/ledger")
    assert '<html lang="zh-CN">' in page.text and "隐患台账" in page.text
    olga.post("/locale", data={"csrf": csrf_of(page.text), "locale": "en", "back": "/board"})
    assert "Overdue and escalation board" in olga.get("/board").text
    again = web.login("olga").get("/ledger").text
    assert '<html lang="en">' in again and "Hazard ledger of" in again
    assert '<html lang="zh-CN">' in web.login("vera").get("/ledger").text


def test_the_login_page_follows_the_browser_until_chosen(web: Web) -> None:
    """Accept-Language picks the login page's language; the switch there sets a cookie."""
    client = web.client()
    assert (
        "Log in to the hazard ledger"
        in client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    )
    assert "登录隐患台账" in client.get("/login", headers={"Accept-Language": "zh-CN"}).text
    assert "登录隐患台账" in client.get("/login").text  # the hub's default
    client.post("/login/locale", data={"locale": "en"})
    assert "Log in to the hazard ledger" in client.get("/login").text


def test_negotiate_prefers_the_highest_quality() -> None:
    """Accept-Language parsing."""
    assert i18n.negotiate("fr, en;q=0.5, zh-TW;q=0.9", "en") == "zh_CN"
    assert i18n.negotiate("de", "zh_CN") == "zh_CN"
    assert i18n.negotiate("en-US", "zh_CN") == "en"
