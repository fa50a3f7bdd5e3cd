"""The web ledger for people: server-rendered pages in Simplified Chinese and English.

`mount(hub)` is what sentinel.hub.app calls: it builds the `Site` (users, sessions, single
sign-on, templates) and returns the pages' routes. Plain HTML and one stylesheet; no script, no
external resource (the terminals' network is closed). docs/hub.md ("The web ledger") describes
the pages, the roles and the logins.
"""

from __future__ import annotations

from typing import Any


def mount(hub: Any) -> Any:
    """The pages for a Hub: `WebParts` with their routes and the session pruning hook (none if disabled)."""
    # start-up time: the pages load only when the app mounts them
    from sentinel.hub.app import WebParts
    from sentinel.hub.web.pages import routes
    from sentinel.hub.web.site import Site

    if not hub.config.web.enabled:
        return WebParts()
    site = Site(hub)

    def prune() -> None:
        site.sessions.prune(now=hub.clock.time())

    return WebParts(routes=routes(site), on_startup=(prune,), extra={"site": site})
