"""What sentinel.hub.app mounts: the `Site` and the pages' routes.

A module of its own rather than the package's `__init__`, so that the pages importing their
siblings (`from sentinel.hub.web import i18n`) do not import the module that imports them.
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
