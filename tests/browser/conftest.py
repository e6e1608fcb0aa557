"""Headless Chromium (Debian's package, driven by Playwright) for browser tests.

These tests run inside a loopback-only network namespace (``./dev test`` starts them with
``unshare -n``), against a Parta server on SQLite started inside it; see
``../shared/TESTING.md`` for the flags and why.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.integration.conftest import RunningServer, start_server, stop_server

CHROMIUM = os.environ.get("PARTA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "test-screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("parta"))
    yield running
    log = stop_server(running)
    assert "Traceback" not in log, log


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
