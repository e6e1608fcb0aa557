"""Test-wide setup: every async test runs on uvloop and fails on any error the loop saw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop
from hypothesis import settings

from server.store import Store
from tests.databases import DATABASES, open_test_store

# Property tests check what is computed, not how fast: a loaded two-core CI machine must
# not fail them on time.
settings.register_profile("parta", deadline=None)
settings.load_profile("parta")

_loop_errors: list[dict[str, Any]] = []


def _record_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    _loop_errors.append(context)
    loop.default_exception_handler(context)


def _new_loop() -> asyncio.AbstractEventLoop:
    loop = uvloop.new_event_loop()
    loop.set_exception_handler(_record_loop_error)
    return loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"uvloop": _new_loop}


@pytest.fixture(autouse=True)
def _fail_on_loop_errors() -> Iterator[None]:
    _loop_errors.clear()
    yield
    if _loop_errors:
        errors = [str(c.get("exception") or c.get("message")) for c in _loop_errors]
        _loop_errors.clear()
        pytest.fail(f"unhandled errors in the event loop: {errors}")


@pytest.fixture(params=DATABASES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty store on each engine."""
    async with open_test_store(request.param, tmp_path) as opened:
        yield opened
