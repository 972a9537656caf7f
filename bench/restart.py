"""Restart latency: vivace vs Sanic 23.12, ``app.m.restart()`` and ``zero_downtime=True``.

    python bench/restart.py [--rounds 5]

A request to ``/restart`` (or ``/restart?zero=1``) makes the worker that gets it ask for a restart
of itself. From that moment ``GET /`` is polled every 5 ms (each on a new connection); the time
until a response comes from a process that did not exist before the request is the restart
latency, and every poll that failed (connection error, non-200) is counted. Prints medians,
failures and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from startup import APPS, Running, ensure_sanic, get, write_apps

POLL = 0.005
REASONS: list[str] = []

ROUTES = {
    "vivace": """
        @app.get("/restart")
        async def restart(request):
            request.app.m.restart(zero_downtime=request.args.get("zero") == "1")
            return text("ok")
        """,
    "sanic": """
        @app.get("/restart")
        async def restart(request):
            request.app.m.restart(zero_downtime=request.args.get("zero") == "1")
            return text("ok")
        """,
}


def request_path(port: int, path: str) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass


def settle(server: Running, workers: int, limit: float = 10.0) -> set[str]:
    """The pids answering before the restart (all workers seen, or what was seen in the limit)."""
    pids: set[str] = set()
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline and len(pids) < workers:
        answer = get(server.port)
        if answer and answer[0] == 200:
            pids.add(answer[1])
    return pids


def one_restart(
    server: Running, workers: int, zero: bool, limit: float = 10.0
) -> tuple[float, int]:
    settle(server, workers)
    time.sleep(0.3)  # let a previous restart's old process finish exiting
    old = {str(p.pid) for p in server.tree()}  # every process alive now counts as old
    began = time.perf_counter()
    request_path(server.port, "/restart?zero=1" if zero else "/restart")
    failed = 0
    while time.perf_counter() - began < limit:
        answer = get(server.port, timeout=2.0)
        if answer is None or answer[0] != 200:
            failed += 1
            REASONS.append(f"{server.proc.args[0]}: {answer!r}")
        elif answer[1] not in old:
            return time.perf_counter() - began, failed
        time.sleep(POLL)
    raise RuntimeError("no response from a new worker within the limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    peers = ["vivace"] + (["sanic"] if ensure_sanic() else [])
    for peer in peers:
        APPS[peer] = APPS[peer] + ROUTES[peer]
    results: dict[tuple[str, int, bool], list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_apps(directory)
        for workers in (1, 2):
            for peer in peers:
                server = Running(peer, workers, directory)
                try:
                    server.wait_first_200()
                    settle(server, workers)
                    for _ in range(args.rounds):
                        for zero in (False, True):
                            key = (peer, workers, zero)
                            results.setdefault(key, []).append(one_restart(server, workers, zero))
                finally:
                    server.stop()
    print(
        f"restart latency to a response from a new pid, median of {args.rounds}; failed polls (sum)"
    )
    header = ("workers", "mode", "vivace ms", "fail", "sanic ms", "fail", "ratio")
    print("{:>7} {:>14} {:>10} {:>5} {:>10} {:>5} {:>6}".format(*header))
    for workers in (1, 2):
        for zero in (False, True):
            mode = "zero_downtime" if zero else "restart"
            ours = results[("vivace", workers, zero)]
            ours_ms = statistics.median(t for t, _ in ours) * 1000
            line = f"{workers:>7} {mode:>14} {ours_ms:>10.0f} {sum(f for _, f in ours):>5}"
            theirs = results.get(("sanic", workers, zero))
            if theirs:
                theirs_ms = statistics.median(t for t, _ in theirs) * 1000
                failed = sum(f for _, f in theirs)
                line += f" {theirs_ms:>10.0f} {failed:>5} {ours_ms / theirs_ms:>6.2f}"
            print(line)
    if REASONS:
        print("failed polls:", "; ".join(sorted(set(REASONS))[:5]))


if __name__ == "__main__":
    main()
