"""serve_single: banner, listeners in order, signals, bind errors, UNIX sockets, console hook."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import App, text
from runtime.request import Request
from runtime.server import serve_single
from tests.server.helpers import RawClient, get

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from runtime import App, text
    from runtime.server import serve_single

    app = App("single")

    @app.get("/")
    async def index(request):
        return text("hi")

    @app.get("/slow")
    async def slow(request):
        import asyncio
        print("in flight", flush=True)
        await asyncio.sleep(60)
        return text("late")

    for event in ("before_server_start", "after_server_start",
                  "before_server_stop", "after_server_stop"):
        def listener(app, loop, event=event):
            print("listener", event, flush=True)
        app.register_listener(listener, event)

    unix = (sys.argv[2] if len(sys.argv) > 2 else "") or None
    debug = "--debug" in sys.argv
    raise SystemExit(serve_single(app, port=int(sys.argv[1]), unix=unix, debug=debug))
    """
)


class Proc:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        script = tmp_path / "single.py"
        script.write_text(SCRIPT)
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        assert self.proc.stdout is not None
        found: list[re.Match[str]] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                match = re.search(pattern, line)
                if match:
                    found.append(match)
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        assert found, f"{pattern!r} not seen in:\n{''.join(self.lines)}"
        return found[0]

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(out)
        return self.proc.returncode, "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def proc_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Proc] = []

    def make(*args: str) -> Proc:
        proc = Proc(tmp_path, *args)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_single_process_runs_listeners_in_order_and_stops_on_signal(
    proc_factory: object, signum: int
) -> None:
    proc: Proc = proc_factory("0")  # type: ignore[operator]
    port = int(proc.wait_for(r"Goin' Fast @ http://127\.0\.0\.1:(\d+)").group(1))
    proc.wait_for(r"Starting worker \[\d+\]")
    with RawClient(port) as client:
        client.send(get("/"))
        assert client.read_response().body == b"hi"
    proc.proc.send_signal(signum)
    code, output = proc.finish()
    assert code == 0, output
    order = re.findall(r"listener (\w+)|(Starting|Stopping) worker|Worker (complete)", output)
    flat = [next(g for g in groups if g) for groups in order]
    assert flat == [
        "before_server_start",
        "after_server_start",
        "Starting",
        "Stopping",
        "before_server_stop",
        "after_server_stop",
        "complete",
    ]
    assert "vivace.access" not in output and '"GET / HTTP/1.1" 200' not in output


@pytest.mark.slow
def test_debug_turns_the_access_log_on(proc_factory: object) -> None:
    proc: Proc = proc_factory("0", "", "--debug")  # type: ignore[operator]
    port = int(proc.wait_for(r"Goin' Fast @ http://127\.0\.0\.1:(\d+)").group(1))
    proc.wait_for(r"Starting worker")
    with RawClient(port) as client:
        client.send(get("/"))
        assert client.read_response().status == 200
    proc.wait_for(r'"GET / HTTP/1.1" 200')
    proc.proc.send_signal(signal.SIGINT)
    assert proc.finish()[0] == 0


@pytest.mark.slow
def test_unix_socket(proc_factory: object, tmp_path: Path) -> None:
    path = str(tmp_path / "vivace.sock")
    proc: Proc = proc_factory("0", path)  # type: ignore[operator]
    proc.wait_for(r"Goin' Fast @ http://unix:")
    proc.wait_for(r"Starting worker")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(get("/", "Connection: close\r\n"))
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"hi")
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish()[0] == 0
    assert not os.path.exists(path)  # the socket file is removed at shutdown


def _app() -> App:
    app = App("inproc")

    @app.get("/")
    async def index(request: Request) -> object:
        return text("hi")

    return app


def test_port_in_use_prints_one_line_and_returns_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_single(_app(), port=port, motd=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "already in use" in err and str(port) in err


def test_bad_host_prints_one_line_and_returns_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_single(_app(), host="no-such-host.invalid", port=0, motd=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not resolve" in err


@pytest.mark.parametrize(
    ("host", "family"),
    [("127.0.0.1", socket.AF_INET), ("localhost", None), ("::1", socket.AF_INET6)],
)
def test_bind_resolves_ascii_hosts(host: str, family: socket.AddressFamily | None) -> None:
    # ASCII hosts are passed to getaddrinfo as bytes (no "idna" codec at start-up)
    from runtime.server.sockets import bind

    try:
        sock = bind(host, 0)
    except OSError as exc:  # pragma: no cover - a machine without IPv6 on loopback
        pytest.skip(f"{host} cannot be bound here: {exc}")
    with sock:
        assert sock.getsockname()[1] > 0
        if family is not None:
            assert sock.family == family


def test_non_ascii_host_goes_through_idna_and_fails_with_the_bind_message() -> None:
    from runtime.server.sockets import BindError, bind

    with pytest.raises(BindError, match=r"the host 'bücher\.invalid' does not resolve"):
        bind("bücher.invalid", 0)


def test_console_result_is_the_return_value_and_signal_handlers_are_restored() -> None:
    app = _app()
    seen: list[str] = []
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    @app.after_server_start
    async def started(app: App) -> None:
        seen.append("after_server_start")

    async def console(app: App, control: object = None, *, url: str | None = None) -> int:
        seen.append("console")
        assert control is None and url is not None and url.startswith("http://127.0.0.1:")
        return 7

    assert serve_single(app, port=0, motd=False, console=console) == 7
    assert seen == ["after_server_start", "console"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_failing_start_listener_propagates() -> None:
    app = _app()

    @app.before_server_start
    async def broken(app: App) -> None:
        raise RuntimeError("cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        serve_single(app, port=0, motd=False)


def test_background_tasks_are_cancelled_at_shutdown() -> None:
    app = _app()
    events: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    @app.after_server_start
    async def start(app: App) -> None:
        app.add_task(forever())

    async def console(app: App, control: object = None, *, url: str | None = None) -> None:
        await asyncio.sleep(0.05)
        events.append("console done")

    assert serve_single(app, port=0, motd=False, console=console) == 0
    assert events == ["console done", "cancelled"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("REQUEST_TIMEOUT", "soon", "REQUEST_TIMEOUT must be a positive number of seconds"),
        ("KEEP_ALIVE_TIMEOUT", -1, "KEEP_ALIVE_TIMEOUT must be a positive number of seconds"),
        ("REQUEST_MAX_SIZE", 1.5, "REQUEST_MAX_SIZE must be a positive whole number"),
    ],
)
def test_bad_limits_are_refused_with_the_setting_named(
    key: str, value: object, message: str
) -> None:
    from runtime.exceptions import ConfigError

    app = _app()
    app.config[key] = value
    with pytest.raises(ConfigError, match=message):
        serve_single(app, port=0, motd=False)


def test_none_means_no_timeout() -> None:
    app = _app()
    app.config.update(REQUEST_TIMEOUT=None, RESPONSE_TIMEOUT=None, GRACEFUL_SHUTDOWN_TIMEOUT=None)

    async def console(app: App, control: object = None, *, url: str | None = None) -> int:
        return 0

    assert serve_single(app, port=0, motd=False, console=console) == 0


@pytest.mark.slow
def test_a_second_ctrl_c_stops_without_waiting_for_the_drain(proc_factory: object) -> None:
    proc: Proc = proc_factory("0")  # type: ignore[operator]
    port = int(proc.wait_for(r"Goin' Fast @ http://127\.0\.0\.1:(\d+)").group(1))
    proc.wait_for(r"Starting worker")
    with RawClient(port) as client:
        client.send(get("/slow"))
        proc.wait_for(r"in flight")
        proc.proc.send_signal(signal.SIGINT)
        proc.wait_for(r"Stopping worker")
        proc.proc.send_signal(signal.SIGINT)
        code, output = proc.finish(timeout=10)
        assert code == 0, output
        assert "Second signal" in output and "Worker complete" in output
        assert client.closed()
