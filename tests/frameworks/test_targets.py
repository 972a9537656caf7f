"""What vivace accepts as a target besides its own ``App`` (issue 12, point 1): ASGI 3, ASGI 2 and
WSGI apps detected automatically or forced with ``--interface``, factories, and one clear message
with exit 1 for anything else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.frameworks.servers import MODES, run_to_exit, start

pytestmark = pytest.mark.slow

SERVED = [
    pytest.param("raw_asgi:app", (), "hello from raw asgi", id="asgi3-function-auto"),
    pytest.param("raw_asgi:app", ("--interface", "asgi3"), "hello from raw asgi", id="asgi3"),
    pytest.param("raw_asgi:ASGI2App", ("--interface", "asgi2"), "hello from raw asgi", id="asgi2"),
    pytest.param("flask_app:app", ("--interface", "wsgi"), "hello from flask", id="wsgi"),
    pytest.param("starlette_app:create_app()", (), "hello from starlette", id="factory-call"),
    pytest.param(
        "starlette_app:create_app", ("--factory",), "hello from starlette", id="factory-flag"
    ),
]


@pytest.mark.parametrize(("target", "args", "hello"), SERVED)
def test_target_is_served(target: str, args: tuple[str, ...], hello: str, tmp_path: Path) -> None:
    server = start("vivace", target, tmp_path, args=(*MODES["single"], *args))
    try:
        response = httpx.get(server.url + "/", timeout=10)
        assert (response.status_code, response.text) == (200, hello)
    finally:
        server.stop_cleanly()


#: (target, words the message must contain: what was found, and what is expected with an example)
EXAMPLE = "scope, receive, send"
BAD = [
    pytest.param("no_app", ["no_app", "app", "ASGI", EXAMPLE], id="module-without-app"),
    pytest.param("no_app:application", ["no_app", "application"], id="missing-attribute"),
    pytest.param("bad_targets:json", ["json", "module", "ASGI", "WSGI", EXAMPLE], id="a-module"),
    pytest.param(
        "bad_targets:settings", ["settings", "dict", "ASGI", "WSGI", EXAMPLE], id="a-dict"
    ),
    pytest.param("bad_targets:answer", ["answer", "int", "ASGI", "WSGI", EXAMPLE], id="an-int"),
    pytest.param("bad_targets:two_args", ["two_args", "ASGI", EXAMPLE], id="async-two-args"),
    pytest.param(
        "bad_targets:four_args", ["four_args", "ASGI", "WSGI", EXAMPLE], id="sync-four-args"
    ),
]


@pytest.mark.parametrize(("target", "words"), BAD)
def test_bad_target_exits_1_with_one_clear_message(
    target: str, words: list[str], tmp_path: Path
) -> None:
    result = run_to_exit("vivace", target, tmp_path, MODES["single"])
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output, result.output
    for word in words:
        assert word in result.output, f"{word!r} is not in the message:\n{result.output}"
    assert len(result.output.strip().splitlines()) <= 20, result.output
