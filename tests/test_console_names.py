"""``app.repl_ctx`` refuses every name the console defines itself."""

from __future__ import annotations

import pytest

from runtime import App
from runtime.app import CONSOLE_NAMES


@pytest.mark.parametrize("name", sorted(CONSOLE_NAMES))
def test_repl_ctx_refuses_each_console_name(name: str) -> None:
    app = App("console_names")
    with pytest.raises(ValueError, match=name):
        app.repl_ctx.add(object(), name=name)
