"""Static file serving (issue 16, point 6): vivace's ``app.static`` against Sanic 23.12's
``app.static`` and Starlette's ``StaticFiles`` under uvicorn (httptools, uvloop).

    python bench/static.py [--rounds 3] [--duration 5] [--only vivace,sanic]

Two files, each fetched over keep-alive connections: ``small.bin`` (1 KiB, 64 connections, by
wrk) and ``large.bin`` (10 MiB, 8 connections, by ``bench/discard.py``, which drops each body in
the kernel instead of copying it: with wrk, whose one thread copies every byte, the client is the
limit and servers 3-5x apart in CPU per GB measure the same; ``--client wrk`` measures that way).
Every server is one process, pinned to CPU 0 and the client to CPU 1 (``taskset``, as in
``throughput/run.py``); rounds are interleaved and each run has a 1 s warm-up. Also measured for
the large file: ``ceiling``, a server of blocking threads (one per connection) answering every
request with ``os.sendfile`` and nothing else: what a bare ``sendfile`` server gets from the
loopback with no HTTP work (a reference, not a contestant; vivace's one sender thread, streaming one
connection at a time, gets more).

Prints, per file, the median req/s and MB/s of each server, CPU seconds per GB sent (the server
process), and the ratios vivace/peer against the targets of issue 16: small files >= 1.5x Sanic
and >= 1.0x Starlette; the large file >= 2x Sanic's throughput, and close to what the loopback
carries (the ceiling).

Run one server by hand with ``python bench/static.py serve NAME PORT DIRECTORY``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

if __name__ != "__main__" or sys.argv[1:2] != ["serve"]:  # the harness, not a served peer
    from asgi_peers import HERE, Server, compile_sources, median, peers_python
    from startup import vivace_python, vivace_root
    from throughput.run import cpu_seconds, pinning, sanic_python, wrk

FILES = {"small": ("small.bin", 1024, 64), "large": ("large.bin", 10 * 1024 * 1024, 8)}
SERVERS = ["vivace", "sanic", "starlette", "ceiling"]
# (file, peer) -> least vivace/peer ratio of req/s (issue 16, point 6)
GOALS = {("small", "sanic"): 1.5, ("small", "starlette"): 1.0, ("large", "sanic"): 2.0}


# --- the servers (run in their own interpreters: ``bench/static.py serve NAME PORT DIR``) ---------


def serve_vivace(port: int, directory: str) -> None:
    from runtime import App, text
    from runtime.server import serve_single

    app = App("static_bench")
    app.static("/static", directory)

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("ready")

    raise SystemExit(serve_single(app, port=port, motd=False, access_log=False))


def serve_sanic(port: int, directory: str) -> None:
    from sanic import Sanic
    from sanic.response import text

    app = Sanic("static_bench")
    app.static("/static", directory)

    @app.get("/")
    async def index(request):  # type: ignore[no-untyped-def]
        return text("ready")

    app.run(
        host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False, debug=False
    )


def serve_starlette(port: int, directory: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def index(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("ready")

    app = Starlette(
        routes=[Route("/", index), Mount("/static", app=StaticFiles(directory=directory))]
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


def serve_ceiling(port: int, directory: str) -> None:
    """A thread per connection, blocking: read a request head, sendfile the file it names."""
    import threading

    listener = socket.create_server(("127.0.0.1", port), backlog=128)

    def serve(conn: socket.socket) -> None:
        try:
            _answer(conn, directory)
        except OSError:  # the client left mid-file (wrk ends its runs so)
            pass
        finally:
            conn.close()

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _answer(conn: socket.socket, directory: str) -> None:
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        target = head.split(b" ", 2)[1].decode()
        name = target.rsplit("/", 1)[-1]
        path = os.path.join(directory, name) if target.startswith("/static/") else ""
        if not path or not os.path.isfile(path):
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nready")
            if b"connection: close" in head.lower():
                return
            continue
        size = os.path.getsize(path)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        with open(path, "rb") as handle:
            offset = 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), handle.fileno(), offset, size - offset)


# --- the harness ----------------------------------------------------------------------------------


class Sample(NamedTuple):
    rps: float
    mb_s: float
    cpu_per_gb: float


def argv(name: str, directory: Path) -> tuple[list[str], list[Path]]:
    """(command with ``{port}``, PYTHONPATH) of one server."""
    here = str(Path(__file__).resolve())
    python = {
        "vivace": vivace_python(),
        "sanic": str(sanic_python()),
        "starlette": str(peers_python()),
        "ceiling": sys.executable,
    }[name]
    path = [vivace_root()] if name == "vivace" else []
    return [python, here, "serve", name, "{port}", str(directory)], path


def measure(
    name: str, file_key: str, directory: Path, args: argparse.Namespace, logs: Path
) -> Sample:
    server_cpu, wrk_cpu = pinning(args.pin)
    command, pythonpath = argv(name, directory)
    filename, size, connections = FILES[file_key]
    log = logs / f"{name}.log"
    server = Server(
        lambda port: [*server_cpu, *(a.replace("{port}", str(port)) for a in command)],
        cwd=HERE,
        pythonpath=pythonpath,
        log=log,
    )
    try:
        try:
            server.wait_first_200(limit=30)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name}: {exc}\n{tail}") from None
        path = f"/static/{filename}"
        if file_key == "large" and args.client == "discard":
            rps, total, cpu = discard(server, connections, wrk_cpu, path, args.duration)
        else:
            wrk(server.port, 1, connections, 1, wrk_cpu, path)  # warm-up
            before = cpu_seconds(server.proc.pid)
            rps, _, total = wrk(server.port, args.duration, connections, 1, wrk_cpu, path)
            cpu = cpu_seconds(server.proc.pid) - before
    finally:
        server.stop()
    sent = total * size
    return Sample(rps, rps * size / 1e6, cpu / (sent / 1e9) if sent else float("nan"))


def discard(
    server: Server, connections: int, cpus: list[str], path: str, duration: int
) -> tuple[float, int, float]:
    """(req/s, requests, server CPU seconds) of ``bench/discard.py``: 1 s warm-up, then
    ``duration`` s measured; the server's CPU is read over the measured time only."""
    command = [*cpus, sys.executable, str(HERE / "discard.py"), str(server.port), path]
    command += ["--connections", str(connections), "--duration", str(duration), "--warmup", "1"]
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    before = cpu_seconds(server.proc.pid)
    time.sleep(duration)
    cpu = cpu_seconds(server.proc.pid) - before
    out, _ = client.communicate(timeout=duration + 90)
    if client.returncode != 0:
        raise RuntimeError(f"discard.py exited {client.returncode}")
    result = json.loads(out)
    if result["failures"]:
        print(f"  warning: failures on port {server.port}: {result['failures']}", file=sys.stderr)
    return float(result["rps"]), int(result["requests"]), cpu


def report(results: dict[tuple[str, str], list[Sample]]) -> None:
    print(
        f"\n{'file':6} {'server':10} {'req/s':>9} {'MB/s':>8} {'CPU-s/GB':>9} "
        f"{'vivace/peer':>12} {'target':>7} {'CPU per GB peer/vivace':>23}"
    )
    for file_key in FILES:
        ours = results.get(("vivace", file_key))
        for name in SERVERS:
            samples = results.get((name, file_key))
            if not samples:
                continue
            rps = median([s.rps for s in samples])
            mb_s = median([s.mb_s for s in samples])
            per_gb = median([s.cpu_per_gb for s in samples])
            ratio = goal = cpu_ratio = ""
            if ours and name != "vivace":
                ratio = f"{median([s.rps for s in ours]) / rps:.2f}x"
                cpu_ratio = f"{per_gb / median([s.cpu_per_gb for s in ours]):.2f}x"
                if (file_key, name) in GOALS:
                    goal = f">={GOALS[file_key, name]:.1f}x"
            print(
                f"{file_key:6} {name:10} {rps:9.0f} {mb_s:8.0f} {per_gb:9.2f} {ratio:>12} "
                f"{goal:>7} {cpu_ratio:>23}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--only", default=",".join(SERVERS), help="servers to run")
    parser.add_argument("--files", default=",".join(FILES), help="small, large")
    parser.add_argument(
        "--client",
        choices=("discard", "wrk"),
        default="discard",
        help="the large file's client: bench/discard.py (drops bodies in the kernel) or wrk",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let server and wrk share every CPU (server CPU then competes with the client's)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    names = [n for n in args.only.split(",") if n]
    file_keys = [f for f in args.files.split(",") if f]
    # the ceiling bounds the large file's throughput (sendfile and nothing else); for small
    # files it would measure a thread per connection, not a bound
    compile_sources()
    load = os.getloadavg()[0]
    results: dict[tuple[str, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="vivace-static-bench-") as tmp:
        directory = Path(tmp) / "files"
        directory.mkdir()
        for filename, size, _ in FILES.values():
            (directory / filename).write_bytes(os.urandom(size))
        logs = Path(tmp)
        for rnd in range(1, args.rounds + 1):
            for file_key in file_keys:
                for name in names:
                    if name == "ceiling" and file_key != "large":
                        continue
                    try:
                        sample = measure(name, file_key, directory, args, logs)
                    except (RuntimeError, subprocess.CalledProcessError) as exc:
                        print(f"round {rnd} {file_key:5} {name:10} FAILED: {exc}", flush=True)
                        continue
                    results.setdefault((name, file_key), []).append(sample)
                    print(
                        f"round {rnd} {file_key:5} {name:10} {sample.rps:9.0f} req/s "
                        f"{sample.mb_s:8.0f} MB/s {sample.cpu_per_gb:6.2f} CPU-s/GB",
                        flush=True,
                    )
    client = "bench/discard.py" if args.client == "discard" else "wrk -t1"
    print(
        f"\nsmall: wrk -t1, large: {client}; keep-alive, {args.duration} s per run, "
        f"{args.rounds} rounds, "
        f"{'pinned (server CPU 0, wrk CPU 1)' if args.pin else 'not pinned'}, "
        f"{os.cpu_count()} CPUs, load average at start {load:.2f}; connections: "
        + ", ".join(f"{k} {c}" for k, (_, _, c) in FILES.items())
        + " (ceiling: large file only)"
    )
    report(results)
    return 0


def _serve(argv: list[str]) -> None:
    name, port, directory = argv[0], int(argv[1]), argv[2]
    {
        "vivace": serve_vivace,
        "sanic": serve_sanic,
        "starlette": serve_starlette,
        "ceiling": serve_ceiling,
    }[name](port, directory)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2:])
    else:
        raise SystemExit(main())
