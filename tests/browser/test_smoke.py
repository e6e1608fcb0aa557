"""Chromium reaches the server and renders its front page."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.browser.conftest import screenshot_path
from tests.integration.conftest import RunningServer


async def test_front_page_renders(server: RunningServer, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(server.url + "/")
    assert "Parta" in await page.title()
    await page.screenshot(path=screenshot_path("front-page"))
