"""The web console ferryd serves at ``/``: login, pages, their live fragments, the assets.

Pages are rendered on the server from the API's own handlers (see :mod:`daemon.web.views`)
and refreshed by htmx when the event stream says something changed. Actions are posted by
the page's script to the JSON API itself (``POST /api/services/{svc}/actions``) with the
session cookie and its CSRF token: the server checks the role and the request exactly as
it checks the CLI's.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from daemon.api.auth import Principal, authenticate, token_hash
from daemon.api.context import ApiContext
from daemon.api.http import ApiError
from daemon.api.sessions import COOKIE
from daemon.config.store import service_name_problem
from daemon.web import views

log = logging.getLogger("ferry.console")

HERE = Path(__file__).parent
STATIC = HERE / "static"
LOGIN_COOKIE = "ferry_login"  # the login form's own CSRF token (no session yet)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MIME = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
ACTIONS_CONFIRMED = ("switch", "giveback", "freeze", "thaw")

CTX_KEY = web.AppKey("console_ctx", ApiContext)
ENV_KEY = web.AppKey("console_env", jinja2.Environment)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is text, never markup: a <script> in a name is inert
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = views.age_text
    env.filters["when"] = views.when_text
    env.filters["size"] = views.size_text
    env.globals["timeline"] = views.timeline
    return env


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class Page:
    """A console request: its daemon, its caller, and how to answer it."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.ctx = request.app[CTX_KEY]
        self.env = request.app[ENV_KEY]
        self.principal: Principal | None = authenticate(
            request, self.ctx.tokens, self.ctx.cluster_nodes, self.ctx.sessions
        )

    @property
    def signed_in(self) -> bool:
        return self.principal is not None and self.principal.session is not None

    async def api(
        self, operation: str, path: dict[str, str] | None = None, **query: str
    ) -> dict[str, Any]:
        return await views.api(self.request, self.ctx, self.principal, operation, path, **query)

    async def api_or_none(
        self, operation: str, path: dict[str, str] | None = None, **query: str
    ) -> dict[str, Any] | None:
        return await views.api_or_none(
            self.request, self.ctx, self.principal, operation, path, **query
        )

    def render(self, template: str, http_status: int = 200, **values: Any) -> web.Response:
        session = self.principal.session if self.principal else None
        text = self.env.get_template(template).render(
            node=self.ctx.nodename,
            version=self.ctx.version,
            user=self.principal,
            csrf=session.csrf if session else "",
            **values,
        )
        response = web.Response(text=text, status=http_status, content_type="text/html")
        _secure(response)
        return response

    def error(self, exc: ApiError) -> web.Response:
        return self.render(
            "error.html", http_status=exc.status, status_code=exc.status, error=exc.body
        )


def _service(request: web.Request) -> str:
    name = request.match_info.get("svc", "")
    problem = service_name_problem(name)
    if problem:
        raise ApiError(400, f"svc: {problem}", field="svc")
    return name


def page(template_handler: Any) -> Any:
    """A page for signed-in users: others go to the login page (fragments answer 401)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        view = Page(request)
        if not view.signed_in:
            if request.path.startswith("/ui/"):
                return _secure(web.Response(status=401, text="session required"))
            raise web.HTTPSeeOther("/login")
        try:
            return await template_handler(view)
        except ApiError as exc:
            return view.error(exc)

    handler.__name__ = template_handler.__name__
    return handler


# ------------------------------------------------------------------ login, logout


async def login_form(request: web.Request) -> web.StreamResponse:
    view = Page(request)
    if view.signed_in:
        raise web.HTTPSeeOther("/")
    return _login_page(view, "", 200)


def _login_page(view: Page, message: str, status: int) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = view.render("login.html", http_status=status, message=message, login_csrf=nonce)
    response.set_cookie(
        LOGIN_COOKIE, nonce, httponly=True, secure=True, samesite="Strict", max_age=600, path="/"
    )
    return response


async def login(request: web.Request) -> web.StreamResponse:
    view = Page(request)
    sessions = view.ctx.sessions
    address = request.remote or "?"
    wait = sessions.login_blocked(address)
    if wait > 0:
        response = _login_page(view, f"Too many failed logins: try again in {wait:.0f} s.", 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    form = await request.post()
    given, expected = str(form.get("login_csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(given, expected):
        return _login_page(view, "The login form expired: try again.", 403)
    token = str(form.get("token", "")).strip()
    holder = view.ctx.tokens.lookup(token) if token else None
    if holder is None:
        sessions.login_failed(address)
        log.warning("console: failed login from %s", address)
        return _login_page(view, "This token is not valid on this node.", 401)
    session = sessions.open(token_hash(token))
    log.info("console: %s (%s) logged in from %s", holder.name, holder.role.label, address)
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        secure=True,
        samesite="Strict",
        max_age=int(sessions.lifetime),
        path="/",
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    _secure(response)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    view = Page(request)
    session = view.principal.session if view.principal else None
    form = await request.post()
    if session is not None:
        if not session.csrf_ok(str(form.get("csrf", ""))):
            raise ApiError(403, "CSRF token missing or wrong")
        view.ctx.sessions.close(session.id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    _secure(response)
    raise response


# ------------------------------------------------------------------ pages


async def _overview_values(view: Page) -> dict[str, Any]:
    cluster = await view.api("cluster_status")
    rows = []
    for name, service_view in cluster.get("services", {}).items():
        here = {"svc": name}
        sync = await view.api_or_none("sync_report", here) if _here(view, name) else None
        status = await view.api_or_none("service_status", here) if _here(view, name) else None
        rows.append(views.service_row(name, service_view, sync, status))
    rows.sort(key=lambda r: (0 if any(a.level == "down" for a in r.attention) else
                             1 if r.attention else 2, r.name))  # fmt: skip
    return {"cluster": cluster, "rows": rows, "attention": views.attention_of(cluster, rows)}


def _here(view: Page, name: str) -> bool:
    return view.ctx.services.path(name).exists()


@page
async def overview(view: Page) -> web.StreamResponse:
    return view.render("overview.html", **await _overview_values(view))


@page
async def overview_fragment(view: Page) -> web.StreamResponse:
    return view.render("_overview.html", **await _overview_values(view))


async def _service_values(view: Page) -> dict[str, Any]:
    name = _service(view.request)
    status = await view.api("service_status")
    cluster = await view.api("cluster_status")
    service_view = cluster.get("services", {}).get(name, {})
    sync = await view.api_or_none("sync_report")
    points = await view.api_or_none("list_restorepoints")
    actions = await view.api("list_actions", service=name, limit="20")
    row = views.service_row(name, service_view, sync, status)
    return {
        "svc": name,
        "status": status,
        "row": row,
        "cluster": cluster,
        "sync": sync,
        "points": points,
        "actions": actions["actions"],
    }


@page
async def service(view: Page) -> web.StreamResponse:
    config = await view.api_or_none("get_config")
    return view.render("service.html", config=config, **await _service_values(view))


@page
async def service_fragment(view: Page) -> web.StreamResponse:
    return view.render("_service.html", **await _service_values(view))


@page
async def activate(view: Page) -> web.StreamResponse:
    name = _service(view.request)
    facts = await view.api("dr_facts")
    cluster = await view.api("cluster_status")
    node_state = {n["name"]: n["state"] for n in cluster["nodes"]}
    points = await view.api_or_none("list_restorepoints")
    return view.render(
        "activate.html",
        svc=name,
        facts=facts,
        node_state=node_state,
        points=points,
        ages=[(rid, per.get(facts["to"])) for rid, per in facts["data_age"].items()],
    )


@page
async def drill(view: Page) -> web.StreamResponse:
    name = _service(view.request)
    preflight = await view.api("drill_preflight")
    history = await view.api("list_drills")
    return view.render("drill.html", svc=name, preflight=preflight, history=history)


@page
async def confirm(view: Page) -> web.StreamResponse:
    name = _service(view.request)
    action = view.request.match_info["action"]
    if action not in ACTIONS_CONFIRMED:
        raise ApiError(404, f"no console page for {action!r}")
    status = await view.api("service_status")
    cluster = await view.api("cluster_status")
    service_view = cluster.get("services", {}).get(name, {})
    instances = service_view.get("instances", {})
    here = sorted(n for n, i in instances.items() if i.get("avail") in ("up", "warn"))
    others = [n["name"] for n in cluster["nodes"] if n["name"] not in here and n["state"] == "up"]
    text = views.WHAT_HAPPENS[action].format(
        svc=name, here=", ".join(here) or "nowhere", to=others[0] if others else "?"
    )
    return view.render(
        "confirm.html", svc=name, action=action, what=text, status=status, candidates=others
    )


async def _action_values(view: Page) -> dict[str, Any]:
    record = await view.api("get_action")
    activation = None
    if record["action"] == "takeover" and record["state"] == "succeeded":
        status = await view.api_or_none("service_status", {"svc": record["service"]})
        last = (status or {}).get("last_activation") or {}
        if float(last.get("time") or 0) >= float(record.get("started_at") or 0):
            activation = last  # this takeover's activation, with its RPO
    drill_report = (record.get("result") or {}).get("drill")
    return {"action": record, "activation": activation, "drill": drill_report}


@page
async def action(view: Page) -> web.StreamResponse:
    return view.render("action.html", **await _action_values(view))


@page
async def action_fragment(view: Page) -> web.StreamResponse:
    return view.render("_action.html", **await _action_values(view))


async def asset(request: web.Request) -> web.StreamResponse:
    """A file of the package's static folder (nothing outside it, nothing hidden)."""
    relative = request.match_info["path"]
    path = (STATIC / relative).resolve()
    if (
        STATIC.resolve() not in path.parents
        or any(part.startswith(".") for part in Path(relative).parts)
        or not path.is_file()
    ):
        raise ApiError(404, "no such asset")
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
    if path.name == "LICENSE":
        return web.Response(body=path.read_bytes(), content_type="text/plain", headers=headers)
    content_type = MIME.get(path.suffix)
    if content_type is None:
        raise ApiError(404, "no such asset")
    return web.Response(body=path.read_bytes(), content_type=content_type, headers=headers)


def add_console(app: web.Application, ctx: ApiContext) -> None:
    """Serve the console from app (the API's application: same listeners, same TLS)."""
    app[CTX_KEY] = ctx
    app[ENV_KEY] = _environment()
    svc = "{svc:[A-Za-z0-9][A-Za-z0-9_.-]*}"
    routes = [
        web.get("/", overview),
        web.get("/login", login_form),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get(f"/services/{svc}", service),
        web.get(f"/services/{svc}/activate", activate),
        web.get(f"/services/{svc}/drill", drill),
        web.get(f"/services/{svc}/confirm/{{action}}", confirm),
        web.get("/actions/{action_id}", action),
        web.get("/ui/overview", overview_fragment),
        web.get(f"/ui/services/{svc}", service_fragment),
        web.get("/ui/actions/{action_id}", action_fragment),
        web.get("/static/{path:.+}", asset),
    ]
    app.router.add_routes(routes)
