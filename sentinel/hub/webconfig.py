"""`[web]` of hub.toml: the pages, logins and sessions.

Owned by the hub's web engineer (issue 21, pages & people); the backend only loads it as part of
hub.toml. Every number is range-checked like the rest of the file (sentinel/hub/bounds.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sentinel.core.settings import Duration, field
from sentinel.hub.auth.sso import parse_proxies


def _proxies(value: tuple[str, ...]) -> str | None:
    try:
        parse_proxies(value)
    except ValueError as exc:
        return str(exc)
    return None


def _header(value: str) -> str | None:
    if value and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        return f'expected an HTTP header name such as "X-Remote-User", got "{value}"'
    return None


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f'expected an IANA time zone such as "Asia/Shanghai", got "{value}"'
    return None


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`[web]`."""

    enabled: bool = True
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    session_lifetime: Duration = field(Duration(8 * 3600))
    session_idle: Duration = field(Duration(30 * 60))
    lockout_attempts: int = field(5)
    lockout_period: Duration = field(Duration(15 * 60))
    cookie_secure: bool = True  # False only for plain-HTTP loopback (`make run`)
    sso_header: str = field("", check=_header)  # e.g. "X-Remote-User": trusted only from trusted_proxies
    trusted_proxies: tuple[str, ...] = field((), check=_proxies)  # addresses or networks of the SSO proxy
    page_size: int = field(50)
    timezone: str = field("Asia/Shanghai", check=_zone)  # how pages show times (stored in UTC)
