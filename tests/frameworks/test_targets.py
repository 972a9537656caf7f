"""What vivace accepts as a target besides its own ``App`` (issue 12, point 1): ASGI 3, ASGI 2 and
WSGI apps detected automatically or forced with ``--interface``, factories, and one clear message
with exit 1 for anything else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests import live_vivace as live
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


LAYOUTS = [
    # app/ is no package: main.py imports its sibling as under `fastapi dev app/main.py`
    pytest.param("app/main.py", {"app/main.py": "import models\n"}, (), id="directory"),
    # app/ is a package: main.py is app.main, imported from the project's directory
    pytest.param(
        "app/main.py:api",
        {"app/__init__.py": "", "app/main.py": "from . import models\n"},
        ("-w", "2"),
        id="package",
    ),
]

FASTAPI_MAIN = """
from fastapi import FastAPI

{name} = FastAPI()


@{name}.get("/")
async def index() -> str:
    return models.GREETING
"""


@pytest.mark.parametrize(("target", "files", "args"), LAYOUTS)
def test_a_file_target_is_served_and_reloaded_as_fastapi_dev_serves_it(
    target: str, files: dict[str, str], args: tuple[str, ...], tmp_path: Path
) -> None:
    """``vivace app/main.py --reload``, as ``fastapi dev app/main.py``: the FastAPI app is found
    in the file's module, its sibling module imports, and a save of that module is served."""
    name = target.partition(":")[2] or "app"
    for path, text in files.items():
        extra = FASTAPI_MAIN.format(name=name) if path.endswith("main.py") else ""
        live.write(tmp_path / path, text + extra)
    edited = tmp_path / "app" / "models.py"  # the sibling module
    live.write(edited, 'GREETING = "hello v1"\n')
    server, port = live.start(tmp_path, target, "--reload", "-v", "--no-motd", *args)
    try:
        live.serves(server, port, "hello v1")
        live.save_until_seen(edited, 'GREETING = "hello v2"\n', server.output)
        live.serves(server, port, "hello v2")
    finally:
        assert server.stop() == 0, server.output()


def test_the_start_up_banner_gives_a_fastapi_apps_docs_as_fastapi_dev_does(
    tmp_path: Path,
) -> None:
    """``API docs @ <url>/docs`` after ``Goin' Fast @ <url>``: the app's own ``docs_url``, none
    when it is turned off, and none for another framework."""
    from fastapi import FastAPI
    from starlette.applications import Starlette

    from runtime.foreign import host_foreign
    from runtime.hosting import docs_path

    def docs(app: object) -> str | None:
        return docs_path(host_foreign(app, None, name="t"))

    assert docs(FastAPI()) == "/docs"
    assert docs(FastAPI(docs_url="/api/docs")) == "/api/docs"
    assert docs(FastAPI(docs_url=None)) is None
    assert docs(Starlette()) is None
    live.write(tmp_path / "main.py", "import fastapi\n\napp = fastapi.FastAPI()\n")
    for mode in ("--single-process", "-w1"):
        server, port = live.start(tmp_path, "main.py", mode)
        try:
            banner = f"Goin' Fast @ http://127.0.0.1:{port}\n"
            out = server.wait_output(f"API docs @ http://127.0.0.1:{port}/docs\n")
            assert out.index(banner) < out.index("API docs @ ")
            assert "swagger-ui" in live.get(port, "/docs")  # the page the line links to
        finally:
            assert server.stop() == 0, server.output()
