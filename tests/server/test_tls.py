"""TLS on vivace's own server (issue 15): ``--tls-cert``/``--tls-key`` (and ``--tls-ca`` for client
certificates) serve HTTPS and WSS in every mode; ``--auto-tls`` makes a local CA once and reuses
it. Real handshakes: httpx, ``curl --cacert`` and a websockets client."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from runtime.launch import options_from_run_args
from tests.live_vivace import Vivace
from tests.support import free_port

APP = textwrap.dedent(
    """
    from runtime import App, json

    app = App("Secure")

    @app.get("/")
    async def index(request):
        return json({"scheme": request.scheme, "url": request.url})

    @app.websocket("/ws")
    async def ws(request, ws):
        await ws.send(request.scheme)
        await ws.send(await ws.recv())
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
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": scope["scheme"]})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(scope["scheme"]).encode()})
    """
)


class Certs:
    def __init__(self, where: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        leaf = self.ca.issue_cert("localhost", "127.0.0.1", "::1")
        self.ca_file = where / "ca.pem"
        self.cert = where / "fullchain.pem"
        self.key = where / "privkey.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        leaf.private_key_and_cert_chain_pem.write_to_path(str(self.cert))
        leaf.private_key_pem.write_to_path(str(self.key))

    def flags(self) -> tuple[str, ...]:
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key))


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


def trusting(ca: Path | str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def https_get(port: int, ca: Path | str, host: str = "127.0.0.1") -> Any:
    return httpx.get(f"https://{host}:{port}/", verify=trusting(ca), timeout=3).json()


def wss_texts(port: int, ca: Path | str, send: str | None = None) -> list[str]:
    """A websocket over TLS, driven by websockets' sans-I/O protocol on one blocking socket.

    One thread reads and writes the TLS socket: the threaded sync client reads and writes one
    SSL object from two threads, and about one connection in 40 then never sends its request;
    an asyncio client's SSL transport may still be closing when ``asyncio.run`` returns on
    Python 3.10 (a ResourceWarning)."""
    protocol = ClientProtocol(parse_uri(f"wss://localhost:{port}/ws"))
    raw = socket.create_connection(("localhost", port), timeout=5)
    with trusting(ca).wrap_socket(raw, server_hostname="localhost") as sock:

        def flush() -> None:
            for data in protocol.data_to_send():
                if data:
                    sock.sendall(data)

        def next_text() -> str:
            while True:
                for event in protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        return event.data.decode()
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                protocol.receive_data(data)
                flush()  # pongs, close frames

        protocol.send_request(protocol.connect())
        flush()
        texts = [next_text()]
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if send is not None:
            protocol.send_text(send.encode())
            flush()
            texts.append(next_text())
        protocol.send_close()
        flush()
        return texts


def serve(tmp_path: Path, source: str, *flags: str, **kw: Any) -> tuple[Vivace, int]:
    (tmp_path / "secure.py").write_text(source)
    port = free_port()
    return Vivace(tmp_path, "secure:app", "-p", str(port), *flags, **kw), port


@pytest.mark.slow
@pytest.mark.parametrize("mode", [(), ("--single-process",), ("-w", "2"), ("--reload",)])
def test_https_and_wss_in_every_mode(tmp_path: Path, certs: Certs, mode: tuple[str, ...]) -> None:
    # a drain that waited for a failed handshake (its connection is never made nor lost) would
    # take the whole grace, longer than stop() waits
    grace = {"VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT": "60"}
    server, port = serve(tmp_path, APP, *certs.flags(), *mode, env=grace)
    try:
        body = server.wait_until(lambda: https_get(port, certs.ca_file), "an HTTPS answer")
        assert body == {"scheme": "https", "url": f"https://127.0.0.1:{port}/"}
        assert https_get(port, certs.ca_file, host="localhost")["scheme"] == "https"
        assert f"Goin' Fast @ https://127.0.0.1:{port}" in server.output()
        try:
            texts = wss_texts(port, certs.ca_file, send="over tls")
        except Exception as exc:
            raise AssertionError(f"{exc!r}; the server:\n{server.output()}") from exc
        assert texts == ["wss", "over tls"]
        # plain HTTP on the TLS port is not served
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=3)
        # a client that does not trust the CA fails the handshake
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/", timeout=3)
    finally:
        assert server.stop() == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(tmp_path: Path, certs: Certs) -> None:
    server, port = serve(tmp_path, APP, *certs.flags())
    try:
        server.wait_until(lambda: https_get(port, certs.ca_file), "an HTTPS answer")
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "5",
                "--cacert",
                str(certs.ca_file),
                f"https://localhost:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["scheme"] == "https"
        refused = subprocess.run(
            ["curl", "-sS", "--max-time", "5", f"https://localhost:{port}/"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert refused.returncode == 60, refused  # curl: peer certificate cannot be verified
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_an_asgi_app_sees_https_and_wss(tmp_path: Path, certs: Certs) -> None:
    server, port = serve(tmp_path, ASGI_APP, *certs.flags())
    try:
        assert server.wait_until(lambda: https_get(port, certs.ca_file), "an answer") == "https"
        assert wss_texts(port, certs.ca_file) == ["wss"]
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_tls_ca_requires_a_client_certificate(tmp_path: Path, certs: Certs) -> None:
    client = certs.ca.issue_cert("client@example.org")
    client_pem = tmp_path / "client.pem"
    client.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    server, port = serve(tmp_path, APP, *certs.flags(), "--tls-ca", str(certs.ca_file))
    try:
        context = ssl.create_default_context(cafile=str(certs.ca_file))
        context.load_cert_chain(str(client_pem))
        body = server.wait_until(
            lambda: httpx.get(f"https://localhost:{port}/", verify=context, timeout=3).json(),
            "an answer to a client with a certificate",
        )
        assert body["scheme"] == "https"
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.get(f"https://localhost:{port}/", verify=trusting(certs.ca_file), timeout=3)
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_auto_tls_makes_a_local_ca_once_and_reuses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state)}
    tls_dir = state / "vivace" / "tls"
    first, port = serve(tmp_path, APP, "--auto-tls", env=env)
    try:
        ca = tls_dir / "ca.pem"
        body = first.wait_until(lambda: https_get(port, ca, host="localhost"), "an HTTPS answer")
        assert body["scheme"] == "https"
        assert https_get(port, ca, host="127.0.0.1")["scheme"] == "https"
        out = first.output()
        assert out.count("made a local certificate authority") == 1
        assert f"curl --cacert {ca}" in out
    finally:
        assert first.stop() == 0
    made = {name: (tls_dir / name).read_bytes() for name in ("ca.pem", "cert.pem", "key.pem")}
    assert (tls_dir / "key.pem").stat().st_mode & 0o077 == 0  # the key is private
    second, port = serve(tmp_path, APP, "--auto-tls", env=env)
    try:
        second.wait_until(lambda: https_get(port, tls_dir / "ca.pem"), "an HTTPS answer")
        assert "made a local certificate authority" not in second.output()
    finally:
        assert second.stop() == 0
    assert {name: (tls_dir / name).read_bytes() for name in made} == made  # reused as it was


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("missing cert", "--tls-cert {tmp}/nope.pem: no such file"),
        ("key of another cert", "cannot be loaded"),
        ("not pem", "cannot be loaded"),
    ],
)
def test_a_bad_certificate_or_key_is_one_clear_error(
    tmp_path: Path, certs: Certs, which: str, expected: str
) -> None:
    flags = {
        "missing cert": ("--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(certs.key)),
        "key of another cert": (
            "--tls-cert",
            str(certs.cert),
            "--tls-key",
            str(Certs(tmp_path / "o").key),
        ),
        "not pem": ("--tls-cert", str(tmp_path / "secure.py"), "--tls-key", str(certs.key)),
    }[which]
    server, _ = serve(tmp_path, APP, *flags)
    assert server.exit_code() == 1
    out = server.output()
    assert expected.format(tmp=tmp_path) in out
    assert out.count("\n") == 1 and "Traceback" not in out, out


def test_app_run_takes_sanic_ssl_arguments(tmp_path: Path) -> None:
    global MODULE_APP
    options = options_from_run_args(
        MODULE_APP, ssl={"cert": "c.pem", "key": "k.pem"}, single_process=True
    )
    assert options.tls_cert is not None and options.tls_cert.endswith("/c.pem")
    assert options.tls_key is not None and options.tls_key.endswith("/k.pem")
    options = options_from_run_args(MODULE_APP, ssl=str(tmp_path), single_process=True)
    assert options.tls_cert == str(tmp_path / "fullchain.pem")
    assert options.url.startswith("https://")
    assert options_from_run_args(MODULE_APP, auto_tls=True, single_process=True).auto_tls
    with pytest.raises(NotImplementedError, match="every worker builds its own SSLContext"):
        options_from_run_args(MODULE_APP, ssl=ssl.create_default_context(), single_process=True)


MODULE_APP = object()


@pytest.mark.slow
def test_the_console_client_trusts_the_auto_tls_certificate(tmp_path: Path) -> None:
    """``client`` and ``client.websocket`` of the console verify the server's certificate
    against the system's CAs plus the CA ``--auto-tls`` made (issue 15, point 5)."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    script = (
        'print("GOT", client.get("/").json()["scheme"]); '
        'ws = await client.websocket("/ws"); print("WS", await ws.recv()); '
        'await ws.send("hi"); print("ECHO", await ws.recv()); await ws.close()'
    )
    server, _ = serve(tmp_path, APP, "--auto-tls", "--repl-command", script, env=env)
    try:
        code = server.proc.wait(60)
    finally:
        server.stop()
    out = server.output()
    assert code == 0, out
    assert "GOT https" in out and "WS wss" in out and "ECHO hi" in out, out
