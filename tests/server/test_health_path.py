"""``--health-path PATH``: a readiness endpoint answered by the server itself once the workers
serve, before the app's routing and middleware (issue 15)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from tests.live_vivace import Vivace
from tests.support import free_port

APP = textwrap.dedent(
    """
    from runtime import App, text

    app = App("Guarded")

    @app.on_request
    async def deny(request):
        return text("the app's middleware ran", status=401)

    @app.get("/<anything:path>")
    async def anything(request, anything):
        return text("the app")
    """
)

ASGI_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"the app"})
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "mode"),
    [(APP, ()), (APP, ("--single-process",)), (ASGI_APP, ("-w", "2"))],
)
def test_the_server_answers_the_health_path(
    tmp_path: Path, source: str, mode: tuple[str, ...]
) -> None:
    (tmp_path / "guarded.py").write_text(source)
    port = free_port()
    server = Vivace(tmp_path, "guarded:app", "-p", str(port), "--health-path", "/healthz", *mode)
    try:
        health = server.wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2), "a health answer"
        )
        assert (health.status_code, health.text) == (200, "ok")
        head = httpx.head(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert head.status_code == 200 and head.content == b""
        other = httpx.get(f"http://127.0.0.1:{port}/healthz/more", timeout=2)
        assert other.status_code in (401, 418)  # everything else is the app's
        assert httpx.post(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (
            401,
            405,
            418,
        )
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_health_path_must_start_with_a_slash(tmp_path: Path) -> None:
    (tmp_path / "guarded.py").write_text(APP)
    server = Vivace(tmp_path, "guarded:app", "--health-path", "healthz")
    assert server.exit_code() == 1
    assert "--health-path must start with '/', got 'healthz'" in server.output()
