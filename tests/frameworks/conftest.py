"""Server fixtures for the framework tests: one real server process per (framework, server) for a
whole test module, always stopped, with no process left behind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.frameworks.frameworks import FRAMEWORKS, Framework
from tests.frameworks.servers import MODES, Server, start

#: where each corpus test runs: vivace in both process modes, and uvicorn as the reference
SERVERS = {
    "vivace-single": ("vivace", MODES["single"]),
    "vivace-w2": ("vivace", MODES["workers"]),
    "uvicorn": ("uvicorn", ()),
}


@dataclass
class Served:
    framework: Framework
    server: Server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url


def _served_params() -> list[object]:
    return [
        pytest.param((framework, where), id=f"{framework.name}-{where}")
        for framework in FRAMEWORKS
        for where in SERVERS
    ]


@pytest.fixture(scope="module", params=_served_params())
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    framework, where = request.param
    kind, args = SERVERS[where]
    if kind == "uvicorn":
        args = framework.uvicorn_args
    trace = tmp_path_factory.mktemp(f"{framework.name}-{where}")
    server = start(kind, framework.target, trace, args=args)
    try:
        yield Served(framework, server)
    finally:
        server.stop()
        assert not server.orphans, f"processes left behind: {server.orphans}"
