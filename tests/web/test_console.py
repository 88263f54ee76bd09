"""The web console against a real ferryd on loopback, in a real browser (Debian's chromium)
and over plain HTTPS: sessions, roles, CSRF, escaping, rate limits, layouts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser

from daemon.api.auth import create_token, revoke_token
from daemon.tls.authority import tls_files
from tests.api.ferryd_proc import Ferryd
from tests.web.browser import chromium, login, shot

XSS = "<script>window.__xss = 1</script>"
SERVICE = """[DEFAULT]
nodes = n1
# a comment: {xss}

[app#web]
start = touch {var}/web
stop = rm -f {var}/web
check = test -f {var}/web
"""
BROKEN = """[DEFAULT]
nodes = n1

[app#0]
start = echo '{xss}' >&2; exit 3
check = false
"""


class Console:
    def __init__(self, proc: Ferryd) -> None:
        self.proc = proc
        self.url = f"https://127.0.0.1:{proc.port}"
        self.ca = str(tls_files(proc.var_dir).ca_cert)
        self.operator = create_token(proc.var_dir, "operator", "alice")
        self.guest = create_token(proc.var_dir, "guest", "gus")

    def session(self) -> requests.Session:
        http = requests.Session()
        http.verify = self.ca
        http.trust_env = False  # REQUESTS_CA_BUNDLE would replace our CA
        return http

    def login(self, token: str) -> tuple[requests.Session, requests.Response]:
        http = self.session()
        form = http.get(self.url + "/login", timeout=10)
        nonce = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert nonce, form.text
        answer = http.post(
            self.url + "/login",
            data={"token": token, "login_csrf": nonce.group(1)},
            allow_redirects=False,
            timeout=10,
        )
        return http, answer

    def signed_in(self, token: str) -> tuple[requests.Session, str]:
        http, answer = self.login(token)
        assert answer.status_code == 303, answer.text
        page = http.get(self.url + "/", timeout=10)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf and csrf.group(1), page.text
        return http, csrf.group(1)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    base = Path(tmp_path_factory.mktemp("console", numbered=True))
    config_dir, var_dir = base / "etc", base / "var"
    config_dir.mkdir()
    var_dir.mkdir()
    (config_dir / "svc1.conf").write_text(SERVICE.format(xss=XSS, var=base))
    (config_dir / "broken.conf").write_text(BROKEN.format(xss=XSS))
    proc = Ferryd(config_dir, var_dir)
    try:
        proc.start()
        yield Console(proc)
    finally:
        proc.ensure_stopped()
    assert "Traceback" not in proc.log(), proc.log()[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as (_, running):
        yield running


def test_without_a_session_only_the_login_page_and_the_assets_answer(console: Console) -> None:
    http = console.session()
    for path in ("/", "/services/svc1", "/services/svc1/activate", "/services/svc1/drill",
                 "/services/svc1/confirm/freeze", "/actions/0123456789abcdef"):  # fmt: skip
        answer = http.get(console.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 303 and answer.headers["Location"] == "/login", path
    for path in ("/ui/overview", "/ui/services/svc1"):
        assert http.get(console.url + path, timeout=10).status_code == 401, path
    for path in ("/api/services", "/api/services/svc1/sync", "/api/events"):
        assert http.get(console.url + path, timeout=10).status_code == 401, path
    refused = http.post(console.url + "/api/services/svc1/actions", json={"action": "freeze"})
    assert refused.status_code == 401
    page = http.get(console.url + "/login", timeout=10)
    assert page.status_code == 200 and "Log in to n1" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and page.headers["X-Frame-Options"] == "DENY"
    asset = http.get(console.url + "/static/vendor/htmx-2.0.11/htmx.min.js", timeout=10)
    assert asset.status_code == 200 and asset.headers["Content-Type"].startswith("text/javascript")
    licence = http.get(console.url + "/static/vendor/uplot-1.6.32/LICENSE", timeout=10)
    assert licence.status_code == 200 and "MIT License" in licence.text
    for path in (
        "/static/../console.py",
        "/static/%2e%2e/console.py",
        "/static/templates/base.html",
    ):
        assert http.get(console.url + path, timeout=10).status_code == 404, path


def test_the_session_cookie_is_httponly_secure_strict_and_logout_ends_it(console: Console) -> None:
    http, answer = console.login(console.operator)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = next(c for c in answer.headers["Set-Cookie"].split(", ") if "ferry_session" in c)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "max-age", "path"} <= flags, cookie
    assert "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
    assert console.operator not in cookie  # the token is exchanged, not kept by the browser
    assert http.get(console.url + "/api/services", timeout=10).status_code == 200
    no_csrf = http.post(console.url + "/logout", data={}, allow_redirects=False, timeout=10)
    assert no_csrf.status_code == 403
    page = http.get(console.url + "/", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    done = http.post(
        console.url + "/logout", data={"csrf": csrf.group(1)}, allow_redirects=False, timeout=10
    )
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    stolen = console.session()
    stolen.cookies.set("ferry_session", http.cookies.get("ferry_session") or "x")
    old = cookie.split(";")[0].split("=", 1)[1]
    stolen.cookies.set("ferry_session", old)
    assert stolen.get(console.url + "/api/services", timeout=10).status_code == 401
    assert stolen.get(console.url + "/", allow_redirects=False, timeout=10).status_code == 303


def test_a_write_without_the_csrf_token_is_refused(console: Console) -> None:
    http, csrf = console.signed_in(console.operator)
    url = console.url + "/api/services/svc1/actions"
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        refused = http.post(url, json={"action": "freeze"}, headers=headers, timeout=10)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"], headers
    wrong = http.post(
        url, json={"action": "freeze", "confirm": "svc2"}, headers={"X-CSRF-Token": csrf}
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "confirm"
    accepted = http.post(
        url, json={"action": "thaw", "confirm": "svc1"}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 202, accepted.text
    action = http.get(console.url + accepted.headers["Location"] + "?wait=20", timeout=30).json()
    assert action["state"] == "succeeded" and action["requested_by"] == "session:alice"


def test_a_revoked_token_ends_its_sessions(console: Console) -> None:
    token = create_token(console.proc.var_dir, "operator", "short-lived")
    http, _ = console.signed_in(token)
    assert http.get(console.url + "/api/services", timeout=10).status_code == 200
    assert revoke_token(console.proc.var_dir, "short-lived")
    assert http.get(console.url + "/api/services", timeout=10).status_code == 401
    assert http.get(console.url + "/", allow_redirects=False, timeout=10).status_code == 303


def test_pages_have_no_inline_script_style_or_handler(console: Console) -> None:
    http, _ = console.signed_in(console.operator)
    for path in ("/", "/services/svc1", "/services/svc1/activate", "/services/svc1/drill",
                 "/services/svc1/confirm/switch", "/login"):  # fmt: skip
        html = http.get(console.url + path, timeout=10).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html) and "<style" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path  # nothing third-party


def test_guest_reads_and_is_told_not_allowed(console: Console, browser: Browser) -> None:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, console.url, console.guest)
    assert page.locator("tr[data-service=svc1]").count() == 1
    assert "role guest" in page.locator(".who").inner_text()
    page.goto(console.url + "/services/svc1/confirm/freeze")
    assert "frozen" in page.locator(".what").inner_text()
    page.click("form[data-action=freeze] button[type=submit]")
    message = page.locator("[data-result]")
    message.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('[data-result]').textContent.length > 12")
    text = message.inner_text()
    assert text.startswith("Not allowed:") and "has role guest; this needs operator" in text, text
    shot(page, "guest-not-allowed")
    context.close()


def test_script_in_a_name_a_comment_or_a_log_line_is_inert(
    console: Console, browser: Browser
) -> None:
    http, csrf = console.signed_in(console.operator)
    started = http.post(
        console.url + "/api/services/broken/actions",
        json={"action": "start"},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    )
    assert started.status_code == 202, started.text
    action_id = started.json()["action_id"]
    ended = http.get(f"{console.url}/api/actions/{action_id}?wait=30", timeout=40).json()
    assert ended["state"] == "failed" and XSS in (ended["error"] + str(ended["log"])), ended

    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, console.url, console.operator)
    page.goto(f"{console.url}/actions/{action_id}")
    assert XSS in page.locator("main").inner_text()  # shown as text
    page.goto(console.url + "/services/svc1")
    page.locator("details.config summary").click()
    assert XSS in page.locator("details.config pre").inner_text()
    page.goto(console.url + "/services/" + "%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E")
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None and not dialogs
    shot(page, "script-inert")
    context.close()


def test_pages_follow_the_event_stream(console: Console, browser: Browser) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    login(page, console.url, console.operator)
    page.goto(console.url + "/services/svc1")
    before = (
        page.locator("ul.actions-log li").count() if page.locator("ul.actions-log").count() else 0
    )
    http, csrf = console.signed_in(console.operator)
    asked = time.monotonic()
    done = http.post(
        console.url + "/api/services/svc1/actions",
        json={"action": "freeze"},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    )
    assert done.status_code == 202, done.text
    # The fragment's fallback refresh is every 30 s: within 10 s, only an event brought it.
    items = page.locator("ul.actions-log li")
    while items.count() <= before:
        assert time.monotonic() - asked < 10, "no refresh within 10 s: the event did not arrive"
        time.sleep(0.2)
    thaw = http.post(
        console.url + "/api/services/svc1/actions",
        json={"action": "thaw"},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    )
    assert thaw.status_code == 202
    context.close()


@pytest.mark.parametrize("width", [375, 1920])
def test_usable_on_a_phone_and_a_wide_screen(
    console: Console, browser: Browser, width: int
) -> None:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    login(page, console.url, console.operator)
    for path, name in (("/", "overview"), ("/services/svc1", "service"),
                       ("/services/svc1/activate", "wizard")):  # fmt: skip
        page.goto(console.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, (path, overflow)
        shot(page, f"{name}-{width}")
    context.close()


# Last: it blocks this address's logins for a minute.
def test_repeated_failed_logins_are_rate_limited(console: Console) -> None:
    for attempt in range(5):
        _, answer = console.login(f"fy_wrong{attempt}")
        assert answer.status_code == 401 and "not valid" in answer.text
    _, answer = console.login(console.operator)  # even the right token, for a while
    assert answer.status_code == 429 and "Too many failed logins" in answer.text
    assert 1 <= int(answer.headers["Retry-After"]) <= 61
