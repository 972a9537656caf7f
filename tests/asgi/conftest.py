"""One ASGI server process per kind serving ``asgi_app:app`` for the tests of this directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.asgi.servers import SERVERS, Served, installed, serve

#: the shared server's limit (``VIVACE_`` environment variables reach ``app.config``)
WEBSOCKET_MAX_SIZE = 1000


def server_params() -> list[object]:
    """uvicorn, and hypercorn when it is installed (skipped otherwise)."""
    return [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(not installed(kind), reason=f"{kind} is not installed"),
        )
        for kind in SERVERS
    ]


@pytest.fixture(scope="session", params=server_params())
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    kind: str = request.param
    server = serve(
        tmp_path_factory.mktemp(kind),
        env={"VIVACE_WEBSOCKET_MAX_SIZE": str(WEBSOCKET_MAX_SIZE)},
        server=kind,
    )
    try:
        yield server
    finally:
        server.stop()
