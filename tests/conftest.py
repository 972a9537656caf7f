"""Shared fixtures: every test starts and ends with no registered ``App`` and the logging set-up
it found.

App names are unique per process, so tests that build ``App("demo")`` would collide without this.
Tests that serve in-process call ``runtime.log.configure()``, which raises the root logger to INFO
and adds a handler: left in place, later tests would see other libraries' INFO lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from runtime.testing import reset_app_registry


@pytest.fixture(autouse=True)
def _fresh_app_registry() -> Iterator[None]:
    reset_app_registry()
    yield
    reset_app_registry()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("vivace")
    saved = (root.level, ours.level, list(root.handlers))
    yield
    root.setLevel(saved[0])
    ours.setLevel(saved[1])
    root.handlers[:] = saved[2]
