"""The pages' languages: gettext catalogs (Babel .po files) for Simplified Chinese and English.

The .po files under sentinel/hub/web/locale/ are the source of truth and the only files kept:
they are compiled in memory when the hub starts (a few milliseconds), so no binary .mo can go
stale beside its source. `python -m sentinel.hub.web.i18n update` extracts every message from
the templates and the Python code and merges it into both catalogs (the English one translates
to itself); tests/hub/web/test_i18n.py fails on any message left untranslated in either.

Python code marks strings with `N_()` (a no-op marker the extractor knows); templates translate
with `_()` / `{% trans %}`, so a Python-side label is translated where it is shown.
"""

from __future__ import annotations

import functools
import gettext
import io
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, dates, numbers
from babel.messages import Catalog, extract, mofile, pofile

LOCALE_DIR = Path(__file__).parent / "locale"
PACKAGE_DIR = Path(__file__).parent
LOCALES = ("zh_CN", "en")
LANGUAGE_NAMES = {"zh_CN": "简体中文", "en": "English"}
"""Each language in its own words (the switch shows them untranslated, as is usual)."""
DOMAIN = "messages"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
EXTRACT_DIRS = (PACKAGE_DIR, PACKAGE_DIR.parent / "auth")
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


def po_path(locale: str) -> Path:
    """The catalog of a language."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: str) -> gettext.GNUTranslations:
    """The compiled catalog of a language (compiled once per process from its .po)."""
    with open(po_path(locale), "rb") as fh:
        catalog = pofile.read_po(fh, locale=locale)
    buf = io.BytesIO()
    mofile.write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def negotiate(accept_language: str, default: str) -> str:
    """The best of our languages for an Accept-Language header, else `default`."""
    wanted: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            wanted.append((quality, tag.replace("-", "_")))
    wanted.sort(key=lambda w: -w[0])
    for _, tag in wanted:
        lowered = tag.lower()
        if lowered.startswith("zh"):
            return "zh_CN"
        if lowered.startswith("en"):
            return "en"
    return default


def timezone(name: str) -> tzinfo:
    """A time zone by IANA name (UTC when empty or unknown to this system)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class Formatter:
    """Dates, durations and numbers in one language and time zone, for the templates."""

    def __init__(self, locale: str, tz: tzinfo) -> None:
        self.locale = Locale.parse(locale)
        self.tz = tz

    def datetime(self, ts: float | None) -> str:
        """A moment, to the minute, in the hub's time zone ("—" when unknown)."""
        if ts is None:
            return "—"
        moment = datetime.fromtimestamp(ts, self.tz)
        return dates.format_datetime(moment, "yyyy-MM-dd HH:mm", tzinfo=self.tz, locale=self.locale)

    def iso(self, ts: float | None) -> str:
        """The same moment as RFC 3339 UTC (for <time datetime=…> and titles)."""
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def duration(self, seconds: float) -> str:
        """A length of time in words ("3 days", "3天")."""
        return dates.format_timedelta(timedelta(seconds=abs(seconds)), threshold=1.0, locale=self.locale)

    def number(self, value: float) -> str:
        """A count with the language's grouping."""
        return numbers.format_decimal(value, locale=self.locale)


def extract_catalog() -> Catalog:
    """Every message of the templates and the Python code of the web and auth packages."""
    catalog = Catalog(project="sentinel-hub", domain=DOMAIN, creation_date=datetime(2026, 12, 1, tzinfo=UTC))
    for directory in EXTRACT_DIRS:
        method_map = [(p, m) for p, m in METHOD_MAP if (m == "python" or directory == PACKAGE_DIR)]
        options = {"templates/**.html": JINJA_OPTIONS}
        for filename, lineno, message, comments, context in extract.extract_from_dir(
            str(directory), method_map, options_map=options, keywords=KEYWORDS, comment_tags=("i18n:",)
        ):
            catalog.add(
                message,
                None,
                [(str(Path(directory.name) / filename), lineno)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def update_catalogs(locales: Iterable[str] = LOCALES) -> dict[str, list[str]]:
    """Merge the extracted messages into each catalog; English translates to itself.

    Returns, per language, the messages still without a translation.
    """
    template = extract_catalog()
    missing: dict[str, list[str]] = {}
    for locale in locales:
        path = po_path(locale)
        if path.exists():
            with open(path, "rb") as fh:
                catalog = pofile.read_po(fh, locale=locale)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN)
        created = (
            catalog.creation_date if isinstance(catalog.creation_date, datetime) else template.creation_date
        )
        assert isinstance(created, datetime)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _stable_header(catalog, locale, created)
        for message in catalog:
            if not message.id:
                continue
            if locale == "en" and not _translated(message.string):
                message.string = message.id
        missing[locale] = [str(m.id) for m in catalog if m.id and not _translated(m.string)]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pofile.write_po(fh, catalog, width=100, include_lineno=False, sort_output=False)
    translations.cache_clear()
    return missing


def _stable_header(catalog: Catalog, locale: str, created: datetime) -> None:
    """A header that does not change on every update (no dates, no placeholders)."""
    catalog.project = "sentinel-hub"
    catalog.version = "1"
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "Sentinel maintainers"
    catalog.language_team = LANGUAGE_NAMES.get(locale, locale)
    catalog.creation_date = created
    catalog.revision_date = created
    catalog.fuzzy = False
    catalog.header_comment = (
        f"# The Sentinel hub's pages in {LANGUAGE_NAMES.get(locale, locale)} ({locale}).\n"
        "# Refresh the messages with `python -m sentinel.hub.web.i18n update`; translate the msgstr lines.\n"
        "# tests/hub/web/test_i18n.py fails on any message left untranslated."
    )


def _translated(string: Any) -> bool:
    if isinstance(string, tuple | list):
        return all(bool(s) for s in string)
    return bool(string)


def main(argv: list[str] | None = None) -> int:
    """`python -m sentinel.hub.web.i18n update`: refresh both catalogs from the sources."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["update"]:
        print("usage: python -m sentinel.hub.web.i18n update", file=sys.stderr)
        return 2
    missing = update_catalogs()
    for locale, ids in missing.items():
        for msgid in ids:
            print(f"{po_path(locale)}: untranslated: {msgid!r}")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
