"""Throughput of ``GET / -> {"hello": "world"}``: vivace against Sanic 23.12 and uvicorn.

    python bench/throughput/run.py [--rounds 3] [--duration 5] [--connections 64]

Every server runs as a single process on 127.0.0.1; rounds are interleaved (round 1 of every
server, then round 2, ...) so that machine noise hits everyone alike. Prints the median req/s and
p99 latency of each server and the ratios vivace/peer. Sanic runs from a venv under
``bench/.peers/sanic`` (created on first use with ``sanic>=23.12,<24``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = ROOT / "bench" / ".peers"
SANIC_VENV = PEERS / "sanic"
SERVERS = ["vivace", "sanic", "uvicorn-bare", "uvicorn-starlette"]


def sanic_python() -> Path:
    python = SANIC_VENV / "bin" / "python"
    if not python.exists():
        PEERS.mkdir(parents=True, exist_ok=True)
        (PEERS / ".gitignore").write_text("*\n")
        print("creating bench/.peers/sanic with sanic>=23.12,<24 ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SANIC_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "sanic>=23.12,<24"], check=True)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinning(enabled: bool) -> tuple[list[str], list[str]]:
    """``taskset`` prefixes (server, wrk): the server alone on CPU 0, wrk on the other CPUs.

    Every server gets the same core to itself (a single-process server uses one core anyway), so
    no server shares its core with wrk and the scheduler does not migrate it. Empty prefixes
    when disabled, on a single CPU, or without ``taskset``.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return [], []
    rest = ",".join(str(c) for c in cpus[1:])
    return ["taskset", "-c", str(cpus[0])], ["taskset", "-c", rest]


def start(name: str, port: int, prefix: list[str]) -> subprocess.Popen[bytes]:
    python = str(sanic_python()) if name == "sanic" else sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [*prefix, python, str(HERE / "apps.py"), name, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{err}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                if resp.read() and resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"{name} did not answer on port {port} within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    port: int, duration: int, connections: int, threads: int, prefix: list[str], path: str = "/"
) -> tuple[float, float, int]:
    """(requests per second, p99 latency in ms, requests)."""
    out = subprocess.run(
        [
            *prefix,
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    latency = float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan")
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  warning: errors during the run on port {port}:\n{out}", file=sys.stderr)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, latency, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server to CPU 0 and wrk to the other CPUs with taskset",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    names = [n for n in args.servers.split(",") if n]
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    load = os.getloadavg()[0]
    server_cpu, wrk_cpu = pinning(args.pin)
    for rnd in range(1, args.rounds + 1):
        for name in names:
            port = free_port()
            proc = start(name, port, server_cpu)
            try:
                wrk(port, 1, args.connections, args.threads, wrk_cpu)  # warm-up
                cpu_before = cpu_seconds(proc.pid)
                rps, p99, total = wrk(port, args.duration, args.connections, args.threads, wrk_cpu)
                cpu = cpu_seconds(proc.pid) - cpu_before
            finally:
                stop(proc)
            per_cpu = total / cpu if cpu else float("nan")
            results[name].append((rps, p99, per_cpu))
            print(
                f"round {rnd} {name:18} {rps:10.0f} req/s  p99 {p99:7.2f} ms  "
                f"{per_cpu:8.0f} req/CPU-s",
                flush=True,
            )
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds, "
        f"{os.cpu_count()} CPUs, load average at start {load:.2f}, "
        + (f"server on CPU {server_cpu[-1]}, wrk on {wrk_cpu[-1]}" if server_cpu else "not pinned")
    )
    print(
        f"{'server':18} {'median req/s':>12} {'p99 ms':>8} {'vivace/peer':>12} "
        f"{'req/CPU-s':>10} {'vivace/peer':>12}"
    )
    medians = {n: statistics.median(r for r, _, _ in results[n]) for n in names}
    cpu_medians = {n: statistics.median(c for _, _, c in results[n]) for n in names}
    for name in names:
        p99 = statistics.median(lat for _, lat, _ in results[name])
        ratio = cpu_ratio = ""
        if "vivace" in medians and name != "vivace":
            ratio = f"{medians['vivace'] / medians[name]:.2f}x"
            cpu_ratio = f"{cpu_medians['vivace'] / cpu_medians[name]:.2f}x"
        print(
            f"{name:18} {medians[name]:12.0f} {p99:8.2f} {ratio:>12} "
            f"{cpu_medians[name]:10.0f} {cpu_ratio:>12}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
