"""One uvicorn process serving ``asgi_app:app`` for every test of this directory that needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.asgi.uvicorn_server import Served, serve

#: the shared server's limit (``VIVACE_`` environment variables reach ``app.config``)
WEBSOCKET_MAX_SIZE = 1000


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = serve(
        tmp_path_factory.mktemp("uvicorn"),
        env={"VIVACE_WEBSOCKET_MAX_SIZE": str(WEBSOCKET_MAX_SIZE)},
    )
    try:
        yield server
    finally:
        server.stop()
