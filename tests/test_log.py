from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from runtime import log


@pytest.fixture
def restore_levels() -> Iterator[None]:
    root, vivace = logging.getLogger(), logging.getLogger("vivace")
    saved = root.level, vivace.level, list(root.handlers)
    yield
    root.setLevel(saved[0])
    vivace.setLevel(saved[1])
    root.handlers[:] = saved[2]


@pytest.mark.usefixtures("restore_levels")
def test_debug_opens_vivace_loggers_but_not_other_libraries() -> None:
    log.configure(debug=True)
    assert logging.getLogger("vivace.server").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("asyncio").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("parso.cache").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("demo").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("restore_levels")
def test_double_verbosity_opens_everything_and_production_hides_vivace_debug() -> None:
    log.configure(verbosity=2)
    assert logging.getLogger("asyncio").isEnabledFor(logging.DEBUG)
    log.configure(debug=False, verbosity=0)
    assert not logging.getLogger("vivace.root").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("vivace.root").isEnabledFor(logging.INFO)
