"""Headless Chromium (Debian's package, driven by Playwright) for browser tests.

These tests run inside a loopback-only network namespace (``./dev test`` starts them with
``unshare -n``), against a Parta server on SQLite started inside it; see
``../shared/TESTING.md`` for the flags and why.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.integration.conftest import RunningServer, start_server, stop_cleanly
from tests.integration.test_demo import Demo, start_demo
from tests.media.conftest import journal  # noqa: F401 (the fixture, shared with the media tests)

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
    stop_cleanly(running)


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


async def code_from_outbox(data_dir: Path, phone: str) -> str:
    """The last code sent to ``phone``, once the development SMS outbox has it."""
    outbox = data_dir / "sms-outbox.jsonl"
    for _ in range(100):
        if outbox.exists():
            sent = [json.loads(line) for line in outbox.read_text().splitlines()]
            codes = [s["code"] for s in sent if s["phone"] == phone]
            if codes:
                return str(codes[-1])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no code for {phone} in the outbox")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo school on its own server, one per test module."""
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    stop_cleanly(running.server)
