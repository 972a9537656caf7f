"""The state table's cost and freshness: vivace vs Sanic 23.12, two workers each (issue 13 item 4).

    python bench/state_table.py [--rounds 5] [--n 300] [--trials 200]

Both servers run side by side with ``-w 2``; the rounds are interleaved. In each round a request
asks one worker to time, op by op (``perf_counter_ns``, median of ``--n``), inside its handler:

* ``write``: ``app.m.state["k"] = i`` (it returns once every process can read it: vivace waits
  for the manager's answer; Sanic's is a ``multiprocessing.Manager`` dict, whose proxy makes two
  calls to the manager process, a read and a write of the whole entry);
* ``read workers``: ``app.m.workers``, the whole table, when nothing changed since the last read;
* ``read state[k]``: ``app.m.state["k"]``, one key of the worker's own entry, nothing changed;
* ``read workers, changed``: ``app.m.workers`` right after a write (vivace unpickles the new
  version once; Sanic reads through its proxy as always).

Then ``--trials`` cross-worker reads: over two kept-alive connections, each held by a different
worker, one worker writes ``k = i`` and the other reads it in the next request; a read that does
not show ``i`` is stale. Prints the medians over the rounds (µs), the vivace/Sanic ratios and the
stale counts. Sanic runs from ``bench/.peers/sanic``, vivace from ``bench/.peers/vivace``
(``startup.py`` creates both on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from typing import Any

import psutil
from startup import SANIC_PY, ensure_sanic, free_port, vivace_python

ROOT = Path(__file__).resolve().parent.parent
OPS = ("write", "read workers", "read state[k]", "read workers, changed")

COMMON = """
import os
import time


def median_ns(times):
    times.sort()
    return times[len(times) // 2]


def timed(fn, n):
    clock = time.perf_counter_ns
    times = []
    for i in range(n):
        began = clock()
        fn(i)
        times.append(clock() - began)
    return median_ns(times)


async def bench(request):
    m = request.app.m
    n = int(request.args.get("n", "300"))
    state = m.state
    state["k"] = -1

    def write(i):
        state["k"] = i

    out = {"write": timed(write, n)}
    out["read workers"] = timed(lambda i: m.workers, n)
    out["read state[k]"] = timed(lambda i: state["k"], n)
    clock = time.perf_counter_ns
    times = []
    for i in range(n):
        state["k"] = i
        began = clock()
        m.workers
        times.append(clock() - began)
    out["read workers, changed"] = median_ns(times)
    return json(out)


async def me(request):
    return json({"name": request.app.m.name})


async def set_key(request):
    request.app.m.state["k"] = request.args.get("v", "")
    return json({"name": request.app.m.name})


async def get_key(request):
    entry = request.app.m.workers.get(request.args.get("name", ""), {})
    return json({"v": str(entry.get("k"))})


app.add_route(bench, "/bench")
app.add_route(me, "/me")
app.add_route(set_key, "/set")
app.add_route(get_key, "/get")
"""

APPS = {
    "vivace": 'from runtime import App, json\n\napp = App("StateBench")\n' + COMMON,
    "sanic": 'from sanic import Sanic, json\n\napp = Sanic("StateBench")\n' + COMMON,
}


def command(peer: str, port: int) -> list[str]:
    python = vivace_python() if peer == "vivace" else str(SANIC_PY)
    module = "runtime" if peer == "vivace" else "sanic"
    return [python, "-m", module, f"{peer}_app:app", "-p", str(port), "-w", "2", "--no-motd"]


class Conn:
    """One kept-alive HTTP/1.1 connection (it stays with the worker that accepted it)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def get(self, path: str) -> Any:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise RuntimeError(f"{path}: {lines[0]}")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(body)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


class Server:
    def __init__(self, peer: str, directory: Path) -> None:
        self.peer = peer
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=f"{directory}{os.pathsep}{ROOT}", NO_COLOR="1")
        self.proc = subprocess.Popen(
            command(peer, self.port),
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.conns = self._two_workers()

    def _two_workers(self, limit: float = 30.0) -> tuple[Conn, Conn]:
        """Two connections held by different workers, once both serve."""
        deadline = time.monotonic() + limit
        found: dict[str, Conn] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer} exited with {self.proc.returncode}")
            try:
                conn = Conn(self.port)
                name = conn.get("/me")["name"]
            except (OSError, RuntimeError):
                time.sleep(0.05)
                continue
            if name in found:
                conn.close()
            else:
                found[name] = conn
            if len(found) == 2:
                first, second = found.values()
                return first, second
        raise RuntimeError(f"{self.peer}: two workers did not answer within {limit:g} s")

    def costs(self, n: int) -> dict[str, int]:
        result: dict[str, int] = self.conns[0].get(f"/bench?n={n}")
        return result

    def stale(self, trials: int) -> int:
        first, second = self.conns
        names = {c: c.get("/me")["name"] for c in self.conns}
        count = 0
        for i in range(trials):
            writer, reader = (first, second) if i % 2 == 0 else (second, first)
            writer.get(f"/set?v={i}")
            if reader.get(f"/get?name={names[writer]}")["v"] != str(i):
                count += 1
        return count

    def stop(self) -> None:
        for conn in self.conns:
            conn.close()
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        _, alive = psutil.wait_procs(family, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=300, help="operations timed per round")
    parser.add_argument("--trials", type=int, default=200, help="cross-worker reads per server")
    args = parser.parse_args()
    peers = ["vivace"] + (["sanic"] if ensure_sanic() else [])
    costs: dict[str, dict[str, list[float]]] = {p: {op: [] for op in OPS} for p in peers}
    stale: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for peer, source in APPS.items():
            (directory / f"{peer}_app.py").write_text(textwrap.dedent(source))
        servers = {peer: Server(peer, directory) for peer in peers}
        try:
            for _ in range(args.rounds):
                for peer, server in servers.items():
                    for op, ns in server.costs(args.n).items():
                        costs[peer][op].append(ns / 1000)
            for peer, server in servers.items():
                stale[peer] = server.stale(args.trials)
        finally:
            for server in servers.values():
                server.stop()
    print(f"\nmedians of {args.rounds} rounds, each the median of {args.n} operations (µs)\n")
    header = f"{'operation':<24}" + "".join(f"{p:>12}" for p in peers)
    print(header + ("   vivace/sanic" if "sanic" in peers else ""))
    for op in OPS:
        medians = {p: statistics.median(costs[p][op]) for p in peers}
        line = f"{op:<24}" + "".join(f"{medians[p]:>12.2f}" for p in peers)
        if "sanic" in peers:
            line += f"{medians['vivace'] / medians['sanic']:>15.3f}"
        print(line)
    print(
        f"{'stale cross-worker reads':<24}"
        + "".join(f"{f'{stale[p]}/{args.trials}':>12}" for p in peers)
    )


if __name__ == "__main__":
    sys.exit(main())
