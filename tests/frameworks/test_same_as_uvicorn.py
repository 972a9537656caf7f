"""The same requests to vivace and to uvicorn serving the same app give the same status, headers
(less ``date`` and ``server``) and body (issue 12, acceptance). The framing headers are compared by
a test of their own (``test_same_framing_as_uvicorn``).

The port each server listens on is replaced by ``PORT`` before comparing (it shows in ``host``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.frameworks.frameworks import Framework, params
from tests.frameworks.servers import MODES, Server, start

pytestmark = pytest.mark.slow

#: headers whose value is the server's own business
UNCOMPARED = {"date", "server"}
#: how the message is framed and the connection kept: compared on their own, so that a difference
#: there (both sides valid HTTP) is told apart from a difference in what the app meant
FRAMING = {"connection", "content-length", "transfer-encoding"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


EXCHANGES = [
    Exchange("GET", "/"),
    Exchange("HEAD", "/"),
    Exchange("GET", "/items/7?q=seven"),
    Exchange("GET", "/items/seven"),
    Exchange("GET", "/no/such/path"),
    Exchange("POST", "/echo", b"hello body", {"content-type": "application/octet-stream"}),
    Exchange("POST", "/echo", b"", {"content-type": "application/octet-stream"}),
    Exchange("DELETE", "/echo"),
    Exchange("GET", "/stream"),
    Exchange("GET", "/headers?x=1&y=%20z", headers={"x-probe": "yes", "accept": "*/*"}),
]


@dataclass
class Pair:
    framework: Framework
    vivace: Server
    uvicorn: Server


def _start_pair(framework: Framework, trace: Path, extra: tuple[str, ...] = ()) -> Pair:
    reference = start(
        "uvicorn", framework.target, trace / "uvicorn", args=(*framework.uvicorn_args, *extra)
    )
    try:
        vivace = start(
            "vivace", framework.target, trace / "vivace", args=(*MODES["single"], *extra)
        )
    except BaseException:
        reference.stop()
        raise
    return Pair(framework, vivace, reference)


def _stop_pair(pair: Pair) -> None:
    pair.uvicorn.stop()
    pair.vivace.stop()
    assert not pair.vivace.orphans, f"vivace left processes {pair.vivace.orphans}"


@pytest.fixture(scope="module", params=params())
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    framework: Framework = request.param
    started = _start_pair(framework, tmp_path_factory.mktemp(f"same-{framework.name}"))
    try:
        yield started
    finally:
        _stop_pair(started)


def _normal(name: str, value: str) -> str:
    """Flask and Quart list ``allow`` in set order, which differs from process to process."""
    if name == "allow":
        return ", ".join(sorted(part.strip() for part in value.split(",")))
    return value


def _send(server: Server, exchange: Exchange) -> tuple[int, list[tuple[str, str]], bytes]:
    with httpx.Client(timeout=15) as client:
        response = client.request(
            exchange.method,
            server.url + exchange.path,
            content=exchange.body,
            headers=exchange.headers,
        )
    # the port shows only after a host ("127.0.0.1:PORT"): a bare replace of its digits would
    # also rewrite a streamed body's digits or a length that happens to contain them
    port = f":{server.port}"
    headers = sorted(
        (name.lower(), _normal(name.lower(), value.replace(port, ":PORT")))
        for name, value in response.headers.multi_items()
        if name.lower() not in UNCOMPARED
    )
    return response.status_code, headers, response.content.replace(port.encode(), b":PORT")


def _split(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the app's headers, the framing headers)."""
    return [h for h in headers if h[0] not in FRAMING], [h for h in headers if h[0] in FRAMING]


def _differences(got: list[tuple[str, str]], expected: list[tuple[str, str]]) -> str:
    only_vivace = sorted(set(got) - set(expected))
    only_uvicorn = sorted(set(expected) - set(got))
    return f"only vivace {only_vivace}, only uvicorn {only_uvicorn}"


EXCHANGE_PARAMS = [pytest.param(e, id=e.id) for e in EXCHANGES]


@pytest.mark.parametrize("exchange", EXCHANGE_PARAMS)
def test_same_response_as_uvicorn(pair: Pair, exchange: Exchange) -> None:
    """Status, body and the headers the app sent."""
    expected = _send(pair.uvicorn, exchange)
    got = _send(pair.vivace, exchange)
    assert got[0] == expected[0], f"status: vivace {got[0]}, uvicorn {expected[0]}"
    app_got, app_expected = _split(got[1])[0], _split(expected[1])[0]
    assert app_got == app_expected, "headers: " + _differences(app_got, app_expected)
    assert got[2] == expected[2], f"body: vivace {got[2][:300]!r}, uvicorn {expected[2][:300]!r}"


@pytest.mark.parametrize("exchange", EXCHANGE_PARAMS)
def test_same_framing_as_uvicorn(pair: Pair, exchange: Exchange) -> None:
    """``connection``, ``content-length`` and ``transfer-encoding`` as uvicorn sends them, with one
    documented difference (docs/frameworks.md): when the app sends its whole body in one message
    without a Content-Length, uvicorn chunks it and vivace sends it in one write with its length
    (for HEAD, the length a GET would have; uvicorn then sends neither)."""
    got = _send(pair.vivace, exchange)
    framing_got = _split(got[1])[1]
    framing_expected = _split(_send(pair.uvicorn, exchange)[1])[1]
    lengths = [v for n, v in framing_got if n == "content-length"]
    if (
        ("transfer-encoding", "chunked") in framing_expected
        or (exchange.method == "HEAD" and not any(n != "connection" for n, _ in framing_expected))
    ) and len(lengths) == 1:
        # the documented difference: vivace's length stands for uvicorn's chunks
        if exchange.method != "HEAD":  # the body as sent, before ":PORT" replaced the port
            sent = len(got[2]) + got[2].count(b":PORT") * (len(str(pair.vivace.port)) - 4)
            assert int(lengths[0]) == sent, f"content-length {lengths[0]} != body {sent}"
        framing_got = [h for h in framing_got if h[0] != "content-length"]
        framing_expected = [h for h in framing_expected if h[0] != "transfer-encoding"]
    assert framing_got == framing_expected, "framing: " + _differences(
        framing_got, framing_expected
    )


ROOT_PATH_FRAMEWORKS = ("fastapi", "litestar", "quart", "raw-asgi3", "django-asgi", "flask")


@pytest.mark.parametrize("framework", params(*ROOT_PATH_FRAMEWORKS))
def test_root_path_as_uvicorn(framework: Framework, tmp_path: Path) -> None:
    started = _start_pair(framework, tmp_path, ("--root-path", "/api"))
    try:
        for path in ("/headers", "/items/3?q=x"):
            exchange = Exchange("GET", path, headers={"x-probe": "yes"})
            expected = _send(started.uvicorn, exchange)
            assert expected[0] == 200, expected
            got = _send(started.vivace, exchange)
            assert got[0] == expected[0], f"{path}: status vivace {got[0]}, uvicorn {expected[0]}"
            assert got[2] == expected[2], f"{path}: body vivace {got[2]!r}, uvicorn {expected[2]!r}"
            app_got, app_expected = _split(got[1])[0], _split(expected[1])[0]
            assert app_got == app_expected, f"{path}: " + _differences(app_got, app_expected)
        facts = httpx.get(started.vivace.url + "/headers", timeout=10).json()
        assert facts["root_path"] == "/api"
    finally:
        _stop_pair(started)
