"""The pages: login, the ledger by org unit, a hazard, the terminals, the overdue board, actions.

Handlers are plain functions `(site, page) -> Response`, run in a worker thread (the store is
synchronous SQLAlchemy Core). Each one checks what the viewer may see: a unit outside their
grants is 403, a hazard or terminal outside them is 404 (its existence is not revealed).

Size: every page handler of the web ledger in one table (the web engineer's; to be split by page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sentinel.hazards.lifecycle import TRANSITIONS, State
from sentinel.hub.auth.roles import REQUIRED_ROLE, HubAction
from sentinel.hub.auth.users import UserError
from sentinel.hub.model import LIFECYCLE_STEPS, Cursor, HazardDetail, LedgerFilter
from sentinel.hub.web import i18n, labels, queries
from sentinel.hub.web.i18n import N_
from sentinel.hub.web.site import STATIC, BadRequest, Forbidden, NotFound, Page, Site, Viewer, new_token

log = structlog.get_logger("sentinel.hub.web")

LIVE = ("open", "acknowledged", "rectifying", "resolved")
ACTIVE = ("open", "acknowledged", "rectifying")
LOGIN_FAILED = N_("The user name or password is wrong, or the account is locked or disabled.")
MAX_NOTE = 2000
COUNT_LIMIT = 1000
"""Matching hazards counted exactly up to this; beyond, "more than 1,000" (counting is a scan)."""
MAX_TERMINALS = 500
"""Terminals listed on one page (a head office has 10,000: pick a branch to see the rest)."""


# -- the org unit in view ------------------------------------------------------------------------


def unit_path(site: Site, unit_id: str) -> list[str]:
    """Unit ids from the head office down to `unit_id` (empty if the inventory lacks it)."""
    return [u.id for u in site.hub.inventory.path(unit_id)]


def place_path(site: Site, primary_id: str, branch_id: str) -> list[str]:
    """The path of a hazard's or terminal's branch (kept from its record if the inventory moved on)."""
    path = unit_path(site, branch_id)
    return path or [site.hub.inventory.head_office.id, primary_id, branch_id]


def home_unit(site: Site, viewer: Viewer) -> str | None:
    """The highest unit the viewer holds a role on (None: no role anywhere)."""
    known = [(len(unit_path(site, g.unit)), g.unit) for g in viewer.grants if unit_path(site, g.unit)]
    return min(known)[1] if known else None


def visible_roots(site: Site, viewer: Viewer) -> list[Any]:
    """The units the viewer's grants start at (without those inside another of their grants)."""
    units = [site.hub.inventory.unit(g.unit) for g in viewer.grants]
    ids = {u.id for u in units if u is not None}
    roots = []
    for unit in units:
        if unit is None:
            continue
        above = set(unit_path(site, unit.id)[:-1])
        if not above & ids:
            roots.append(unit)
    return sorted(roots, key=lambda u: (len(unit_path(site, u.id)), u.id))


def chosen_unit(site: Site, page: Page) -> str:
    """The `unit` parameter, checked against the viewer's grants (default: their home unit)."""
    unit_id = page.query("unit") or home_unit(site, page.me)
    if unit_id is None:
        raise Forbidden
    if site.hub.inventory.unit(unit_id) is None:
        raise NotFound
    if not page.me.may_read(unit_path(site, unit_id)):
        raise Forbidden
    return unit_id


def store_unit(site: Site, unit_id: str) -> str | None:
    """The store's scope for a unit (None: the whole fleet, for the head office)."""
    return None if unit_id == site.hub.inventory.head_office.id else unit_id


def unit_context(site: Site, page: Page, unit_id: str) -> dict[str, Any]:
    """Breadcrumb, children and the viewer's other starting units, for the unit picker."""
    inventory = site.hub.inventory
    return {
        "unit": inventory.unit(unit_id),
        "crumbs": [u for u in inventory.path(unit_id) if page.me.may_read(unit_path(site, u.id))],
        "children": inventory.children(unit_id),
        "roots": visible_roots(site, page.me),
        "role": page.me.role_on(unit_path(site, unit_id)),
    }


# -- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The ledger's filters as the form shows them, and as the store takes them."""

    states: tuple[str, ...]
    severities: tuple[str, ...]
    categories: tuple[str, ...]
    overdue: str  # "" | "yes" | "no"
    recurring: str
    drill: str
    terminal: str
    since: str  # YYYY-MM-DD in the hub's time zone
    until: str

    def query(self) -> dict[str, Any]:
        """As URL parameters."""
        return {
            "state": list(self.states),
            "severity": list(self.severities),
            "category": list(self.categories),
            "overdue": self.overdue,
            "recurring": self.recurring,
            "drill": self.drill,
            "terminal": self.terminal,
            "since": self.since,
            "until": self.until,
        }

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v for v in self.query().values())


def _yes_no(value: str) -> str:
    return value if value in ("yes", "no") else ""


def _tri(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def parse_filters(page: Page) -> Filters:
    """The ledger filters from the query string; unknown values are dropped, bad dates are 400."""
    states = tuple(s for s in page.queries("state") if s in labels.STATES)
    if page.query("preset") == "live":
        states = LIVE
    filters = Filters(
        states=states,
        severities=tuple(s for s in page.queries("severity") if s in labels.SEVERITIES),
        categories=tuple(c for c in page.queries("category") if c in labels.CATEGORIES),
        overdue=_yes_no(page.query("overdue")),
        recurring=_yes_no(page.query("recurring")),
        drill=_yes_no(page.query("drill")),
        terminal=page.query("terminal").strip()[:128],
        since=page.query("since").strip(),
        until=page.query("until").strip(),
    )
    for text in (filters.since, filters.until):
        if text and _day(text, 0) is None:
            raise BadRequest
    return filters


def _day(text: str, tz: Any, *, next_day: bool = False) -> float | None:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return None
    if next_day:
        day += timedelta(days=1)
    return day.replace(tzinfo=tz).timestamp() if tz else day.timestamp()


def ledger_filter(site: Site, f: Filters) -> LedgerFilter:
    """The store's filter for the form's values."""
    return LedgerFilter(
        states=f.states,
        severities=f.severities,
        categories=f.categories,
        overdue=_tri(f.overdue),
        recurring=_tri(f.recurring),
        drill=_tri(f.drill),
        terminal=f.terminal or None,
        since=_day(f.since, site.tz) if f.since else None,
        until=_day(f.until, site.tz, next_day=True) if f.until else None,
    )


# -- pages -----------------------------------------------------------------------------------------


def index(site: Site, page: Page) -> Response:
    """/ → the ledger."""
    return site.redirect("/ledger")


def ledger(site: Site, page: Page) -> Response:
    """The ledger of an org unit, filtered, newest first, a page at a time."""
    unit_id = chosen_unit(site, page)
    filters = parse_filters(page)
    after = Cursor.decode(page.query("after")) if page.query("after") else None
    result = site.hub.store.ledger(
        store_unit(site, unit_id),
        ledger_filter(site, filters),
        limit=site.config.page_size,
        after=after,
        count=True,
        count_limit=COUNT_LIMIT,
    )
    now = site.clock.time()
    summary = site.counts.get(
        unit_id, lambda: queries.unit_counts(site.hub.store, store_unit(site, unit_id), now=now)
    )
    return site.render(
        page,
        "ledger.html",
        filters=filters,
        result=result,
        summary=summary,
        first_page=after is None,
        closed_since=datetime.fromtimestamp(now - queries.CLOSED_WINDOW, site.tz).strftime("%Y-%m-%d"),
        **unit_context(site, page, unit_id),
    )


def hazard_detail(site: Site, page: Page, pk_text: str) -> tuple[HazardDetail, list[str]]:
    """A hazard the viewer may see, with its unit path; 404 otherwise."""
    try:
        pk = int(pk_text)
    except ValueError:
        raise NotFound from None
    detail = site.hub.store.hazard(pk)
    if detail is None:
        raise NotFound
    path = place_path(site, detail.row.primary_id, detail.row.branch_id)
    if not page.me.may_read(path):
        raise NotFound
    return detail, path


@dataclass(frozen=True)
class Outlook:
    """Where a hazard will be once its pending actions are applied, and what may be asked next."""

    state: str
    resolved_by: str | None
    pending_ticks: frozenset[int]
    offer: dict[str, bool]  # action -> offered to this viewer
    why_not_close: str  # a msgid explaining a withheld close ("" when offered or not relevant)


def outlook(viewer: Viewer, detail: HazardDetail, path: list[str]) -> Outlook:  # noqa: PLR0912
    """The actions to offer, given the state after pending actions, the role and four-eyes."""
    state = detail.row.state
    resolved_by = detail.row.resolved_by
    ticks: set[int] = set()
    for queued in detail.actions:
        if queued.state != "pending":
            continue
        if queued.action == "tick" and queued.item is not None:
            ticks.add(queued.item)
        step = LIFECYCLE_STEPS.get(queued.action)
        if step is None or state not in State.__members__.values():
            continue
        allowed, target = TRANSITIONS[step]
        if State(state) in allowed:
            state = target.value
            if queued.action == "resolve":
                resolved_by = queued.actor_id
            elif queued.action == "reopen":
                resolved_by = None
    offer: dict[str, bool] = {}
    for action in HubAction:
        if not viewer.may(path, action.value):
            offer[action.value] = False
            continue
        step = LIFECYCLE_STEPS.get(action.value)
        if step is not None:
            allowed, _ = TRANSITIONS[step]
            offer[action.value] = state in {s.value for s in allowed}
        elif action.value in ("assign", "tick"):
            offer[action.value] = state in LIVE
        else:  # note
            offer[action.value] = True
    why = ""
    if offer.get("close"):
        me = viewer.user.actor_id
        items = detail.rectification
        undone = [i for i in items if not i.get("done") and i.get("item") not in ticks]
        if resolved_by in (me, viewer.user.name):
            offer["close"] = False
            why = N_("You marked this hazard rectified, so another person must verify and close it.")
        elif undone:
            offer["close"] = False
            why = N_("Every measure must be ticked before the hazard can be closed.")
    return Outlook(state, resolved_by, frozenset(ticks), offer, why)


def hazard(site: Site, page: Page) -> Response:
    """One hazard: evidence, checklist, history with identities, tickets, actions, related."""
    detail, path = hazard_detail(site, page, page.request.path_params["pk"])
    return _hazard_page(site, page, detail, path)


def _hazard_page(
    site: Site,
    page: Page,
    detail: HazardDetail,
    path: list[str],
    *,
    status: int = 200,
    problem: str = "",
    problem_detail: str = "",
) -> Response:
    return site.render(
        page,
        "hazard.html",
        status=status,
        d=detail,
        h=detail.row,
        outlook=outlook(page.me, detail, path),
        crumbs=site.hub.inventory.path(detail.row.branch_id),
        role=page.me.role_on(path),
        problem=problem,
        problem_detail=problem_detail,
    )


def act(site: Site, page: Page) -> Response:
    """POST /hazards/{pk}/actions: queue an action for the terminal (or say why not)."""
    # start-up time: loaded on first use by a page that needs it
    from sentinel.hub.store import HubActionError  # the backend's refusal, translated below

    detail, path = hazard_detail(site, page, page.request.path_params["pk"])
    action = page.field("action")
    if action not in labels.ACTIONS:
        raise BadRequest
    viewer = page.me
    if not viewer.may(path, action):
        log.warning(
            "hub_action_forbidden",
            user=viewer.user.name,
            action=action,
            hazard=detail.row.pk,
            role=role.label if (role := viewer.role_on(path)) else "none",
        )
        raise Forbidden
    note = page.field("note").strip()[:MAX_NOTE]
    owner = page.field("owner").strip()[:200]
    item: int | None = None
    if action == "tick":
        try:
            item = int(page.field("item"))
        except ValueError:
            raise BadRequest from None
    view = outlook(viewer, detail, path)
    problem = ""
    if not view.offer.get(action):
        problem = (
            view.why_not_close
            if action == "close" and view.why_not_close
            else N_("This action is not possible in the hazard's current state.")
        )
    elif action in ("cancel", "note") and not note:
        problem = N_("Please give a reason.") if action == "cancel" else N_("Please write the note.")
    elif action == "assign" and not owner:
        problem = N_("Please name the new owner.")
    if problem:
        return _hazard_page(site, page, detail, path, status=409, problem=problem)
    try:
        queued = site.hub.store.enqueue(
            detail.row.pk,
            action,
            user=viewer.user.name,
            display=viewer.user.label,
            note=note,
            owner=owner,
            item=item,
        )
    except HubActionError as exc:
        return _hazard_page(
            site,
            page,
            detail,
            path,
            status=409,
            problem=N_("The hub refused this action."),
            problem_detail=str(exc),
        )
    log.info("hub_web_action", user=viewer.user.name, action=action, hazard=detail.row.pk, uid=queued.uid)
    site.counts.clear()
    return site.redirect(f"/hazards/{detail.row.pk}#actions")


def terminals(site: Site, page: Page) -> Response:
    """The terminals of an org unit: last seen, version, silent, open hazards."""
    unit_id = chosen_unit(site, page)
    silent = page.query("silent") == "yes"
    rows = site.hub.store.terminals(store_unit(site, unit_id), silent_only=silent)
    return site.render(
        page,
        "terminals.html",
        rows=rows[:MAX_TERMINALS],
        total=len(rows),
        silent=silent,
        **unit_context(site, page, unit_id),
    )


def terminal(site: Site, page: Page) -> Response:
    """One terminal: place, last seen, version, baseline digest, audit-chain head, open hazards."""
    name = page.request.path_params["name"]
    detail = site.hub.store.terminal(name)
    if detail is None:
        raise NotFound
    path = place_path(site, detail.row.primary_id, detail.row.branch_id)
    if not page.me.may_read(path):
        raise NotFound
    return site.render(page, "terminal.html", t=detail, crumbs=site.hub.inventory.path(detail.row.branch_id))


def board(site: Site, page: Page) -> Response:
    """The overdue/escalation board of an org unit."""
    unit_id = chosen_unit(site, page)
    result = site.hub.store.board(store_unit(site, unit_id))
    now = site.clock.time()
    return site.render(page, "board.html", board=result, now=now, **unit_context(site, page, unit_id))


# -- logging in and out ------------------------------------------------------------------------


def _next(page: Page) -> str:
    target = page.field("next") or page.query("next") or "/ledger"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/ledger"
    return target


def login_form(site: Site, page: Page, *, status: int = 200, problem: str = "") -> Response:
    """The login page, with a fresh double-submit token."""
    if page.viewer is not None and status == 200:
        return site.redirect(_next(page))
    token = new_token()
    page.set_cookies.append((site.login_cookie, token, site.cookie_flags(max_age=3600)))
    return site.render(
        page, "login.html", status=status, login_token=token, next=_next(page), problem=problem
    )


def login(site: Site, page: Page) -> Response:
    """POST /login: password check with lockout, then a new session."""
    # start-up time: loaded on first use by a page that needs it
    from sentinel.hub.auth.sessions import same
    from sentinel.hub.web.site import _name_for_log

    cookie = page.request.cookies.get(site.login_cookie, "")
    if not site.same_origin(page.request) or not same(page.field("login_token"), cookie):
        log.warning("hub_login_csrf_refused", peer=site.peer(page.request))
        return login_form(site, page, status=403, problem=N_("The login form expired. Please try again."))
    name = page.field("user").strip().lower()[:64]
    password = page.field("password")
    now = site.clock.time()
    result = site.users.authenticate(name, password, now=now)
    if result.user is None:
        log.warning(
            "hub_login_failed",
            user=_name_for_log(name, result.reason),
            reason=result.reason,
            peer=site.peer(page.request),
        )
        if result.locked_now:
            log.warning(
                "hub_user_locked",
                user=name,
                minutes=round(site.users.lockout_period / 60),
                peer=site.peer(page.request),
            )
        return login_form(site, page, status=401, problem=LOGIN_FAILED)
    if page.viewer is not None:
        site.sessions.end(page.request.cookies.get(site.session_cookie, ""))
    token, _session = site.sessions.create(
        result.user.id, via="password", address=site.peer(page.request), now=now
    )
    log.info("hub_login", user=result.user.name, via="password", peer=site.peer(page.request))
    response = site.redirect(_next(page))
    response.set_cookie(site.session_cookie, token, **site.cookie_flags())
    response.delete_cookie(
        site.login_cookie, path="/", secure=site.config.cookie_secure, httponly=True, samesite="lax"
    )
    return response


def logout(site: Site, page: Page) -> Response:
    """POST /logout: the session ends here and now."""
    site.sessions.end(page.request.cookies.get(site.session_cookie, ""))
    log.info("hub_logout", user=page.me.user.name)
    response = site.redirect("/login")
    response.delete_cookie(
        site.session_cookie, path="/", secure=site.config.cookie_secure, httponly=True, samesite="lax"
    )
    return response


def set_locale(site: Site, page: Page) -> Response:
    """POST /locale: the viewer's language (kept on their user)."""
    locale = page.field("locale")
    if locale not in i18n.LOCALES:
        raise BadRequest
    try:
        site.users.set_locale(page.me.user.id, locale)
    except UserError:
        raise BadRequest from None
    return site.redirect(_back(page))


def set_login_locale(site: Site, page: Page) -> Response:
    """POST /login/locale: the login page's language, before anyone is logged in (a cookie)."""
    locale = page.field("locale")
    if locale not in i18n.LOCALES:
        raise BadRequest
    if not site.same_origin(page.request):
        raise Forbidden
    page.set_cookies.append(("sentinel-hub-lang", locale, site.cookie_flags(max_age=365 * 86400)))
    return site.redirect(
        "/login?" + (f"next={page.field('next')}" if page.field("next").startswith("/") else "")
    )


def _back(page: Page) -> str:
    target = page.field("back")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ledger"


def account(site: Site, page: Page) -> Response:
    """The viewer's own page: their roles per unit and their language."""
    units = [(site.hub.inventory.unit(g.unit), g) for g in page.me.grants]
    return site.render(page, "account.html", grants=units, required=REQUIRED_ROLE)


def routes(site: Site) -> list[BaseRoute]:
    """The pages' route table (after the backend's API routes)."""
    e = site.endpoint
    return [
        Route("/", e(index), methods=["GET"]),
        Route("/login", e(login_form, login=False), methods=["GET"]),
        Route("/login", e(login, login=False), methods=["POST"]),
        Route("/login/locale", e(set_login_locale, login=False), methods=["POST"]),
        Route("/logout", e(logout), methods=["POST"]),
        Route("/locale", e(set_locale), methods=["POST"]),
        Route("/account", e(account), methods=["GET"]),
        Route("/ledger", e(ledger), methods=["GET"]),
        Route("/hazards/{pk}", e(hazard), methods=["GET"]),
        Route("/hazards/{pk}/actions", e(act), methods=["POST"]),
        Route("/terminals", e(terminals), methods=["GET"]),
        Route("/terminals/{name}", e(terminal), methods=["GET"]),
        Route("/board", e(board), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
