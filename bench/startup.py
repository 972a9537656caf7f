"""Startup to the first 200: vivace vs Sanic 23.12, 1 and 2 workers, interleaved rounds.

    python bench/startup.py [--rounds 5]

The clock starts when the server command is launched and stops at the first 200 answer to
``GET /`` (polled every 5 ms on 127.0.0.1). Every server is stopped with SIGINT and its whole
process tree is checked gone before the next round. Prints medians and the vivace/Sanic ratio, and,
measured in the same rounds, how long this interpreter takes to run ``pass`` and ``import asyncio``
and exit: the part of any asyncio server's start-up that no server code can remove.

Each peer runs from its own virtualenv of the same base interpreter: ``bench/.peers/sanic`` and
``bench/.peers/vivace`` (this tree installed editable), both created on first use.
``BENCH_VIVACE_PYTHON=/path/to/python`` runs vivace under another interpreter instead (e.g. a
virtualenv of another checkout) and measures the vivace that interpreter imports
(``vivace_root()``); ``restart.py``, ``reload.py``, ``console.py`` and the ASGI scripts honour it.

Both sides start from byte-compiled code, as after any normal install: pip compiles Sanic's
site-packages when it installs them, but an editable install of vivace gets its ``.pyc`` files only
on first import, and never where ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines this ran
on). Without this step every vivace start would recompile ~25 modules (about 60 ms here), a cost no
user pays. ``--no-compile`` skips it.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import functools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SANIC_PY = HERE / ".peers" / "sanic" / "bin" / "python"
VIVACE_PY = HERE / ".peers" / "vivace" / "bin" / "python"
POLL = 0.005

APPS = {
    "vivace": """
        from runtime import App, text

        app = App("Bench")

        @app.get("/")
        async def index(request):
            return text(str(__import__("os").getpid()))
        """,
    "sanic": """
        from sanic import Sanic, text

        app = Sanic("Bench")

        @app.get("/")
        async def index(request):
            return text(str(__import__("os").getpid()))
        """,
}


def ensure_sanic() -> bool:
    """Create ``bench/.peers/sanic`` with ``sanic>=23.12,<24`` if it is missing."""
    if SANIC_PY.exists():
        return True
    venv = SANIC_PY.parent.parent
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(SANIC_PY), "-m", "pip", "install", "-q", "sanic>=23.12,<24"],
            check=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"Sanic is not available ({exc}); only vivace is measured", file=sys.stderr)
        return False
    return True


def vivace_python() -> str:
    """The interpreter vivace runs under: ``BENCH_VIVACE_PYTHON`` if set, else
    ``bench/.peers/vivace``, a virtualenv with this tree installed editable, created on first use;
    ``sys.executable`` if that cannot be made.

    Both peers then start from a virtualenv of the same base interpreter, as a user's would. The
    base interpreter of these machines carries a sandbox ``.pth`` that imports certifi at every
    start (20-25 ms); Sanic's virtualenv never saw it, and vivace must not pay it alone either.
    """
    if other := os.environ.get("BENCH_VIVACE_PYTHON"):
        return other
    if not VIVACE_PY.exists():
        venv = VIVACE_PY.parent.parent
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            subprocess.run(
                [str(VIVACE_PY), "-m", "pip", "install", "-q", "-e", str(ROOT)],
                check=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"no vivace virtualenv ({exc}); using {sys.executable}", file=sys.stderr)
            return sys.executable
    return str(VIVACE_PY)


@functools.cache
def vivace_root() -> Path:
    """The tree whose ``runtime`` the vivace interpreter imports: this one, unless
    ``BENCH_VIVACE_PYTHON`` names an interpreter with another checkout installed. It goes on
    ``PYTHONPATH`` and is byte-compiled in its place, so that this tree never shadows that one."""
    if not os.environ.get("BENCH_VIVACE_PYTHON"):
        return ROOT
    code = "import pathlib, runtime; print(pathlib.Path(runtime.__file__).resolve().parent.parent)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [vivace_python(), "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def compile_vivace() -> None:
    """Byte-compile the vivace being measured (see the module's docstring)."""
    for package in ("runtime", "repl"):
        compileall.compile_dir(vivace_root() / package, quiet=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_apps(directory: Path) -> None:
    for name, source in APPS.items():
        (directory / f"{name}_app.py").write_text(textwrap.dedent(source))


def command(peer: str, port: int, workers: int) -> list[str]:
    if peer == "vivace":
        return [
            vivace_python(),
            "-m",
            "runtime",
            "vivace_app:app",
            "-p",
            str(port),
            "-w",
            str(workers),
            "--no-motd",
        ]
    return [
        str(SANIC_PY),
        "-m",
        "sanic",
        "sanic_app:app",
        "-p",
        str(port),
        "-w",
        str(workers),
        "--no-motd",
    ]


def get(port: int, timeout: float = 1.0) -> tuple[int, str] | None:
    """One ``GET /`` on a fresh connection: (status, body), or None if nothing answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 "):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body.decode(errors="replace")


class Running:
    """A server started in ``directory``; ``stop()`` ends it and checks that no process is left."""

    def __init__(self, peer: str, workers: int, directory: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=f"{directory}{os.pathsep}{vivace_root()}", NO_COLOR="1")
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            command(peer, self.port, workers),
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_first_200(self, limit: float = 20.0) -> float:
        deadline = self.began + limit
        while time.perf_counter() < deadline:
            answer = get(self.port, timeout=0.5)
            if answer is not None and answer[0] == 200:
                return time.perf_counter() - self.began
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            time.sleep(POLL)
        raise RuntimeError("no 200 within the limit")

    def tree(self) -> list[psutil.Process]:
        try:
            return [
                psutil.Process(self.proc.pid),
                *psutil.Process(self.proc.pid).children(recursive=True),
            ]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        family = self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        _, alive = psutil.wait_procs(family, timeout=2)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)


FLOORS = {"python -c pass": "pass", "python -c 'import asyncio'": "import asyncio"}


def floor(code: str, directory: Path) -> float:
    """Seconds for this interpreter to start, run ``code`` and exit (the servers' environment)."""
    env = dict(os.environ, PYTHONPATH=f"{directory}{os.pathsep}{vivace_root()}", NO_COLOR="1")
    began = time.perf_counter()
    python = vivace_python()  # a virtualenv of the same base interpreter as Sanic's
    subprocess.run([python, "-c", code], cwd=directory, env=env, check=True, timeout=30)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip byte-compiling vivace")
    args = parser.parse_args()
    if not args.no_compile:
        compile_vivace()
    peers = ["vivace"] + (["sanic"] if ensure_sanic() else [])
    results: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_apps(directory)
        floors: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for label, code in FLOORS.items():
                floors.setdefault(label, []).append(floor(code, directory))
            for workers in (1, 2):
                for peer in peers:
                    server = Running(peer, workers, directory)
                    try:
                        results.setdefault((peer, workers), []).append(server.wait_first_200())
                    finally:
                        server.stop()
    print(f"startup to first 200, median of {args.rounds} rounds")
    print(f"{'workers':>8} {'vivace ms':>10} {'sanic ms':>10} {'ratio':>7}")
    for workers in (1, 2):
        ours = statistics.median(results[("vivace", workers)]) * 1000
        line = f"{workers:>8} {ours:>10.0f}"
        if ("sanic", workers) in results:
            theirs = statistics.median(results[("sanic", workers)]) * 1000
            line += f" {theirs:>10.0f} {ours / theirs:>7.2f}"
        print(line)
    for label, times in floors.items():
        print(f"{label}: {statistics.median(times) * 1000:.0f} ms (start to exit, same rounds)")


if __name__ == "__main__":
    main()
