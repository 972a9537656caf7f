"""The developer console, measured: vivace against Sanic 23.12 in one run, in a real pty.

* launch -> prompt: ``vivace app:app --repl`` / ``sanic app:app --repl`` until ``>>>`` is printed.
* ENTER -> prompt: under ``--dev``, from the ENTER key press to the ``>>>`` prompt.
* ``client.get("/")`` round trip typed in the console (median of 200 calls, rendering excluded).
* keystroke echo while a worker prints 5,000 lines per second: from sending one key to seeing it
  drawn on the terminal (vivace only: Sanic's console reads with ``input()``, so the kernel's tty
  echoes keys and its log lines land inside the line being typed).

Targets (docs console.md section 8): ENTER -> prompt < 100 ms; round trip < 5 ms; echo < 50 ms;
launch -> prompt with ``--repl`` <= 300 ms and <= 0.3x Sanic's in the same run (issue 14).

The peers run from ``bench/.peers`` (``startup.py`` creates them): Sanic's environment gets
``httpx`` here, without which Sanic's console has no ``client``; vivace's is installed again
when it lacks one of the project's dependencies (one added since it was made).

    python bench/console.py                 # ~60 s; --rounds N, --only vivace
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pexpect
from startup import VIVACE_PY, ensure_sanic, vivace_python, vivace_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SANIC_PY = HERE / ".peers" / "sanic" / "bin" / "python"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r")

VIVACE_APP = """
import asyncio, sys
from runtime.app import App
from runtime.response import json
app = App("Bench")

@app.get("/")
async def index(request):
    return json({"hello": "world"})

@app.get("/flood")
async def flood(request):
    rate = int(request.args.get("rate", "5000"))
    seconds = float(request.args.get("seconds", "6"))

    async def run():
        n = 0
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            sys.stdout.write("".join(f"flood {n + i}\\n" for i in range(rate // 100)))
            sys.stdout.flush()
            n += rate // 100
            await asyncio.sleep(0.01)

    request.app.ctx.flood = asyncio.get_running_loop().create_task(run())
    return json({"rate": rate})
"""

SANIC_APP = """
from sanic import Sanic
from sanic.response import json
app = Sanic("Bench")

@app.get("/")
async def index(request):
    return json({"hello": "world"})
"""

ROUND_TRIP = (
    'import time, statistics; print("RT=%.3f" % statistics.median([(lambda t0: (client.get("/"), '
    "(time.perf_counter() - t0) * 1000)[1])(time.perf_counter()) for _ in range(200)]))"
)


#: run by a peer's interpreter: exit 1 when a requirement of vivace is not installed
MISSING_REQUIREMENT = """
import importlib.metadata as m, sys
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
for text in m.requires("vivace") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        m.version(req.name)
    except m.PackageNotFoundError:
        print(req.name)
        sys.exit(1)
"""


def prepare_peers(servers: list[str]) -> None:
    """Sanic's environment with httpx (its console's ``client``); vivace's up to date."""
    if "vivace" in servers and Path(vivace_python()) == VIVACE_PY:
        check = subprocess.run([str(VIVACE_PY), "-c", MISSING_REQUIREMENT], capture_output=True)
        if check.returncode != 0:
            missing = check.stdout.decode().strip()
            print(f"bench/.peers/vivace lacks {missing}: installing this tree again", flush=True)
            subprocess.run(
                [str(VIVACE_PY), "-m", "pip", "install", "-q", "-e", str(ROOT)],
                check=True,
                timeout=600,
            )
    if "sanic" in servers and ensure_sanic():
        has = subprocess.run([str(SANIC_PY), "-c", "import httpx"], capture_output=True)
        if has.returncode != 0:
            print("bench/.peers/sanic: installing httpx (Sanic's console client)", flush=True)
            subprocess.run(
                [str(SANIC_PY), "-m", "pip", "install", "-q", "httpx"], check=True, timeout=300
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pty:
    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            cwd=str(cwd),
            env=env,
            dimensions=(40, 120),
            encoding="utf-8",
            codec_errors="replace",
            timeout=30,
        )
        self.child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
        self.text = ""

    def read_until(self, predicate: object, timeout: float = 30.0) -> float:
        """Read until predicate(text) holds; returns the time it became true."""
        deadline = time.perf_counter() + timeout
        while True:
            if predicate(self.text):  # type: ignore[operator]
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"waited {timeout} s; last output: {self.text[-500:]!r}")
            try:
                data = self.child.read_nonblocking(65536, timeout=0.002)
            except pexpect.TIMEOUT:
                continue
            self.text += ANSI.sub("", data)

    def wait_for(self, needle: str, timeout: float = 30.0) -> float:
        start = len(self.text)
        return self.read_until(lambda t: needle in t[start:], timeout)

    def close(self) -> None:
        try:
            import psutil

            procs = psutil.Process(self.child.pid).children(recursive=True)
            for proc in procs:
                proc.kill()
            psutil.wait_procs(procs, timeout=5)
        except Exception:
            pass
        self.child.close(force=True)


def _env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(workdir), str(vivace_root())]),
        VIVACE_HISTORY_FILE=str(workdir / "history"),
        TERM="xterm",
        PYTHONUNBUFFERED="1",
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor position requests
    )
    return env


def launch(server: str, workdir: Path, *args: str) -> Pty:
    port = str(free_port())
    if server == "vivace":
        argv = [vivace_python(), "-m", "runtime", "vivace_app:app", "-p", port, *args]
    else:
        argv = [str(SANIC_PY), "-m", "sanic", "sanic_app:app", "-p", port, *args]
    return Pty(argv, workdir, _env(workdir))


PROMPT = ">>>"


def launch_to_prompt(server: str, workdir: Path) -> float:
    pty = launch(server, workdir, "--repl")
    try:
        return (pty.wait_for(PROMPT) - pty.started) * 1000
    finally:
        pty.close()


def enter_to_prompt(server: str, workdir: Path) -> float:
    pty = launch(server, workdir, "--dev")
    try:
        pty.wait_for("ENTER" if server == "vivace" else "Press ENTER")
        time.sleep(1.0)  # workers up, the background warm-up done: what a user sees
        pty.text = ""
        sent = time.perf_counter()
        pty.child.send("\r")
        return (pty.wait_for(PROMPT) - sent) * 1000
    finally:
        pty.close()


def round_trip(server: str, workdir: Path) -> float:
    pty = launch(server, workdir, "--repl")
    try:
        pty.wait_for(PROMPT)
        start = len(pty.text)
        pty.child.send('client.get("/")\r')
        pty.read_until(lambda t: re.search(r"200.*>>>", t[start:], re.S) is not None)
        pty.child.send(ROUND_TRIP + "\r")
        start = len(pty.text)
        pty.read_until(lambda t: re.search(r"RT=\d+\.\d+", t[start:]) is not None, 60)
        match = re.search(r"RT=(\d+\.\d+)", pty.text[start:])
        assert match is not None
        return float(match.group(1))
    finally:
        pty.close()


def echo_under_flood(workdir: Path, keys: int = 40, flood: bool = True) -> list[float]:
    pty = launch("vivace", workdir, "--repl")
    try:
        pty.wait_for(PROMPT)
        if flood:
            pty.child.send('client.get("/flood?rate=5000&seconds=8").status_code\r')
            pty.wait_for("flood 1000")  # the flood is on
        pty.child.send("# ")
        time.sleep(0.2)
        latencies = []
        letters = "wypgzxbkWYPGZXBK"
        for i in range(keys):
            key = letters[i % len(letters)]
            start = len(pty.text)
            sent = time.perf_counter()
            pty.child.send(key)
            seen = pty.read_until(lambda t, k=key, s=start: k in t[s:], 10)
            latencies.append((seen - sent) * 1000)
            time.sleep(random.uniform(0.05, 0.12))
        return latencies
    finally:
        pty.close()


def fmt(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"median {statistics.median(values):7.1f}  p90 {p90:7.1f}  max {values[-1]:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="vivace,sanic")
    args = parser.parse_args()
    servers = [s for s in args.only.split(",") if s]
    prepare_peers(servers)
    if "sanic" in servers and not SANIC_PY.exists():
        print("bench/.peers/sanic could not be made: vivace only")
        servers.remove("sanic")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "vivace_app.py").write_text(VIVACE_APP)
        (workdir / "sanic_app.py").write_text(SANIC_APP)
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            order = servers[:]
            random.shuffle(order)
            for server in order:
                for name, fn in (
                    ("launch -> prompt (--repl)", launch_to_prompt),
                    ("ENTER -> prompt (--dev)", enter_to_prompt),
                    ('client.get("/") round trip', round_trip),
                ):
                    results.setdefault((name, server), []).append(fn(server, workdir))
        if "vivace" in servers:
            results[("keystroke echo, idle", "vivace")] = echo_under_flood(workdir, 20, False)
            results[("keystroke echo, 5,000 lines/s", "vivace")] = echo_under_flood(workdir)
        print(f"\n{'measurement (ms)':34} {'server':8} result")
        for (name, server), values in results.items():
            ratio = ""
            other = results.get((name, "sanic"))
            if server == "vivace" and other:
                ratio = f"  {statistics.median(values) / statistics.median(other):.2f}x Sanic"
            print(f"{name:34} {server:8} {fmt(values)}{ratio}")
        launch = results.get(("launch -> prompt (--repl)", "vivace"))
        if launch:
            median = statistics.median(launch)
            line = f"\ntarget launch -> prompt <= 300 ms: {median:.0f} ms"
            sanic = results.get(("launch -> prompt (--repl)", "sanic"))
            if sanic:
                line += f"; <= 0.3x Sanic: {median / statistics.median(sanic):.2f}x"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
