"""The pictures of the main pages in docs/hub.md, taken in Debian's headless Chromium.

    .venv/bin/python -m tests.hub.web.screenshots [DIR]     (default docs/img; `make hub-screenshots`)

A hub with the sample hazards (sentinel.hub.testing.load_sample) and a verifier of the east
primary branch; each page in Simplified Chinese (the staff's language) and the hazard page in
English too. Writes hub-<page>[-en].png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sentinel.hub.testing import make_hub
from tests.hub.web import browser
from tests.hub.web.support import PASSWORD, make_web

PAGES = (
    ("login", "/login", "zh-CN"),
    ("ledger", "/ledger?unit=east", "zh-CN"),
    ("ledger-filtered", "/ledger?unit=east&state=open&state=rectifying&overdue=yes", "zh-CN"),
    ("hazard", "/hazards/{kiosk}", "zh-CN"),
    ("hazard-en", "/hazards/{recurring}", "en-US"),
    ("terminal", "/terminals/teller-01", "zh-CN"),
    ("board", "/board?unit=east", "zh-CN"),
)


def take(directory: Path) -> list[Path]:
    """Take every picture into `directory`; the files written."""
    why = browser.missing()
    if why:
        raise SystemExit(why)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        make_web(make_hub(Path(tmp))) as web,
        browser.serve(web.app) as served,
    ):
        ids = {"kiosk": web.pk("kiosk-01", 1), "recurring": web.pk("teller-01", 4)}
        for name, path, locale in PAGES:
            with browser.chromium(locale=locale, width=1280, height=800) as context:
                page = context.new_page()
                if name != "login":
                    browser.log_in(page, served.url, "vera", PASSWORD)  # language: the browser's
                page.goto(served.url + path.format(**ids))
                target = directory / f"hub-{name}.png"
                page.screenshot(path=str(target), full_page=name not in ("login",))
                written.append(target)
    return written


def main(argv: list[str]) -> int:
    """Write the pictures; print their names."""
    for path in take(Path(argv[0]) if argv else Path("docs/img")):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
