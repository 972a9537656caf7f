"""``--proxy-headers`` and ``--forwarded-allow-ips`` with uvicorn's semantics (issue 15):
``X-Forwarded-For``, ``X-Forwarded-Proto`` and RFC 7239 ``Forwarded``, trusted only from the
listed addresses, reflected in ``request.remote_addr`` / ``request.scheme`` and in an ASGI app's
``client`` / ``scheme``."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from runtime.proxy import TrustedProxies, forwarded, forwarded_address
from tests.live_vivace import Vivace
from tests.support import free_port


def headers(**values: str) -> Callable[[str], list[str]]:
    table = {name.replace("_", "-"): [value] for name, value in values.items()}
    return lambda name: table.get(name, [])


@pytest.mark.parametrize(
    ("peer", "allow", "sent", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"], {"x_forwarded_for": "1.2.3.4"}, ("1.2.3.4", None)),
        ("127.0.0.1", ["127.0.0.1"], {"x_forwarded_proto": "https"}, (None, "https")),
        ("10.0.0.9", ["127.0.0.1"], {"x_forwarded_for": "1.2.3.4"}, (None, None)),  # untrusted
        # the right-most address that is not a trusted proxy
        (
            "10.0.0.2",
            ["10.0.0.0/8"],
            {"x_forwarded_for": "6.6.6.6, 1.2.3.4, 10.0.0.1"},
            ("1.2.3.4", None),
        ),
        ("10.0.0.2", ["*"], {"x_forwarded_for": "6.6.6.6, 1.2.3.4"}, ("6.6.6.6", None)),
        ("127.0.0.1", ["127.0.0.1"], {"x_forwarded_proto": "gopher"}, (None, None)),
        # an X-Forwarded-For entry may carry a port: the client is the address, and a trusted
        # proxy written with its port is still recognised
        ("127.0.0.1", ["127.0.0.1"], {"x_forwarded_for": "1.2.3.4:5555"}, ("1.2.3.4", None)),
        (
            "127.0.0.1",
            ["127.0.0.1"],
            {"x_forwarded_for": "[2001:db8::1]:4711"},
            ("2001:db8::1", None),
        ),
        (
            "127.0.0.1",
            ["127.0.0.1"],
            {"x_forwarded_for": "1.2.3.4, 127.0.0.1:8080"},
            ("1.2.3.4", None),
        ),
        (
            "127.0.0.1",
            ["127.0.0.1"],
            {"forwarded": 'for="[2001:db8::1]:4711";proto=https, for=127.0.0.1'},
            ("2001:db8::1", "https"),
        ),
        (
            "127.0.0.1",
            ["127.0.0.1"],
            {"forwarded": "for=5.6.7.8:80;proto=http", "x_forwarded_for": "1.2.3.4"},
            ("5.6.7.8", "http"),  # Forwarded is used instead of X-Forwarded-*
        ),
    ],
)
def test_forwarded(
    peer: str, allow: list[str], sent: dict[str, str], expected: tuple[str | None, str | None]
) -> None:
    assert forwarded(peer, headers(**sent), TrustedProxies(allow)) == expected


@pytest.mark.parametrize(
    ("allow", "sent", "expected"),
    [
        (["127.0.0.1"], {"x_forwarded_for": "1.2.3.4:5555"}, ("1.2.3.4", 5555)),
        (["127.0.0.1"], {"x_forwarded_for": "1.2.3.4"}, ("1.2.3.4", 0)),
        (
            ["127.0.0.1", "10.0.0.2"],
            {"x_forwarded_for": "1.2.3.4:1, 5.6.7.8:2, 10.0.0.2:3"},
            ("5.6.7.8", 2),
        ),
        (["127.0.0.1"], {"x_forwarded_for": "[2001:db8::1]:4711"}, ("2001:db8::1", 4711)),
        (["127.0.0.1"], {"x_forwarded_for": "2001:db8::1"}, ("2001:db8::1", 0)),
        (["127.0.0.1"], {"x_forwarded_for": "1.2.3.4:99999"}, ("1.2.3.4", 0)),  # not a port
        (["127.0.0.1"], {"x_forwarded_for": "1.2.3.4:http"}, ("1.2.3.4", 0)),
        (["127.0.0.1"], {"x_forwarded_for": "1.2.3.4:\u00b2"}, ("1.2.3.4", 0)),  # "²": a digit
        (["127.0.0.1"], {"x_forwarded_for": "[::1]:\u00b9\u00b2"}, ("::1", 0)),
        (["127.0.0.1"], {"forwarded": 'for="[2001:db8::1]:4711"'}, ("2001:db8::1", 4711)),
        (["10.9.9.9"], {"x_forwarded_for": "1.2.3.4:5555"}, None),  # the peer is not trusted
    ],
)
def test_forwarded_address_keeps_the_port_the_proxy_gave(
    allow: list[str], sent: dict[str, str], expected: tuple[str, int] | None
) -> None:
    assert forwarded_address("127.0.0.1", headers(**sent), TrustedProxies(allow))[0] == expected


def test_bad_allow_entries_are_refused() -> None:
    TrustedProxies.check(["127.0.0.1, 10.0.0.0/8", "*", "::1"])
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an IP address or network"):
        TrustedProxies.check(["127.0.0.1,proxy.local"])


# --- real processes ------------------------------------------------------------------------------

VIVACE_APP = textwrap.dedent(
    """
    from runtime import App, json

    app = App("Proxied")

    @app.get("/")
    async def index(request):
        return json({"remote_addr": request.remote_addr, "client_ip": request.client_ip,
                     "ip": request.ip, "scheme": request.scheme, "url": request.url})

    @app.websocket("/ws")
    async def ws(request, ws):
        await ws.send(request.scheme + " " + request.client_ip)
    """
)

ASGI_APP = textwrap.dedent(
    """
    import json

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]})
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": body})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})
    """
)

SENT = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def start(tmp_path: Path, source: str, *flags: str) -> tuple[Vivace, int]:
    (tmp_path / "proxied.py").write_text(source)
    port = free_port()
    server = Vivace(tmp_path, "proxied:app", "-p", str(port), *flags)
    return server, port


def get(port: int, sent: dict[str, str]) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{port}/", headers=sent, timeout=2).json())

    return probe()


def ws_text(port: int, sent: dict[str, str]) -> str:
    async def talk() -> str:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers=sent, open_timeout=5
        ) as ws:
            return str(await asyncio.wait_for(ws.recv(), 5))

    return asyncio.run(talk())


@pytest.mark.slow
def test_trusted_proxy_headers_reach_the_request(tmp_path: Path) -> None:
    server, port = start(tmp_path, VIVACE_APP, "--proxy-headers")
    try:
        body = server.wait_until(lambda: get(port, SENT), "an answer")
        assert body == {
            "remote_addr": "203.0.113.7",
            "client_ip": "203.0.113.7",
            "ip": "127.0.0.1",  # the peer itself: the proxy
            "scheme": "https",
            "url": f"https://127.0.0.1:{port}/",
        }
        forwarded_header = {"Forwarded": 'for="[2001:db8::5]";proto=https'}
        assert get(port, forwarded_header)["remote_addr"] == "2001:db8::5"
        assert ws_text(port, SENT) == "wss 203.0.113.7"
        plain = get(port, {})
        assert (plain["remote_addr"], plain["scheme"]) == ("", "http")
    finally:
        assert server.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8")])
def test_untrusted_or_off_proxy_headers_are_ignored(tmp_path: Path, flags: tuple[str, ...]) -> None:
    server, port = start(tmp_path, VIVACE_APP, *flags)
    try:
        body = server.wait_until(lambda: get(port, SENT), "an answer")
        assert (body["remote_addr"], body["client_ip"], body["scheme"]) == ("", "127.0.0.1", "http")
        assert ws_text(port, SENT) == "ws 127.0.0.1"
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_an_asgi_app_gets_the_client_and_scheme_of_a_trusted_proxy(tmp_path: Path) -> None:
    server, port = start(tmp_path, ASGI_APP, "--proxy-headers", "--forwarded-allow-ips", "*")
    try:
        body = server.wait_until(lambda: get(port, SENT), "an answer")
        assert body == {"client": ["203.0.113.7", 0], "scheme": "https"}
        assert json.loads(ws_text(port, SENT)) == {"client": ["203.0.113.7", 0], "scheme": "wss"}
        plain = get(port, {})
        assert plain == {"client": ["127.0.0.1", plain["client"][1]], "scheme": "http"}
        # the port a proxy gives with the address is kept, as uvicorn keeps it
        with_port = get(port, {"X-Forwarded-For": "203.0.113.7:5555, 10.0.0.2"})
        assert with_port["client"] == ["203.0.113.7", 5555]  # "*": the left-most entry
        v6 = get(port, {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'})
        assert v6 == {"client": ["2001:db8::1", 4711], "scheme": "https"}
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_an_asgi_app_behind_an_untrusted_peer_keeps_its_connection(tmp_path: Path) -> None:
    server, port = start(tmp_path, ASGI_APP, "--proxy-headers", "--forwarded-allow-ips", "10.1.1.1")
    try:
        body = server.wait_until(lambda: get(port, SENT), "an answer")
        assert body["client"][0] == "127.0.0.1" and body["scheme"] == "http"
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_bad_forwarded_allow_ips_entry_stops_vivace(tmp_path: Path) -> None:
    server, _ = start(tmp_path, VIVACE_APP, "--proxy-headers", "--forwarded-allow-ips", "lb.local")
    assert server.exit_code() == 1
    assert "--forwarded-allow-ips: 'lb.local' is not an IP address or network" in server.output()
