"""The console as a user drives it: a real pseudo-terminal (pexpect), the screen checked with pyte.

Each test runs ``python -m runtime console_app:app ...`` inside ``bash`` in a pty, so that
``stty -g`` can be recorded before vivace starts and after it exits, on every exit path.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pexpect
import psutil
import pyte
import pytest

from tests.support import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COLS, ROWS = 110, 40
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\r")

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT), str(HERE)]),
        VIVACE_HISTORY_FILE=str(tmp_path / "history"),
        PROMPT_TOOLKIT_NO_CPR="1",  # pyte does not answer cursor position requests
        TERM="xterm",
    )
    env.pop("NO_COLOR", None)
    return env


class Term:
    """A pty running bash -> vivace, with a pyte screen and the raw text seen so far."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        target: str = "console_app:app",
        shell: str = "{command}",
    ) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        command = [sys.executable, "-m", "runtime", target, "-p", str(self.port), *args]
        run = shell.format(command=shlex.join(command))  # e.g. "timeout 60 {command}"
        script = (
            f"stty -g > {tmp_path}/stty.before; {run}; rc=$?; "
            f"stty -g > {tmp_path}/stty.after; echo EXIT=$rc; sleep 0.2"
        )
        self.child = pexpect.spawn(
            "bash",
            ["--norc", "--noprofile", "-c", script],
            cwd=str(tmp_path),
            env=_env(tmp_path),
            dimensions=(ROWS, COLS),
            encoding="utf-8",
            codec_errors="replace",
            timeout=5,
        )
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        self.text = ""  # what was printed, without escape sequences

    # reading -------------------------------------------------------------------------------

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                data = ""
            except pexpect.EOF:
                return
            if data:
                self.raw += data
                self.text = ANSI.sub("", self.raw)
                self.stream.feed(data)
            if time.monotonic() >= end:
                return

    def wait(self, check: str | Callable[[], bool], timeout: float = 20.0) -> None:
        if isinstance(check, str):
            needle = check
            start = len(self.text)

            def found() -> bool:
                return needle in self.text[max(0, start - len(needle) - 4096) :]

            predicate = found
        else:
            predicate = check
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {check!r}; screen:\n{self.display()}")
            if not self.child.isalive() and not self.child.before:
                self.pump(0.1)
                if not predicate():
                    raise AssertionError(f"process ended; screen:\n{self.display()}")
            self.pump(0.05)

    def display(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def prompt_line(self) -> str:
        return self.screen.display[self.screen.cursor.y].rstrip()

    def wait_prompt(self, timeout: float = 20.0) -> None:
        """Wait for a fresh, empty prompt."""
        self.wait(lambda: self.prompt_line() == ">>>", timeout)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def run(self, statement: str, expect: str, timeout: float = 20.0) -> None:
        """Type a statement, wait for ``expect`` in the output and for the next empty prompt."""
        mark = len(self.text)
        echo = ">>> " + statement.splitlines()[0]
        self.send(statement + "\r")
        self.wait(lambda: expect in self.text[mark:], timeout)
        self.wait(lambda: any(line.rstrip() == echo for line in self.screen.display), timeout)
        self.wait_prompt(timeout)

    def exit_code(self, timeout: float = 30.0) -> int:
        self.wait(lambda: "EXIT=" in self.text, timeout)
        match = re.search(r"EXIT=(\d+)", self.text)
        assert match is not None
        return int(match.group(1))

    def stty_unchanged(self) -> bool:
        before = (self.tmp / "stty.before").read_text().strip()
        self.wait(lambda: (self.tmp / "stty.after").exists(), 10)
        after = (self.tmp / "stty.after").read_text().strip()
        return bool(before) and before == after

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def processes(self) -> list[psutil.Process]:
        """Every process under the pty's bash: vivace and its workers (none once it ended)."""
        try:
            return psutil.Process(self.child.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def close(self) -> None:
        procs = self.processes()
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=5)
        self.child.close(force=True)


@contextmanager
def terminals(tmp_path: Path) -> Iterator[Callable[..., Term]]:
    """``start(*args, target=..., shell=...)`` opens a ``Term`` in ``tmp_path``; every one opened
    is closed when the block ends. The ``term`` fixture (tests/repl/conftest.py) is this."""
    started: list[Term] = []

    def start(*args: str, target: str = "console_app:app", shell: str = "{command}") -> Term:
        t = Term(tmp_path, *args, target=target, shell=shell)
        started.append(t)
        return t

    try:
        yield start
    finally:
        for t in started:
            t.close()


def assert_gone(processes: list[psutil.Process]) -> None:
    """``processes`` (``Term.processes()`` taken before the end) all end within 10 s."""
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, f"processes left behind: {alive}"


def _pids(t: Term) -> list[int]:
    return sorted(p.pid for p in psutil.Process(t.child.pid).children(recursive=True))


def _mains(t: Term) -> list[psutil.Process]:
    """vivace's main process (its workers are ``python -m runtime`` children of it)."""
    found = [
        p
        for p in psutil.Process(t.child.pid).children(recursive=True)
        if p.cmdline()[1:3] == ["-m", "runtime"]
    ]
    return [p for p in found if not any(q.pid == p.ppid() for q in found)]


# --- --repl ----------------------------------------------------------------------------------


def test_repl_client_do_workers_eval_and_ctrl_d_stops(term: Callable[..., Term]) -> None:
    t = term("--repl", "-w", "2")
    t.wait("vivace console for ConsoleDemo")
    t.wait_prompt()
    t.wait(lambda: "2/2 ready" in t.display())  # the toolbar comes with the editor (quickprompt)
    assert "answer" in t.text
    t.run('client.get("/")', '"hello": "world"')
    assert "HTTP/1.1 200 OK" in t.text
    t.run('(await client.get("/")).json()["hello"]', "'world'")
    t.run('r = client.get("/").json(); r["hello"]', "'world'")
    t.run('(await do("/")).response.status', "200")
    t.run("workers", "2/2 server workers ready")
    assert "Vivace-Server-0-0  server" in t.text and "Vivace-Server-1-0  server" in t.text
    t.run('workers["Vivace-Server-0-0"].eval("app.ctx.token")', "'token-")
    t.run("answer", "42")
    t.run("1/0", "ZeroDivisionError")
    t.send("\x04")
    assert t.exit_code() == 0
    assert "Worker complete" in t.text
    assert t.stty_unchanged()


def test_ctrl_c_cancels_only_the_statement_and_exit_stops(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run("import asyncio", "")
    server_pids = _pids(t)
    mark = len(t.text)
    t.send("await asyncio.sleep(30)\r")
    t.pump(0.5)
    started = time.monotonic()
    t.send("\x03")
    t.wait(lambda: "KeyboardInterrupt" in t.text[mark:], 5)
    t.wait_prompt(5)
    assert time.monotonic() - started < 3
    assert _pids(t) == server_pids  # no worker was touched
    assert httpx.get(t.url(), timeout=5).status_code == 200
    t.send("exit()\r")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_ctrl_c_on_a_sleeping_statement_keeps_its_later_output(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run("import time", "")
    mark = len(t.text)
    t.send('time.sleep(4); print("wo" + "ke"); 6 * 7\r')
    t.pump(0.5)
    t.send("\x03")
    t.wait(lambda: "keeps running in the background" in t.text[mark:], 5)
    t.wait_prompt(5)
    assert "woke" not in t.text[mark:]
    t.send("typed = 1")
    t.wait(lambda: "woke" in t.text[mark:], 15)  # its output, above the prompt
    t.wait(lambda: "in the background finished: 42" in t.text[mark:], 5)
    t.pump(0.3)
    assert t.prompt_line() == ">>> typed = 1"
    screen = t.display()
    assert screen.index("woke") < screen.index(">>> typed = 1")
    t.send("\r")
    t.wait_prompt()
    t.run("typed", "1")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_half_typed_line_survives_200_lines_of_worker_output(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run('client.get("/spam?n=200&delay=2").json()', "'scheduled': 200")
    t.send("half_typed = 12")
    t.wait(lambda: "spam line 199" in t.text, 20)
    t.pump(0.5)
    assert t.prompt_line() == ">>> half_typed = 12"
    screen = t.display()
    assert "spam line 199" in screen
    assert screen.index("spam line 199") < screen.index(">>> half_typed = 12")
    for line in t.screen.display:  # no worker line was torn or glued to the prompt
        if "spam line" in line:
            assert re.fullmatch(r"Vivace-Server-0-0 \| spam line \d+\s*", line), line
    t.send("34\r")
    t.wait_prompt()
    t.run("half_typed", "1234")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_half_typed_line_survives_a_restart_of_every_worker(term: Callable[..., Term]) -> None:
    t = term("--repl", "-w", "2")
    t.wait_prompt()
    t.run("before = sorted(w.pid for w in workers)", "")
    t.run('client.get("/restart-all?delay=1.5").json()', "'restarting': True")
    mark = len(t.text)
    t.send("after_restart = 5")
    t.wait(lambda: t.text[mark:].count("Starting worker") >= 2, 30)
    t.wait(lambda: "2/2 ready" in t.display(), 30)
    t.pump(0.5)
    assert t.prompt_line() == ">>> after_restart = 5"
    t.send("\r")
    t.wait_prompt()
    t.run("sorted(w.pid for w in workers) != before, after_restart", "(True, 5)")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_a_crashing_worker_is_reported_above_the_prompt(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run('client.get("/crash").json()', "'crashing': True")
    mark = len(t.text)
    t.send("still_here = 1")
    t.wait(lambda: "died unexpectedly (exit code 3)" in t.text[mark:], 20)
    t.wait(lambda: "1/1 ready" in t.display() and "Starting worker" in t.text[mark:], 20)
    t.pump(0.5)
    screen = t.display()
    assert screen.index("died unexpectedly") < screen.index(">>> still_here = 1")
    assert t.prompt_line() == ">>> still_here = 1"
    t.send("\r")
    t.wait_prompt()
    t.run('client.get("/").status_code', "200")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_restart_and_scale_return_when_new_workers_serve(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run("before = workers[0].pid", "")
    t.run("restart()", "ready in", timeout=30)
    t.run("workers[0].pid != before", "True")
    t.run('client.get("/").json()["pid"] == workers[0].pid', "True")
    t.run("scale(3)", "ready in", timeout=30)
    t.run("len([w for w in workers if w.row.kind == 'server'])", "3")
    t.run("scale(1)", "scale 3 -> 1", timeout=30)
    t.run("len([w for w in workers if w.row.kind == 'server'])", "1")
    t.send("exit()\r")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_refused_console_commands_are_one_line_not_a_traceback(term: Callable[..., Term]) -> None:
    t = term("--repl", "-w", "2")
    t.wait_prompt()
    running = "running: Vivace-Server-0-0, Vivace-Server-1-0"
    for statement, line in [
        (
            'restart("Vivace-Server-9-0")',
            f"LookupError: no process named 'Vivace-Server-9-0'; {running}",
        ),
        ("scale(0)", "ValueError: scale(n) needs a whole number of server workers >= 1, not 0"),
        ('workers["nope"]', f"KeyError: no process named 'nope'; {running}"),
        ('workers.control.restart("gone")', "LookupError: No process named 'gone'"),
        (
            'workers["Vivace-Server-0-0"].eval("1/0")',
            "RuntimeError: in Vivace-Server-0-0: ZeroDivisionError",
        ),
    ]:
        if statement.startswith("workers.control"):  # the manager itself refusing
            statement = f"workers.bridge.wait({statement})"
        mark = len(t.text)
        t.run(statement, line)
        shown = [x for x in t.text[mark:].splitlines() if x.strip()]
        error = [x for x in shown if "Error" in x]
        assert len(error) == 1 and error[0].startswith(line.split(":")[0]), shown
        assert "Traceback" not in t.text[mark:]
    mark = len(t.text)
    t.run("f = lambda: {}['k']; f()", "KeyError: 'k'")
    text = t.text[mark:]
    assert "Traceback" in text and '"<console>", line 1, in <lambda>' in text
    assert "repl/" not in text and "concurrent" not in text
    t.send("\x04")
    assert t.exit_code() == 0


def test_uptime_is_shown_for_live_processes_only(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.run('manage("Job", print, {})', "")
    t.wait(lambda: "Vivace-Job-0" in t.text, 20)

    def table_row(name: str) -> list[str]:
        mark = len(t.text)
        t.run("workers", "server workers ready")
        rows = [line.split() for line in t.text[mark:].splitlines()]
        return next(row for row in rows if row and row[0] == name)

    t.wait(lambda: table_row("Vivace-Job-0")[3] == "COMPLETED", 20)
    assert table_row("Vivace-Job-0")[5] == "-"  # it ended: no uptime counting on
    server = table_row("Vivace-Server-0-0")
    assert server[3] == "ACKED" and server[5].endswith("s")
    t.send("\x04")
    assert t.exit_code() == 0


@pytest.mark.parametrize(("statement", "code"), [("stop()", 0), ("exit(3)", 3)])
def test_stop_and_exit_codes(term: Callable[..., Term], statement: str, code: int) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.send(statement + "\r")
    assert t.exit_code() == code
    assert "Server Stopped" in t.text
    assert t.stty_unchanged()


def test_single_process_console_sees_app_ctx(term: Callable[..., Term]) -> None:
    t = term("--single-process", "--repl")
    t.wait_prompt()
    t.run("import os; app.ctx.token == f'token-{os.getpid()}'", "True")
    t.run('(await client.get("/")).json()["hello"]', "'world'")
    t.run('client.get("/")', "HTTP/1.1 200 OK")
    t.run('r = client.get("/")', "")
    t.run("r.status_code", "200")  # settled before the next statement
    # chaining on the serving loop cannot wait without stopping the server: a clear error
    t.run('client.get("/").status_code', "write `await client.get(...)`")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_sigterm_restores_the_terminal(term: Callable[..., Term]) -> None:
    t = term("--repl")
    t.wait_prompt()
    t.send("half")
    t.pump(0.3)
    main = [p for p in psutil.Process(t.child.pid).children() if "runtime" in " ".join(p.cmdline())]
    assert main
    main[0].send_signal(signal.SIGTERM)
    assert t.exit_code() == 0
    assert t.stty_unchanged()


# --- --dev -------------------------------------------------------------------------------------


def test_dev_opens_on_enter_only_and_closing_keeps_serving(term: Callable[..., Term]) -> None:
    t = term("--dev")
    t.wait("Press ENTER to open the console")
    t.send("hello\r")  # ignored, and it does not disable the console
    t.pump(0.5)
    assert "vivace console" not in t.text
    t.send("\r")
    t.wait("vivace console for ConsoleDemo")
    t.wait_prompt()
    t.run("x = 41", "")
    t.send("\x04")
    t.wait("Press ENTER to open the console again")
    assert httpx.get(t.url(), timeout=5).status_code == 200
    t.send("\r")
    t.wait_prompt()
    t.run("x + 1", "42")  # the namespace survives closing
    t.send("exit()\r")
    t.wait("Press ENTER to open the console again")
    assert httpx.get(t.url(), timeout=5).status_code == 200
    t.send("\x03")  # console closed: Ctrl+C stops the server
    assert t.exit_code() == 0
    assert t.stty_unchanged()


@pytest.mark.parametrize(
    "shell",
    [
        "timeout 60 {command}",  # timeout runs vivace in a background process group
        "set -m; {command} & wait $!",  # a background job of a shell with job control
    ],
    ids=["timeout", "ampersand"],
)
def test_dev_in_the_background_serves_without_console_and_stops(
    term: Callable[..., Term], shell: str
) -> None:
    t = term("--dev", shell=shell)
    t.wait("console is not available in the background")
    t.wait("Starting worker")
    assert "Press ENTER" not in t.text
    assert httpx.get(t.url(), timeout=5).status_code == 200
    main = _mains(t)
    assert len(main) == 1, main
    main[0].send_signal(signal.SIGTERM)  # as timeout does when it expires
    assert t.exit_code() == 0
    assert "Server Stopped" in t.text
    assert t.stty_unchanged()
    with pytest.raises(httpx.ConnectError):  # the port was released
        httpx.get(t.url(), timeout=5)


def test_dev_suspended_and_resumed_in_the_background_never_reads_the_terminal(
    term: Callable[..., Term],
) -> None:
    t = term("--dev", shell="set -m; {command} & fg %1 >/dev/null; bg %1 >/dev/null; wait %1")
    t.wait("Press ENTER to open the console")
    t.send("\x1a")  # Ctrl+Z: the shell takes the terminal back, then resumes vivace with bg
    t.wait(lambda: any(p.status() == psutil.STATUS_SLEEPING for p in _mains(t)), 10)
    t.send("typed for the shell\r")  # input vivace must not read from the background
    t.pump(1.0)
    assert [p.status() for p in _mains(t)] != [psutil.STATUS_STOPPED]
    assert httpx.get(t.url(), timeout=5).status_code == 200
    _mains(t)[0].send_signal(signal.SIGTERM)
    assert t.exit_code() == 0
    assert "Server Stopped" in t.text
    assert t.stty_unchanged()


# --- scripted -----------------------------------------------------------------------------------


def _scripted(tmp_path: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runtime", "console_app:app", "-p", "0", "--repl", *args]
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=60,
    )


def test_scripted_mode_from_a_pipe(tmp_path: Path) -> None:
    result = _scripted(tmp_path, '1 + 1\nclient.get("/").json()["hello"]\nanswer\n')
    assert result.returncode == 0, result.stderr
    assert "2\n'world'\n42\n" in result.stdout
    assert "\x1b" not in result.stdout


def test_scripted_mode_exits_1_when_a_statement_raises(tmp_path: Path) -> None:
    result = _scripted(tmp_path, "1/0\n'after'\n")
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr
    assert "'after'" in result.stdout


def test_repl_command(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "runtime",
        "console_app:app",
        "-p",
        "0",
        "--repl-command",
        'workers[0].eval("app.ctx.token").startswith("token-")',
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "True\n" in result.stdout


# --- reloads while the console is open ------------------------------------------------------------


def test_reload_keeps_the_half_typed_line_and_a_broken_save_leaves_it_usable(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    source = (HERE / "console_app.py").read_text()
    module = tmp_path / "live_app.py"
    module.write_text(source)
    t = term("--dev", target="live_app:app")
    t.wait("Press ENTER to open the console")
    t.send("\r")
    t.wait_prompt()
    mark = len(t.text)
    t.run("reloading = 'Vivace-Reloader-0' in workers; reloading", "")
    t.wait(lambda: re.search(r"\n(True|False)\n", t.text[mark:]) is not None)
    assert "True" in t.text[mark:].split("reloading", 2)[-1], "no reloader under --dev"
    t.send("abc = 1")
    t.pump(0.3)
    module.write_text(
        source + '\n\n@app.get("/v2")\nasync def v2(request: Any) -> Any:\n'
        '    return json({"v": 2})\n'
    )

    def v2_serves() -> bool:
        t.pump(0.05)
        try:
            return httpx.get(t.url("/v2"), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    t.wait(v2_serves, 30)
    t.pump(0.5)
    assert t.prompt_line() == ">>> abc = 1"
    mark = len(t.text)
    module.write_text(source + "\n\ndef broken(:\n")
    t.wait(lambda: "SyntaxError" in t.text[mark:], 30)
    t.pump(1.5)
    assert t.text[mark:].count("SyntaxError") == 1  # the traceback once
    assert httpx.get(t.url("/v2"), timeout=5).status_code == 200  # previous workers still serve
    assert t.prompt_line() == ">>> abc = 1"
    t.send("\r")
    t.wait_prompt()
    t.run("abc + 1", "2")
    t.send("\x04")
    t.wait("Press ENTER to open the console again")
    t.send("\x03")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


def test_client_over_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    command = [sys.executable, "-m", "runtime", "console_app:app", "-u", str(sock)]
    command += ["--repl-command", 'client.get("/").json()["hello"]']
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "'world'\n" in result.stdout


def test_single_process_scripted_on_port_0_finds_the_bound_port(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runtime", "console_app:app", "-p", "0", "--single-process"]
    command += ["--repl-command", '(await client.get("/")).json()["hello"], app.ctx.token[:6]']
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "('world', 'token-')\n" in result.stdout
