"""The names ``app.repl_ctx`` refuses are exactly the names the console defines itself."""

from __future__ import annotations

import pytest

from repl.namespace import BUILTIN_NAMES
from runtime import App
from runtime.app import CONSOLE_NAMES


def test_reserved_names_match_the_console() -> None:
    assert set(BUILTIN_NAMES) == CONSOLE_NAMES


@pytest.mark.parametrize("name", sorted(CONSOLE_NAMES))
def test_repl_ctx_refuses_each_console_name(name: str) -> None:
    app = App("console_names")
    with pytest.raises(ValueError, match=name):
        app.repl_ctx.add(object(), name=name)
