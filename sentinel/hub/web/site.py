"""The pages' plumbing: who is asking (session or single sign-on), CSRF, cookies, templates.

Every page needs a logged-in person, except the login page and the stylesheet. Every request
that changes something is a POST with the session's CSRF token in the form (compared in constant
time), and is also refused when the browser says it comes from another site (Origin,
Sec-Fetch-Site). Cookies are HttpOnly, SameSite=Lax, Secure (`__Host-` prefixed) unless
`[web] cookie_secure = false` for plain-HTTP loopback. Responses carry a strict CSP (no script at
all, nothing from another origin), no-store caching and no framing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sentinel.hub.auth.roles import Grant, HubAction, Role, may, may_read, role_at
from sentinel.hub.auth.sessions import Session, Sessions, same
from sentinel.hub.auth.sso import SsoHeader
from sentinel.hub.auth.users import User, Users
from sentinel.hub.web import i18n, labels, queries, render

log = structlog.get_logger("sentinel.hub.web")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LOCALE_COOKIE = "sentinel-hub-lang"
LOGIN_COOKIE_NAME = "sentinel-hub-login"
SESSION_COOKIE_NAME = "sentinel-hub"
MAX_FORM_BYTES = 64 * 1024
COUNTS_TTL = 15.0
"""Seconds the at-a-glance counts of a unit are reused (a head office's need a scan of every live hazard)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Forbidden(Exception):
    """The person may not do or see this (403)."""


class NotFound(Exception):
    """No such thing, or nothing the person may see (404: existence is not revealed)."""


class BadRequest(Exception):
    """A malformed request (400)."""


@dataclass
class Viewer:
    """The person behind a request, with their grants and language."""

    user: User
    session: Session
    locale: str

    @property
    def grants(self) -> tuple[Grant, ...]:
        """Their roles per org unit."""
        return self.user.grants

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return self.session.csrf

    def role_on(self, path: list[str]) -> Role | None:
        """Their highest role on the unit at the end of `path` (head office first)."""
        return role_at(self.grants, path)

    def may_read(self, path: list[str]) -> bool:
        """Whether they see this unit."""
        return may_read(self.grants, path)

    def may(self, path: list[str], action: str) -> bool:
        """Whether their role on this unit allows `action`."""
        try:
            return may(self.grants, path, HubAction(action))
        except ValueError:
            return False


@dataclass
class Page:
    """What a handler gets: the request, the viewer (None on the login page), the form."""

    request: Request
    viewer: Viewer | None
    form: FormData | None
    set_cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def query(self, name: str) -> str:
        """One query parameter (empty if absent)."""
        return self.request.query_params.get(name, "")

    def queries(self, name: str) -> list[str]:
        """Every value of a repeated query parameter, without empties."""
        return [v for v in self.request.query_params.getlist(name) if v]

    def field(self, name: str) -> str:
        """One form field as text (empty if absent, files ignored)."""
        if self.form is None:
            return ""
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    @property
    def me(self) -> Viewer:
        """The viewer of a page that requires one."""
        assert self.viewer is not None
        return self.viewer


Handler = Callable[["Site", Page], Response]


class Site:
    """Users, sessions, single sign-on, templates, and the request pipeline of the pages."""

    def __init__(self, hub: Any, *, users: Users | None = None) -> None:
        self.hub = hub
        self.config = hub.config.web
        self.clock = hub.clock
        self.users = users or Users(
            hub.db,
            lockout_attempts=self.config.lockout_attempts,
            lockout_period=float(self.config.lockout_period),
        )
        self.sessions = Sessions(
            hub.db, lifetime=float(self.config.session_lifetime), idle=float(self.config.session_idle)
        )
        self.sso = SsoHeader(self.config.sso_header, self.config.trusted_proxies)
        self.tz = i18n.timezone(self.config.timezone)
        self.counts = queries.TtlCache(COUNTS_TTL)
        # behind a proxy that rewrites Host, the browser's Origin is the public address
        self.public_netloc = urlsplit(hub.config.hub.public_url).netloc if hub.config.hub.public_url else ""
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.policies["ext.i18n.trimmed"] = True
        self.env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.filters["show"] = render.show
        self.env.filters["plain"] = render.plain
        self.env.globals.update(
            labels=labels,
            evidence_items=render.evidence_items,
            language_names=i18n.LANGUAGE_NAMES,
            locales=i18n.LOCALES,
        )

    # -- cookies ------------------------------------------------------------------------------

    @property
    def session_cookie(self) -> str:
        """The session cookie's name (`__Host-` when Secure)."""
        return f"__Host-{SESSION_COOKIE_NAME}" if self.config.cookie_secure else SESSION_COOKIE_NAME

    @property
    def login_cookie(self) -> str:
        """The login form's double-submit cookie."""
        return f"__Host-{LOGIN_COOKIE_NAME}" if self.config.cookie_secure else LOGIN_COOKIE_NAME

    def cookie_flags(self, *, max_age: int | None = None) -> dict[str, Any]:
        """HttpOnly, SameSite=Lax, Path=/, Secure unless configured off."""
        flags: dict[str, Any] = {
            "httponly": True,
            "samesite": "lax",
            "path": "/",
            "secure": self.config.cookie_secure,
        }
        if max_age is not None:
            flags["max_age"] = max_age
        return flags

    # -- who is asking ------------------------------------------------------------------------

    def peer(self, request: Request) -> str:
        """The TCP peer's address (the proxy's, behind a reverse proxy)."""
        return request.client.host if request.client else ""

    def viewer(self, request: Request, page: Page) -> Viewer | None:
        """The logged-in person: single sign-on first (when configured), then the session cookie."""
        now = self.clock.time()
        token = request.cookies.get(self.session_cookie, "")
        session = self.sessions.find(token, now=now) if token else None
        asserted, spoofed = self.sso.asserted(self.peer(request), request.headers)
        if spoofed:
            log.warning("hub_sso_header_untrusted", peer=self.peer(request), header=self.sso.header)
        if asserted is not None:
            if session is not None:
                user = self.users.by_id(session.user_id)
                if user is not None and user.name == asserted and not user.disabled:
                    return Viewer(user, session, self.locale_of(user, request))
                self.sessions.end(token)
            result = self.users.sso_login(asserted, now=now)
            if result.user is None:
                log.warning(
                    "hub_sso_login_refused",
                    user=_name_for_log(asserted, result.reason),
                    reason=result.reason,
                    peer=self.peer(request),
                )
                return None
            token, session = self.sessions.create(
                result.user.id, via="sso", address=self.peer(request), now=now
            )
            page.set_cookies.append((self.session_cookie, token, self.cookie_flags()))
            log.info("hub_login", user=result.user.name, via="sso", peer=self.peer(request))
            return Viewer(result.user, session, self.locale_of(result.user, request))
        if session is None:
            return None
        user = self.users.by_id(session.user_id)
        if user is None or user.disabled:
            self.sessions.end(token)
            return None
        if session.via == "sso" and self.sso.enabled:
            # a single sign-on session lives only as long as the proxy keeps asserting the name
            self.sessions.end(token)
            return None
        return Viewer(user, session, self.locale_of(user, request))

    def locale_of(self, user: User | None, request: Request) -> str:
        """The user's language; else the language cookie; else Accept-Language; else the default."""
        if user is not None and user.locale in i18n.LOCALES:
            return user.locale
        cookie = request.cookies.get(LOCALE_COOKIE, "")
        if cookie in i18n.LOCALES:
            return cookie
        return i18n.negotiate(request.headers.get("accept-language", ""), self.config.default_locale)

    # -- CSRF ---------------------------------------------------------------------------------

    def same_origin(self, request: Request) -> bool:
        """Whether the browser's own headers say the request comes from this site."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        netloc = urlsplit(origin).netloc
        return netloc == request.headers.get("host", "") or (
            bool(self.public_netloc) and netloc == self.public_netloc
        )

    def check_csrf(self, page: Page) -> bool:
        """The session's token in the form, and a same-site request."""
        if page.viewer is None:
            return False
        return self.same_origin(page.request) and same(page.field("csrf"), page.viewer.csrf)

    # -- rendering ----------------------------------------------------------------------------

    def render(self, page: Page, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A template in the viewer's language."""
        locale = page.viewer.locale if page.viewer else self.locale_of(None, page.request)
        context.setdefault("viewer", page.viewer)
        context.setdefault("csrf", page.viewer.csrf if page.viewer else "")
        html = self.env.get_template(template).render(
            request=page.request,
            translations=i18n.translations(locale),
            locale=locale,
            html_lang="zh-CN" if locale == "zh_CN" else "en",
            fmt=i18n.Formatter(locale, self.tz),
            url=_url,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, location: str) -> RedirectResponse:
        """See other (after a POST), to a local path only."""
        if not location.startswith("/") or location.startswith("//"):
            location = "/"
        return RedirectResponse(location, status_code=303)

    # -- the pipeline -------------------------------------------------------------------------

    def endpoint(self, handler: Handler, *, login: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """An ASGI endpoint around a sync handler: viewer, CSRF, errors, headers, threadpool."""

        async def run(request: Request) -> Response:
            form: FormData | None = None
            if request.method == "POST":
                form = await read_form(request)
                if form is None:
                    return _secure(
                        Response("form too large or not a form\n", status_code=413, media_type="text/plain")
                    )
            return await run_in_threadpool(self._run, handler, request, form, login)

        return run

    def _run(self, handler: Handler, request: Request, form: FormData | None, login: bool) -> Response:
        page = Page(request, None, form)
        page.viewer = self.viewer(request, page)
        try:
            if login and page.viewer is None:
                if request.method == "POST":
                    raise Forbidden  # noqa: TRY301 - one handler for every refusal below
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response: Response = self.redirect("/login?" + urlencode({"next": target}))
            elif login and request.method == "POST" and not self.check_csrf(page):
                log.warning(
                    "hub_csrf_refused", path=request.url.path, user=page.me.user.name, peer=self.peer(request)
                )
                response = self.render(page, "error.html", status=403, problem="csrf")
            else:
                response = handler(self, page)
        except Forbidden:
            response = self.render(page, "error.html", status=403, problem="forbidden")
        except NotFound:
            response = self.render(page, "error.html", status=404, problem="not_found")
        except BadRequest:
            response = self.render(page, "error.html", status=400, problem="bad_request")
        for name, value, flags in page.set_cookies:
            response.set_cookie(name, value, **flags)
        return _secure(response)


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> FormData | None:
    """An url-encoded form of at most `limit` bytes and 200 fields (the pages post nothing else)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return FormData() if not kind else None
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    try:
        pairs: list[tuple[str, str | UploadFile]] = []
        pairs += parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return None
    return FormData(pairs)


def _secure(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def _url(path: str, params: Mapping[str, Any] | None = None, **more: Any) -> str:
    """A local URL with query parameters (lists repeat, empties dropped)."""
    items: list[tuple[str, str]] = []
    for key, value in {**(params or {}), **more}.items():
        if value is None or value in ("", [], ()):
            continue
        if isinstance(value, list | tuple):
            items += [(key, str(v)) for v in value]
        else:
            items.append((key, str(value)))
    return path + ("?" + urlencode(items) if items else "")


def _name_for_log(name: str, reason: str) -> str:
    """An unknown login name is logged as a digest: people type passwords into name fields."""
    if reason == "unknown":
        return "unknown:" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return name[:64]


def new_token() -> str:
    """A random token for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return str(context["translations"].gettext(message))


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return str(context["translations"].ngettext(singular, plural, n))
