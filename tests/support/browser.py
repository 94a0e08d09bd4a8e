"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for browser tests."""

from collections.abc import Iterator
from contextlib import contextmanager

from tests.factories import PASSWORD
from tests.support import tools

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator:
    executable = tools.require("chromium", "chromium, for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def log_in(page, base_url: str, user) -> None:
    """Log ``user`` (a staff ``UserFactory`` user) in through the admin's login form; returns once the admin
    shows the logged-in user's tools (a failed login stays on the form and times out here)."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
