"""Fixtures for the container-script tests: a stub box per test (testkit/stubs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.stubs import StubBox


@pytest.fixture
def box(tmp_path: Path) -> Iterator[StubBox]:
    stub_box = StubBox(tmp_path)
    yield stub_box
    stub_box.close()
