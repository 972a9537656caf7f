"""``vivace attach`` as a user drives it: a server started with no terminal (in the background,
output to a file), consoles attached from real pseudo-terminals (pexpect, screens kept by pyte)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.attach.support import AttachTerm, Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, ready_attach: bool = True) -> Server:
        s = Server(tmp_path, *args, env=env)
        started.append(s)
        s.wait_ready(attach=ready_attach)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def attach(tmp_path: Path) -> Iterator[Callable[..., AttachTerm]]:
    started: list[AttachTerm] = []

    def start(srv: Server, *args: str, tag: str = "a") -> AttachTerm:
        t = AttachTerm(tmp_path, srv.env, *args, tag=tag)
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


class Load:
    """Requests to the server from a thread all along; every one must succeed."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.srv.get().status_code
            except Exception as exc:
                self.failures.append(repr(exc))
            else:
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(str(status))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_two_consoles_attached_at_once_to_a_server_without_a_terminal(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    srv = server("--dev")
    assert "No console: stdin and stdout must be a terminal" in srv.log()
    before = srv.worker_pids()
    load = Load(srv)

    first = attach(srv, tag="first")
    first.wait_prompt()
    assert "vivace console for AttachDemo" in first.text
    second = attach(srv, "--pid", str(srv.pid), tag="second")
    second.wait_prompt()

    # statements run in the server's main process, with the same names as ENTER's console
    first.run("import os; os.getpid()", str(srv.pid))
    first.run('client.get("/").status_code', "200")
    first.run("app.name", "'AttachDemo'")
    # each console has its own namespace
    first.run("mine = 41 + 1", "")
    first.run("mine", "42")
    second.run("mine", "NameError")
    # the worker table, and worker output streamed above the attached prompt
    table = second.run("workers", "server workers ready")
    assert "Vivace-Server-0-0" in table and "Vivace-Server-1-0" in table
    second.run('client.get("/spam?rate=200&seconds=0.3").status_code', "200")
    second.wait("| spam done", 20)
    first.wait("| spam done", 20)  # every attached console sees the workers' output

    # history and replay, a websocket round trip (followed above the attached prompt), a stream
    shown = first.run("history", "GET")  # each console has its own history
    assert "/spam" not in shown
    second.run("history", "/spam")
    second.run('replay(-1, params={"rate": "100", "seconds": "0.1"}).status_code', "200")
    second.run("ws = await client.websocket('/chat')", "")
    second.run('await ws.send("hi"); await ws.recv()', "'echo: hi'")
    second.run("ws.follow()", "printing incoming messages")
    second.run('await ws.send("again")', "<- echo: again")
    second.run("await ws.close()", "closed (1000)")
    second.run('s = await client.stream("/ticks")', 'event: tick  id: 2  data: {"n": 2}')
    second.run("s.events[-1].json()", "{'n': 2}")

    # restart one worker from the first console: only its pid changes
    first.run('restart("Vivace-Server-0-0")', "ready in", timeout=60)
    after = srv.worker_pids()
    assert after["Vivace-Server-0-0"] != before["Vivace-Server-0-0"]
    assert after["Vivace-Server-1-0"] == before["Vivace-Server-1-0"]
    assert after["Vivace-Main"] == before["Vivace-Main"] == srv.pid
    assert after["Vivace-Reloader-0"] == before["Vivace-Reloader-0"]

    # stop() asks first; "n" keeps the server running
    second.send("stop()\r")
    second.wait("[y/N]")
    second.send("n")
    second.wait("not stopped")
    second.wait_prompt()

    # Ctrl+D detaches one console, exit() the other: the server keeps serving, same pids
    first.send("\x04")
    assert first.exit_code() == 0
    assert first.stty_restored()
    second.send("exit()\r")
    assert second.exit_code() == 0
    assert second.stty_restored()
    time.sleep(0.3)
    load.stop()
    assert load.failures == [] and load.ok > 0
    assert srv.worker_pids() == after
    assert srv.proc.poll() is None and srv.serves()
    log = srv.log()
    assert log.count("Console attached") == 2 and log.count("Console detached") == 2


def test_stop_after_confirmation_stops_the_server(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    srv = server("--dev")
    term = attach(srv)
    term.wait_prompt()
    term.send("stop()\r")
    term.wait("[y/N]")
    term.send("y")
    term.wait("The server stopped.", 30)
    assert term.exit_code() == 0
    assert term.stty_restored()
    srv.proc.wait(30)
    assert srv.proc.returncode == 0
    assert not srv.socket_path().exists()


def test_a_server_that_exits_while_attached_ends_the_console_with_one_line(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    srv = server("--dev")
    term = attach(srv)
    term.wait_prompt()
    term.send("1 +")  # half-typed input: the prompt is being edited when the server goes
    srv.stop()
    term.wait(f"vivace attach: the server (pid {srv.pid}) exited; detached", 30)
    assert term.exit_code() == 1
    assert term.stty_restored()


def test_ctrl_c_cancels_only_the_remote_statement(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    srv = server("--dev")
    term = attach(srv)
    term.wait_prompt()
    term.send("import time; time.sleep(30)\r")
    time.sleep(0.5)
    term.send("\x03")
    term.wait("KeyboardInterrupt", 10)
    term.wait_prompt()
    term.run("6 * 7", "42")
    assert srv.proc.poll() is None and srv.serves()


def test_attach_finds_the_only_server_lists_several_and_says_when_there_is_none(
    tmp_path: Path, server: Callable[..., Server]
) -> None:
    from tests.attach.support import env_for

    env = env_for(tmp_path)

    def attach_with(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runtime", "attach", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    none = attach_with("1\n")
    assert none.returncode == 1
    assert "no running vivace server of this user" in none.stderr

    one = server("--attach", env=env)
    done = attach_with("print('printed'); 6 * 7\n")
    assert done.returncode == 0, done.stderr
    assert "printed\n42\n" in done.stdout
    failed = attach_with("1 / 0\n")
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr

    two = server("--dev", env=env)
    several = attach_with("1\n")
    assert several.returncode == 1
    assert f"vivace attach --pid {one.pid}" in several.stderr
    assert f"vivace attach --pid {two.pid}" in several.stderr
    chosen = attach_with("import os; os.getpid()\n", "--pid", str(two.pid))
    assert chosen.stdout.strip() == str(two.pid)


def test_no_control_socket_without_dev_or_attach_and_none_with_no_attach(
    server: Callable[..., Server],
) -> None:
    plain = server(ready_attach=False)
    off = server("--dev", "--no-attach", ready_attach=False)
    for srv in (plain, off):
        assert "vivace attach" not in srv.log()
        assert not srv.socket_path().exists()
        done = subprocess.run(
            [sys.executable, "-m", "runtime", "attach", "--pid", str(srv.pid)],
            input="1\n",
            capture_output=True,
            text=True,
            env=srv.env,
            timeout=60,
        )
        assert done.returncode == 1
        assert done.stderr == (
            f"vivace attach: process {srv.pid} has no control socket at {srv.socket_path()} (a "
            "vivace server listens on one when started with --dev or --attach)\n"
        )


def test_attached_beside_the_console_of_the_server_terminal(
    tmp_path: Path, attach: Callable[..., AttachTerm]
) -> None:
    """The server runs in a terminal with its own console open (ENTER); a console attached
    meanwhile gets its own output, and the local one keeps working."""
    import pexpect

    from tests.attach.support import ANSI, ROWS, env_for
    from tests.support import free_port

    env = env_for(tmp_path)
    port = free_port()
    local = pexpect.spawn(
        sys.executable,
        ["-m", "runtime", "attach_app:app", "-p", str(port), "--dev"],
        cwd=str(tmp_path),
        env=env,
        dimensions=(ROWS, 110),
        encoding="utf-8",
        codec_errors="replace",
        timeout=30,
    )
    seen = [""]

    def local_wait(needle: str, timeout: float = 20.0) -> None:
        start = len(seen[0])
        deadline = time.monotonic() + timeout
        while needle not in seen[0][max(0, start - 200) :]:
            assert time.monotonic() < deadline, f"waited for {needle!r}: {seen[0][-2000:]}"
            try:
                seen[0] += ANSI.sub("", local.read_nonblocking(65536, timeout=0.05))
            except pexpect.TIMEOUT:
                pass

    try:
        # both lines, in either order: the control socket's line may come before or after
        local_wait("Press ENTER to open the console")
        if "vivace attach --pid" not in seen[0]:
            local_wait("vivace attach --pid")
        local.send("\r")
        local_wait(">>>")
        term = attach(AttachTermServer(local.pid, env, tmp_path, port))
        term.wait_prompt()
        term.run('print("from-" + "attached")', "from-attached")
        local.send('print("from-" + "local")\r')
        local_wait("from-local")
        local.send("6 * 7\r")
        local_wait("42")
        term.run("7 * 6", "42")
        assert "from-attached" not in seen[0]
        assert "from-local" not in term.text
        term.send("\x04")
        assert term.exit_code() == 0
        local.send("\x04")
        local_wait("Console closed; the server keeps running")
    finally:
        local.kill(15)
        local.expect(pexpect.EOF, timeout=30)
        local.close(force=True)


class AttachTermServer(Server):
    """A handle on a server started elsewhere (in a pty), for ``attach``."""

    def __init__(self, pid: int, env: dict[str, str], tmp: Path, port: int) -> None:
        self._pid = pid
        self.env = env
        self.tmp = tmp
        self.port = port

    @property
    def pid(self) -> int:
        return self._pid


def test_keys_typed_at_the_first_prompt_reach_the_editor_once(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    """The first prompt comes before the editor is built (as with --repl): what is typed there
    at once runs once, in the server."""
    srv = server("--dev")
    term = attach(srv)
    term.wait(">>> ", 20)
    term.send("40 + 2\r")
    term.wait("42", 20)
    term.wait_prompt()
    term.run("'x' * 3", "'xxx'")
    assert term.text.count("\n42") == 1


def test_tab_completes_on_the_servers_live_namespace(
    server: Callable[..., Server], attach: Callable[..., AttachTerm]
) -> None:
    srv = server("--dev")
    term = attach(srv)
    term.wait_prompt()
    term.run("remote_only_name = app", "")
    term.send("remote_only_na\t")
    # the input line itself (">>> ..."): the completion menu's row, where the cursor passes
    # while it is drawn, also shows the name before it is inserted (a race seen under load)
    term.wait(lambda: term.prompt_line() == ">>> remote_only_name", 20)
    term.send(".na\t")  # an attribute of the live App, through jedi in the server
    term.wait(lambda: term.prompt_line() == ">>> remote_only_name.name", 20)
    term.send("\r")
    term.wait("'AttachDemo'")
    term.wait_prompt()
    term.send('client.get("/sp\t')  # a route path inside the request string
    term.wait(lambda: term.prompt_line().startswith('>>> client.get("/spam'), 20)
