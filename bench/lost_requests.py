"""Requests lost under load while workers restart, reload and scale: vivace vs Sanic and uvicorn.

    python bench/lost_requests.py [--clients 32] [--restarts 10] [--reloads 10] [--only vivace]
                                  [--modes keep-alive,new-conn] [--events restart,reload,...]
                                  [--think MS] [--commit REV]

A load generator (asyncio on raw sockets, in a thread of this process, 127.0.0.1 only) keeps
``--clients`` clients sending ``GET /`` back to back, in one of two modes:

* ``keep-alive``: each client reuses its connection; a response that says ``Connection: close``
  makes it reconnect for the next request (not a failure);
* ``new-conn``: a new connection per request (``Connection: close``), as browsers and many clients
  do after an idle; the client reads to the server's EOF, so the server closes first.

Every request is counted once, as answered (2xx or non-2xx) or as failed: ``reset`` (ECONNRESET or
EPIPE at any point), ``EOF`` (the connection ended before a complete response; the details say
how many bytes had come), ``refused`` (ECONNREFUSED), ``timeout`` (no response within 10 s) or
``other`` (any other OSError). Latency runs from the connect (new-conn) or the write (keep-alive) to
the last byte of the body; the table shows the largest.

While the load runs, each server (2 workers) goes through one kind of event at a time, on a fresh
start, with the load started after the workers answer and stopped before the server is stopped:

| event | vivace ``-w 2`` | Sanic 23.12 ``-w 2`` | uvicorn ``--workers 2`` |
|---|---|---|---|
| restart | ``app.m.restart(all_workers=True)`` | same | SIGHUP (start-first: its only kind) |
| zero-downtime | ``...(zero_downtime=True)`` | same | SIGHUP |
| reload | ``--reload``, app file saved | ``--auto-reload`` (1 s poll) | ``--reload``, 1 process |
| scale | ``app.m.scale(n)``, 2 -> 4 -> 1 -> 2 | same | SIGTTIN / SIGTTOU |

vivace and Sanic get the restart and scale requests from a ``/restart`` and a ``/scale`` route (as
``restart.py`` does), outside the counted load. After each event the driver waits until the old
workers have exited, the expected number of workers is alive and a new one has answered, then
pauses 0.2-0.4 s. Prints one table per connection mode.

``--think MS`` makes each client wait 0.5-1.5x MS after each response, so that keep-alive
connections sit idle between requests as a browser's do; ``--commit REV`` runs vivace's
``runtime/`` as of a git revision (``git archive``) instead of the working tree, which other work
may be changing.

The servers run from ``bench/.peers`` as in the other scripts: vivace from ``bench/.peers/vivace``
(this tree, editable), Sanic from ``bench/.peers/sanic``, uvicorn from ``bench/.peers/asgi``; all
created on first use. Each server's output goes to a log in a temporary directory, kept (and
printed) when vivace lost a request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from asgi_peers import Server, compile_sources, peers_python
from asgi_throughput import extract_baseline
from restart import request_path
from startup import APPS, SANIC_PY, ensure_sanic, get, vivace_python

HOST = "127.0.0.1"
TIMEOUT = 10.0  # one request, connect to last byte
WARM = 0.5  # load before the first event and after the last
PAUSE = (0.2, 0.4)  # between events, once the previous one has settled
SETTLE = 30.0  # the longest an event may take to settle
MAX_REQUESTS = 5_000_000  # per run of the load, a bound that no run here reaches
MAX_SECONDS = 300.0  # per run of the load
SAMPLES = 5  # kinds of failure printed per run (event in progress, kind, detail)

CONTROL = """
@app.get("/restart")
async def restart(request):
    request.app.m.restart(all_workers=True, zero_downtime=request.args.get("zero") == "1")
    return text("ok")

@app.get("/scale")
async def scale(request):
    request.app.m.scale(int(request.args.get("n")))
    return text("ok")
"""

UVICORN_APP = """
import os

PID = str(os.getpid()).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(PID)).encode())]})
    await send({"type": "http.response.body", "body": PID})
"""

Results = dict[tuple[str, str], tuple["Counts", int]]  # (server, event) -> (counts, unsettled)
KINDS = ("reset", "eof", "refused", "non2xx", "timeout", "other")
EVENTS = ("restart", "zero-downtime", "reload", "scale")
MODES = ("keep-alive", "new-conn")


# --- the load generator ------------------------------------------------------------------------


@dataclass
class Counts:
    requests: int = 0
    ok: int = 0
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    max_latency: float = 0.0
    # (event in progress, kind, detail) -> [number, seconds into the run of the first]
    where: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(self.failures.values())


class Load:
    """``clients`` clients hammering ``GET /`` on ``port`` from a thread until ``stop()``.

    ``label`` is the event in progress (set by the driver), recorded with each failure when the
    client sees it (a client that was late to run may see it after the event has settled).
    """

    def __init__(self, port: int, clients: int, keep_alive: bool, think: float = 0.0) -> None:
        self.port = port
        self.clients = clients
        self.keep_alive = keep_alive
        self.think = think
        self.label = "warm-up"
        self.counts = Counts()
        self._began = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> None:
        self._began = time.perf_counter()
        self._thread.start()

    def stop(self) -> Counts:
        self._stop.set()
        self._thread.join(TIMEOUT + 5)
        if self._thread.is_alive():
            raise RuntimeError("the load generator did not stop")
        return self.counts

    def _run(self) -> None:
        try:
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
        except ImportError:
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(self.clients)))

    def _done(self) -> bool:
        return (
            self._stop.is_set()
            or self.counts.requests >= MAX_REQUESTS
            or time.perf_counter() - self._began > MAX_SECONDS
        )

    async def _client(self) -> None:
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        request += b"\r\n" if self.keep_alive else b"Connection: close\r\n\r\n"
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while not self._done():
            self.counts.requests += 1
            began = time.perf_counter()
            kind, detail = "", ""
            try:
                async with asyncio.timeout(TIMEOUT):
                    if streams is None:
                        streams = await asyncio.open_connection(HOST, self.port)
                    reader, writer = streams
                    writer.write(request)
                    status, close = await self._response(reader)
                    latency = time.perf_counter() - began
                    if not self.keep_alive:  # to the server's EOF: no TIME_WAIT on our side
                        with contextlib.suppress(ConnectionResetError):  # answered all the same
                            await reader.read()
            except ConnectionRefusedError:
                kind = "refused"
            except (ConnectionResetError, BrokenPipeError) as exc:
                kind, detail = "reset", type(exc).__name__
            except asyncio.IncompleteReadError as exc:
                got = f"after {len(exc.partial)} bytes" if exc.partial else "before any byte"
                kind, detail = "eof", f"{got} of the response"
            except TimeoutError:
                kind = "timeout"
            except OSError as exc:
                kind, detail = "other", repr(exc)
            else:
                self.counts.max_latency = max(self.counts.max_latency, latency)
                if 200 <= status < 300:
                    self.counts.ok += 1
                else:
                    kind, detail = "non2xx", str(status)
                if self.think:  # 0.5x to 1.5x, so that the clients do not march in step
                    await asyncio.sleep(self.think * (0.5 + random.random()))
                if self.keep_alive and not close and not kind:
                    continue  # the next request on this connection
            if kind:
                self._fail(kind, detail)
            if streams is not None:
                streams[1].close()
                streams = None

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bool]:
        """(status, the server said ``Connection: close``) once the whole body has come."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").lower().split("\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = "close" in value
        await reader.readexactly(length)
        return status, close

    def _fail(self, kind: str, detail: str) -> None:
        self.counts.failures[kind] += 1
        seen = self.counts.where.setdefault(
            (self.label, kind, detail), [0, time.perf_counter() - self._began]
        )
        seen[0] += 1


# --- the servers -------------------------------------------------------------------------------


@dataclass
class Peer:
    """How to run one server and put it through each event."""

    name: str
    app_file: str  # written into the work directory
    argv: Callable[[int, bool], list[str]]  # (port, reload)
    restart: Callable[[Server, bool], None]  # (server, zero_downtime)
    scale: Callable[[Server, int, int], None]  # (server, from, to)
    workers: int = 2
    reload_workers: int = 2
    pythonpath: tuple[Path, ...] = ()  # before the work directory


def route_restart(server: Server, zero: bool) -> None:
    control(server, "/restart?zero=1" if zero else "/restart")


def route_scale(server: Server, _: int, n: int) -> None:
    control(server, f"/scale?n={n}")


def control(server: Server, path: str) -> None:
    """One control request; retried (the server is under load and may be restarting)."""
    for _ in range(20):
        try:
            request_path(server.port, path)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{path}: no answer")


def sighup(server: Server, _: bool) -> None:
    os.kill(server.proc.pid, signal.SIGHUP)


def ttin_ttou(server: Server, current: int, n: int) -> None:
    """One signal per worker added or removed, each once the previous one has acted (signals of
    one kind sent together arrive as one)."""
    sig = signal.SIGTTIN if n > current else signal.SIGTTOU
    for _ in range(abs(n - current)):
        before = len(live_pids(server))
        os.kill(server.proc.pid, sig)
        deadline = time.perf_counter() + SETTLE
        while len(live_pids(server)) == before and time.perf_counter() < deadline:
            time.sleep(0.01)


def peers(only: set[str], vivace_tree: Path | None) -> list[Peer]:
    found = []
    if "vivace" in only:
        python = vivace_python()
        found.append(
            Peer(
                "vivace",
                "vivace_app.py",
                lambda port, reload: [
                    python,
                    "-m",
                    "runtime",
                    "vivace_app:app",
                    "-p",
                    str(port),
                    "-w",
                    "2",
                    "--no-motd",
                    "--no-access-logs",
                    *(["--reload"] if reload else []),
                ],
                route_restart,
                route_scale,
                pythonpath=(vivace_tree,) if vivace_tree else (),
            )
        )
    if "sanic" in only and ensure_sanic():
        found.append(
            Peer(
                "sanic",
                "sanic_app.py",
                lambda port, reload: [
                    str(SANIC_PY),
                    "-m",
                    "sanic",
                    "sanic_app:app",
                    "-p",
                    str(port),
                    "-w",
                    "2",
                    "--no-motd",
                    "--no-access-logs",
                    *(["--auto-reload"] if reload else []),
                ],
                route_restart,
                route_scale,
            )
        )
    if "uvicorn" in only:
        uvicorn = str(peers_python())
        found.append(
            Peer(
                "uvicorn",
                "uvicorn_app.py",
                lambda port, reload: [
                    uvicorn,
                    "-m",
                    "uvicorn",
                    "uvicorn_app:app",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    *(["--reload"] if reload else ["--workers", "2"]),
                ],
                sighup,
                ttin_ttou,
                reload_workers=1,
            )
        )
    return found


def write_apps(directory: Path) -> None:
    for name in ("vivace", "sanic"):
        source = textwrap.dedent(APPS[name]) + CONTROL
        (directory / f"{name}_app.py").write_text(source)
    (directory / "uvicorn_app.py").write_text(UVICORN_APP)


def save(path: Path, version: int) -> None:
    """Rewrite the app file with a new last line, as an editor's save would."""
    lines = path.read_text().splitlines()
    if lines[-1].startswith("# version "):
        lines.pop()
    path.write_text("\n".join([*lines, f"# version {version}"]) + "\n")


# --- the driver --------------------------------------------------------------------------------


def live_pids(server: Server) -> set[int]:
    pids = set()
    for proc in server.tree():
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.status() != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
    return pids


class Driver:
    """One server through one kind of event; the workers are the processes of the tree that
    were not there as non-workers at the start (the main process, a reloader)."""

    def __init__(self, server: Server, workers: int) -> None:
        self.server = server
        self.workers = workers
        seen: set[int] = set()
        deadline = time.perf_counter() + SETTLE
        while len(seen) < workers and time.perf_counter() < deadline:
            answer = get(server.port)
            if answer is not None and answer[0] == 200:
                seen.add(int(answer[1]))
        if len(seen) < workers:
            raise RuntimeError(f"only {len(seen)} of {workers} workers answered")
        self.base = live_pids(server) - seen
        self.unsettled = 0

    def worker_pids(self) -> set[int]:
        return live_pids(self.server) - self.base

    def settle(self, old: set[int], count: int) -> None:
        """Until no old worker is alive, ``count`` workers are, and a new one has answered."""
        deadline = time.perf_counter() + SETTLE
        while time.perf_counter() < deadline:
            workers = self.worker_pids()
            if not workers & old and len(workers) == count:
                answer = get(self.server.port)
                if answer is not None and answer[0] == 200 and int(answer[1]) not in old:
                    return
            time.sleep(0.01)
        self.unsettled += 1


def run_event(
    peer: Peer, event: str, mode: str, args: argparse.Namespace, workdir: Path, rng: random.Random
) -> tuple[Counts, int]:
    """One fresh server, the load, the events of one kind; (counts, events not settled)."""
    reload = event == "reload"
    count = args.reloads if reload else args.restarts
    workers = peer.reload_workers if reload else peer.workers
    log = workdir / f"{peer.name}-{event}-{mode}.log"
    pythonpath = [*peer.pythonpath, workdir]
    server = Server(lambda port: peer.argv(port, reload), workdir, pythonpath, log)
    try:
        server.wait_first_200()
        driver = Driver(server, workers)
        load = Load(server.port, args.clients, mode == "keep-alive", args.think / 1000)
        load.start()
        try:
            time.sleep(WARM)
            steps = [(2, 4), (4, 1), (1, 2)] if event == "scale" else [(workers, workers)] * count
            for number, (current, n) in enumerate(steps, 1):
                load.label = f"{event} {number}"
                old = driver.worker_pids()
                if event == "scale":
                    peer.scale(server, current, n)
                    old = set()  # which workers go is the server's choice
                elif reload:
                    save(workdir / peer.app_file, number)
                else:
                    peer.restart(server, event == "zero-downtime")
                driver.settle(old, n)
                load.label = f"after {event} {number}"
                time.sleep(rng.uniform(*PAUSE))
            time.sleep(WARM)
        finally:
            counts = load.stop()
    finally:
        server.stop()
    return counts, driver.unsettled


def table(
    mode: str, args: argparse.Namespace, results: dict[tuple[str, str], tuple[Counts, int]]
) -> None:
    think = f", {args.think:g} ms between requests" if args.think else ""
    print(f"\n{mode}, {args.clients} clients{think}")
    header = ("event", "server", "requests", "reset", "EOF", "refused", "non-2xx", "timeout")
    print(
        "{:<14} {:<8} {:>9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>6} {:>8}".format(
            *header, "other", "max ms"
        )
    )
    for event in EVENTS:
        for name in ("vivace", "sanic", "uvicorn"):
            if (name, event) not in results:
                continue
            counts, unsettled = results[(name, event)]
            f = counts.failures
            flag = f"  ({unsettled} not settled in {SETTLE:.0f} s)" if unsettled else ""
            print(
                f"{event:<14} {name:<8} {counts.requests:>9} {f['reset']:>6} {f['eof']:>6}"
                f" {f['refused']:>8} {f['non2xx']:>8} {f['timeout']:>8} {f['other']:>6}"
                f" {counts.max_latency * 1000:>8.0f}{flag}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32-64)")
    parser.add_argument("--restarts", type=int, default=10, help="of each kind")
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--only", default="vivace,sanic,uvicorn", help="servers, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help="keep-alive,new-conn")
    parser.add_argument("--events", default=",".join(EVENTS), help=",".join(EVENTS))
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        metavar="MS",
        help="each client waits 0.5-1.5x MS between requests (idle keep-alive connections)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--commit",
        default="",
        help="run vivace's runtime/ as of this git revision (git archive), not the working tree",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 256:
        parser.error("--clients: 1 to 256")
    if not 0 <= args.think <= 5000:
        parser.error("--think: 0 to 5000 ms")
    rng = random.Random(args.seed)
    events = [e for e in EVENTS if e in args.events.split(",")]
    modes = [m for m in MODES if m in args.modes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="vivace-lost-requests-"))
    write_apps(workdir)
    vivace_tree = None
    if args.commit:
        vivace_tree = extract_baseline(args.commit, workdir / "vivace-tree")
        if vivace_tree is None:
            parser.error(f"--commit {args.commit}: cannot extract runtime/")
    else:
        compile_sources()
    servers = peers(set(args.only.split(",")), vivace_tree)
    began = time.perf_counter()
    vivace_lost = False
    for mode in modes:
        results: Results = {}
        for event in events:
            for peer in servers:
                counts, unsettled = run_event(peer, event, mode, args, workdir, rng)
                results[(peer.name, event)] = (counts, unsettled)
                lost = counts.lost
                print(
                    f"{mode} {event} {peer.name}: {counts.requests} requests, {lost} failed"
                    f" ({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
                if peer.name == "vivace" and lost:
                    vivace_lost = True
        table(mode, args, results)
        for (name, _event), (counts, _) in results.items():
            for (label, kind, detail), (n, at) in list(counts.where.items())[:SAMPLES]:
                print(f"  {name:<8} {label:<20} {n:>5} x {kind} {detail} (first at {at:.2f} s)")
    print(f"\n{time.perf_counter() - began:.0f} s in all; load average {os.getloadavg()[0]:.2f}")
    if vivace_lost:
        print(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
