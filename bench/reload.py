"""Save-to-new-response latency of auto-reload: vivace against Sanic 23.12 and uvicorn.

    python bench/reload.py [--saves 20] [--pause 0.1 0.4] [--only vivace-watcher,uvicorn,...]

Each server runs its development reloader on 127.0.0.1 over a copy of a tiny app whose response
carries a version string. A round saves the app module of every server (in a shuffled order, after a
random pause) and polls it every 5 ms, each poll on a new connection, until the new version
answers: the time from the end of the write to that response is the latency; every refused,
reset or non-200 poll during the reload is a failed request.

Contestants:

* ``vivace``: ``vivace app:app --reload`` (needs the manager to start the reloader);
* ``vivace-watcher``: the reloader process body alone (``reloader_main`` with a ``send`` that
  stamps the time): save -> restart request sent. Meaningful before the manager integration;
* ``sanic``: ``sanic app:app --auto-reload`` from ``bench/.peers/sanic`` (``sanic>=23.12,<24``);
* ``uvicorn``: ``uvicorn app:app --reload`` (watchfiles) with a bare ASGI app.

Prints median / p90 / max latency, failed requests, and vivace's ratio to uvicorn.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from startup import vivace_python, vivace_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / ".peers"
SANIC_VENV = PEERS / "sanic"
POLL = 0.005

APPS = {
    "vivace": """
        from runtime import App, text

        app = App("Bench")
        VERSION = "0"

        @app.get("/")
        async def index(request):
            return text(VERSION)
        """,
    "sanic": """
        from sanic import Sanic, text

        app = Sanic("Bench")
        VERSION = "0"

        @app.get("/")
        async def index(request):
            return text(VERSION)
        """,
    "uvicorn": """
        VERSION = "0"

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = VERSION.encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        """,
}

WATCHER = """
import os, sys, time
sys.path.insert(0, os.getcwd())
from runtime.loader import AppRef
from runtime.supervisor.reloader import reloader_main

def send(request):
    print("SENT", time.monotonic(), flush=True)

def ready(watch_set):
    print("READY", flush=True)

sys.exit(reloader_main(AppRef(module="app", cwd=os.getcwd()), send, on_watching=ready))
"""


def sanic_python() -> Path:
    python = SANIC_VENV / "bin" / "python"
    if not python.exists():
        PEERS.mkdir(parents=True, exist_ok=True)
        (PEERS / ".gitignore").write_text("*\n")
        print("creating bench/.peers/sanic with sanic>=23.12,<24 ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SANIC_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "sanic>=23.12,<24"], check=True)
    return python


def vivace_reloads() -> bool:
    """The worker manager starts the reloader (otherwise only ``vivace-watcher`` is measured)."""
    for path in (ROOT / "runtime" / "supervisor").glob("*.py"):
        if path.name not in {"reloader.py", "watch.py"} and "reloader_main" in path.read_text():
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int) -> str:
    """One request on a new connection; raises OSError on anything but a 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"status line {head[:20]!r}")
    return body.decode().strip()


@dataclass
class Contestant:
    name: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    reasons: list[str] = field(default_factory=list)
    version: int = 0
    log: Path | None = None

    def command(self) -> list[str]:
        p = str(self.port)
        if self.name == "vivace":
            return [vivace_python(), "-m", "runtime", "app:app", "-p", p, "--reload", "--no-motd"]
        if self.name == "sanic":
            return [str(sanic_python()), "-m", "sanic", "app:app", "-p", p, "--auto-reload"]
        if self.name == "uvicorn":
            cmd = [sys.executable, "-m", "uvicorn", "app:app", "--port", p, "--reload"]
            return [*cmd, "--log-level", "warning"]
        return [vivace_python(), "watcher.py"]

    def start(self) -> None:
        kind = "vivace" if self.name == "vivace-watcher" else self.name
        (self.workdir / "app.py").write_text(textwrap.dedent(APPS[kind]))
        (self.workdir / "watcher.py").write_text(WATCHER)
        self.port = free_port()
        self.log = self.workdir / "out.log"
        env = dict(os.environ, PYTHONPATH=str(vivace_root()), PYTHONUNBUFFERED="1")
        out = subprocess.PIPE if self.name == "vivace-watcher" else self.log.open("wb")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.name == "vivace-watcher":
            self._read_until("READY", 30)
        else:
            self._wait_for("0", 30)
            self.reasons.clear()  # refusals while it was starting up do not count

    def _read_until(self, word: str, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not sel.select(deadline - time.monotonic()):
                    break
                line = self.proc.stdout.readline().decode()
                if not line:
                    break
                if line.startswith(word):
                    return line
        finally:
            sel.close()
        raise SystemExit(f"{self.name}: no {word} within {timeout}s")

    def _wait_for(self, version: str, timeout: float) -> tuple[float, int]:
        """Poll every 5 ms until ``version`` answers; returns (time seen, failed polls)."""
        deadline = time.monotonic() + timeout
        failures = 0
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log}")
            try:
                if get(self.port) == version:
                    return time.monotonic(), failures
            except OSError as exc:
                failures += 1
                self.reasons.append(repr(exc))
            time.sleep(POLL)
        raise SystemExit(f"{self.name}: version {version} not served within {timeout}s")

    def save_and_measure(self) -> None:
        self.version += 1
        app = self.workdir / "app.py"
        text = re.sub(r'VERSION = ".*"', f'VERSION = "{self.version}"', app.read_text())
        with app.open("w") as f:
            f.write(text)
        saved = time.monotonic()
        if self.name == "vivace-watcher":
            sent = float(self._read_until("SENT", 10).split()[1])
            self.latencies.append(sent - saved)
            return
        seen, failures = self._wait_for(str(self.version), 20)
        self.latencies.append(seen - saved)
        self.failures += failures

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--pause", type=float, nargs=2, default=(0.1, 0.4), metavar=("MIN", "MAX"))
    parser.add_argument("--only", default="", help="comma-separated contestants")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    names = ["vivace", "vivace-watcher", "sanic", "uvicorn"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    if "vivace" in names and not vivace_reloads():
        print("vivace: skipped, the worker manager does not start the reloader yet")
        names.remove("vivace")
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="vivace-reload-bench-"))
    contestants = []
    for name in names:
        workdir = base / name
        workdir.mkdir()
        contestants.append(Contestant(name, workdir))
    try:
        for c in contestants:
            c.start()
        for _ in range(args.saves):
            rng.shuffle(contestants)
            for c in contestants:
                time.sleep(rng.uniform(*args.pause))
                c.save_and_measure()
    finally:
        for c in contestants:
            c.stop()
    report(sorted(contestants, key=lambda c: names.index(c.name)), args.saves)
    shutil.rmtree(base, ignore_errors=True)
    return 0


def report(contestants: list[Contestant], saves: int) -> None:
    ms = {c.name: [x * 1000 for x in c.latencies] for c in contestants}
    uvicorn = statistics.median(ms["uvicorn"]) if "uvicorn" in ms else None
    print(f"\nsave -> new response, {saves} saves each, polling every {POLL * 1000:.0f} ms")
    print(f"{'server':16} {'median':>8} {'p90':>8} {'max':>8} {'failed':>7} {'x uvicorn':>10}")
    for c in contestants:
        values = sorted(ms[c.name])
        med = statistics.median(values)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        ratio = f"{med / uvicorn:.2f}" if uvicorn else "-"
        failed = "-" if c.name == "vivace-watcher" else str(c.failures)
        print(f"{c.name:16} {med:8.1f} {p90:8.1f} {values[-1]:8.1f} {failed:>7} {ratio:>10}")
    print("(vivace-watcher: save -> restart request sent, no HTTP involved)")
    for c in contestants:
        if c.reasons:
            kinds = sorted(set(c.reasons))
            print(f"{c.name} failures: {', '.join(kinds[:3])}{' ...' if len(kinds) > 3 else ''}")


if __name__ == "__main__":
    raise SystemExit(main())
