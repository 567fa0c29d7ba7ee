"""Fixtures: a fresh test server per test, and an aiohttp client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from comfy_testserver import ComfyTestServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(root=tmp_path / "comfyui") as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
