"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a downloaded
browser), a live server, and logged-in pages. Every test here skips, saying why, where Chromium
is absent (bin/ensure-test-tools installs it when it can)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

CHROMIUM = os.environ.get("TIDELOG_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
VIEWPORT = {"width": 1360, "height": 900}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: bin/ensure-test-tools installs Debian's as root")
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # TRICKY: Playwright's sync API keeps an asyncio loop on this thread, which makes Django
    # refuse ORM calls here ("SynchronousOnlyOperation") while it lives: the tests seed and
    # query the database between page loads, from this one synchronous thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            # --no-sandbox: CI and this machine run as root, where Chromium's sandbox cannot start.
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def login_cookie(username: str, **flags: bool) -> str:
    """A session for a new user (staff unless told otherwise): its cookie's value."""
    flags.setdefault("is_staff", True)
    user = get_user_model().objects.create_user(username, password="x", **flags)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def open_page(browser, live_server):  # type: ignore[no-untyped-def]
    """open_page(cookie) -> a new page logged in with that session (None: logged out)."""
    contexts = []

    def open_page(cookie: str | None):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
        if cookie:
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
