"""Shared fixtures: every test starts and ends with no registered ``App``.

App names are unique per process, so tests that build ``App("demo")`` would collide without this.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.testing import reset_app_registry


@pytest.fixture(autouse=True)
def _fresh_app_registry() -> Iterator[None]:
    reset_app_registry()
    yield
    reset_app_registry()
