"""The web console of the DR node n3, in a real browser (Debian's chromium, run inside n3),
on seed use case 1 through the daemons: a guest sees svc1 up on n1 with n3's data age and
is told "not allowed"; an operator runs a drill and reads its report; with n1 and n2 dead,
the operator activates DR through the wizard with the keyboard alone, and svc1 answers
HTTP 200 from n3. Screenshots of each step are kept (test-artifacts/console/)."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.integration.ops import (
    REPO,
    avail,
    ferry,
    http_status,
    uc1_ha_testbed,
    wait,
)
from tests.testbed import Testbed
from tests.web.browser import CHROMIUM, chromium, login, shot

pytestmark = pytest.mark.testbed

CONFIG = (REPO / "conf.d" / "uc1-failover" / "svc1.conf").read_text()
CONSOLE = "https://10.0.3.13:7443"  # n3's ferryd, as the DR runbook says
SERVICE_URL = "http://10.0.3.3/"


def token(tb: Testbed, role: str, name: str) -> str:
    done = ferry(tb, "n3", "token", "create", "--role", role, "--name", name)
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip())


@pytest.fixture(scope="module")
def cluster(testbed_session: Testbed) -> Iterator[Testbed]:
    tb = uc1_ha_testbed(testbed_session, "web", CONFIG)
    try:
        yield tb
    finally:
        tb.down()


@pytest.fixture(scope="module")
def browser(cluster: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium inside n3's namespaces: it reaches n3's addresses as a browser on n3 would
    (the machine's own network namespace has no route to the testbed)."""
    wrapper = Path(tmp_path_factory.mktemp("browser")) / "chromium-in-n3"
    launcher = " ".join(shlex.quote(part) for part in cluster.command("n3", CHROMIUM))
    wrapper.write_text(f'#!/bin/sh\nexec {launcher} "$@"\n')
    wrapper.chmod(0o755)
    with chromium(str(wrapper)) as (_, running):
        yield running


def new_page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(30_000)
    return context.new_page()


def test_guest_sees_svc1_on_n1_with_n3s_data_age_and_is_not_allowed(
    cluster: Testbed, browser: Browser
) -> None:
    page = new_page(browser)
    login(page, CONSOLE, token(cluster, "guest", "night-guest"))
    row = page.locator("tr[data-service=svc1]")
    text = row.inner_text()
    assert re.search(r"\bup\b on n1", text), text
    for rid in ("sync#0", "sync#1"):
        age = row.locator(f'[data-age-of="{rid}:n1"]').inner_text()
        assert age.startswith(f"{rid} from n1:") and "never" not in age, age
    shot(page, "uc1-1-guest-overview")
    page.goto(CONSOLE + "/services/svc1/activate")
    page.fill("#confirm", "svc1")
    page.click("form[data-action=takeover] button[type=submit]")
    message = page.locator("[data-result]")
    page.wait_for_function("() => document.querySelector('[data-result]').textContent.length > 12")
    assert message.inner_text().startswith("Not allowed:"), message.inner_text()
    assert "role guest; this needs operator" in message.inner_text()
    shot(page, "uc1-2-guest-not-allowed")
    assert avail(cluster, "n1") == "up" and avail(cluster, "n3") != "up"  # nothing happened
    page.context.close()


def test_operator_runs_a_drill_and_reads_its_report(cluster: Testbed, browser: Browser) -> None:
    page = new_page(browser)
    login(page, CONSOLE, token(cluster, "operator", "night-operator"))
    page.goto(CONSOLE + "/services/svc1/drill")
    assert "will start" in page.locator("dl.facts").inner_text().lower()
    page.fill("#check", f"wget -qO- {SERVICE_URL}")
    shot(page, "uc1-3-drill-form")
    page.click("form[data-action=drill] button[type=submit]")
    page.wait_for_url("**/actions/*")
    page.locator(".result").wait_for(timeout=240_000)  # live: the fragment follows the events
    assert "Done" in page.locator(".result").inner_text(), page.locator("main").inner_text()
    shot(page, "uc1-4-drill-done")
    page.click("text=The drill's report")
    report = page.locator("details[open] dl.report").inner_text()
    assert "pass" in report and "ferry testbed: opensvc/nginx" in report, report
    shot(page, "uc1-5-drill-report")
    page.context.close()


def test_dr_activation_through_the_wizard_with_the_keyboard(
    cluster: Testbed, browser: Browser
) -> None:
    tb = cluster
    done = ferry(tb, "n1", "svc1", "sync", "all", "--wait", "--time", "300")
    assert done.returncode == 0, done.stderr
    tb.kill("n1")
    tb.kill("n2")
    page = new_page(browser)
    login(page, CONSOLE, token(tb, "operator", "dr-operator"))
    wait("n3 sees n1 and n2 dead", lambda: _dead_on_overview(page), 30)
    shot(page, "uc1-6-primary-site-lost")

    page.goto(CONSOLE + "/services/svc1/activate")
    facts = page.locator("dl.facts").inner_text()
    assert "Runs now on\nnowhere" in facts, facts
    assert "sync#1:" in facts and "RPO if activated now" in facts, facts
    assert "container#1" in facts  # what will start
    # the keyboard alone: tab to the restore point, keep the default, tab to the confirmation
    page.focus("#at")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "confirm"
    page.keyboard.type("svc1")
    shot(page, "uc1-7-wizard")
    page.keyboard.press("Enter")
    page.wait_for_url("**/actions/*")
    page.locator(".result").wait_for(timeout=300_000)
    result = page.locator(".result").inner_text()
    assert "activated on n3" in result and "RPO:" in result, page.locator("main").inner_text()
    shot(page, "uc1-8-activated")
    wait("svc1 up on n3", lambda: avail(tb, "n3") == "up", 60)
    page.goto(CONSOLE + "/")
    assert re.search(r"\bup\b on n3", page.locator("tr[data-service=svc1]").inner_text())
    shot(page, "uc1-9-overview-after-dr")
    page.context.close()
    # The service's address is a macvlan of n3's link, which n3 itself cannot reach (a
    # macvlan's parent never talks to its children): ask from the primary site once back.
    tb.revive("n1")
    tb.revive("n2")
    wait("svc1 answering from n3", lambda: http_status(tb, "n1", SERVICE_URL) == "200", 60)
    assert avail(tb, "n1") != "up" and avail(tb, "n2") != "up"  # served by n3 alone


def _dead_on_overview(page: Page) -> bool:
    page.goto(CONSOLE + "/")
    text = page.locator("ul.attention").inner_text() if page.locator("ul.attention").count() else ""
    time.sleep(0.5)
    return "node n1 is down" in text and "node n2 is down" in text
