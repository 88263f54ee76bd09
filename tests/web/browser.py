"""A real browser for the console's tests: Debian's chromium driven by playwright (no
browser download), and where the screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# As root, without a sandbox; no call home (the machines have no internet).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("FERRY_ARTIFACTS", REPO / "test-artifacts")) / "console"


@contextmanager
def chromium(executable: str = CHROMIUM) -> Iterator[tuple[Playwright, Browser]]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make deps` installs chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS, timeout=60_000)
        try:
            yield pw, browser
        finally:
            browser.close()


def shot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot of this step as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/")
    assert page.url.endswith("/login"), page.url  # no session: the login page
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_url(base_url + "/")
