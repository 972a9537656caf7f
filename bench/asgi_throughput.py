"""Throughput of ASGI apps (issue 12, 6a): vivace against uvicorn, granian and hypercorn.

    python bench/asgi_throughput.py [--rounds 3] [--duration 4] [--only vivace,uvicorn]

Two apps, each answering ``GET / -> {"hello": "world"}``:

* ``raw``: a bare ``async def app(scope, receive, send)`` (``throughput.apps:bare``);
* ``fastapi``: a FastAPI app with one route (``bench/apps/fastapi_hello.py``);

served by

* ``vivace``: ``vivace TARGET`` (one worker, access log off), from ``bench/.peers/vivace``;
* ``uvicorn``: ``uvicorn TARGET --http httptools --loop uvloop``;
* ``granian``: ``granian --interface asgi --loop uvloop TARGET`` (one worker);
* ``hypercorn``: ``hypercorn TARGET -k uvloop``;

the peers from ``bench/.peers/asgi``. Also vivace's own ``App`` hello (``bench/throughput/apps.py
vivace``, the server of ``bench/throughput/run.py``) from this tree and from the tree at
``--baseline`` (the commit before issue 12's work), to check that vivace's own path is unchanged.

Every server (its whole process tree) is pinned to CPU 0 and wrk to CPU 1 (``taskset``, as in
``throughput/run.py``); rounds are interleaved, each wrk run has a 1 s warm-up, servers are
restarted every round. Prints the median req/s, p99 and requests per CPU-second of the server's
process tree, and the ratios vivace/peer for each app, against the targets of issue 12.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from asgi_peers import (
    APPS,
    HERE,
    ROOT,
    Server,
    bin_of,
    command,
    compile_sources,
    median,
    peers_python,
    vivace_asgi_python,
)
from startup import vivace_root
from throughput.run import cpu_seconds, pinning, wrk

TARGETS = {"raw": "throughput.apps:bare", "fastapi": "fastapi_hello:app"}
PEERS = ["vivace", "uvicorn", "granian", "hypercorn"]
# (app, peer) -> least vivace/peer ratio of req/s (issue 12, point 6).
GOALS = {("raw", "uvicorn"): 1.3, ("raw", "granian"): 1.0, ("fastapi", "uvicorn"): 1.1}
BASELINE = "afdf970"  # main before issue 12 (the hosting interface came next)


class Contestant(NamedTuple):
    app: str  # raw, fastapi, App
    peer: str  # vivace, uvicorn, ..., vivace@BASE
    argv: tuple[str, ...]  # "{port}" stands for the port
    pythonpath: tuple[Path, ...]

    @property
    def name(self) -> str:
        return f"{self.app}/{self.peer}"


def contestants(
    peers: list[str], baseline_tree: Path | None, baseline: str = BASELINE
) -> list[Contestant]:
    vivace = str(vivace_asgi_python())
    python = peers_python()
    paths = (HERE, APPS)
    templates = {
        "vivace": "{vivace} -m runtime {target} -p {port} --no-motd --no-access-logs",
        "uvicorn": "{python} -m uvicorn {target} --port {port} --http httptools --loop uvloop"
        " --log-level warning --no-access-log",
        "granian": "{granian} --interface asgi --loop uvloop --port {port} --log-level warning"
        " --no-access-log {target}",
        "hypercorn": "{python} -m hypercorn {target} -k uvloop --bind 127.0.0.1:{port}"
        " --log-level warning",
    }
    values = {"vivace": vivace, "python": python, "granian": bin_of(python, "granian")}
    out = []
    for app, target in TARGETS.items():
        for peer in peers:
            argv = command(templates[peer], target=target, **values)
            out.append(Contestant(app, peer, tuple(argv), paths))
    if "vivace" in peers:
        own = (vivace, str(HERE / "throughput" / "apps.py"), "vivace", "{port}")
        out.append(Contestant("App", "vivace", own, (vivace_root(),)))
        if baseline_tree is not None:
            out.append(Contestant("App", f"vivace@{baseline}", own, (baseline_tree,)))
    return out


def extract_baseline(rev: str, destination: Path) -> Path | None:
    """``runtime/`` as of ``rev`` (``git archive``, the working tree is not touched)."""
    try:
        data = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "runtime"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"no baseline {rev}: {exc}", file=sys.stderr)
        return None
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(destination, filter="data")
    compile_sources(destination / "runtime")
    return destination


class Sample(NamedTuple):
    rps: float
    p99: float
    per_cpu: float


def tree_cpu(server: Server) -> float:
    return sum(cpu_seconds(proc.pid) for proc in server.tree())


def measure(
    c: Contestant, args: argparse.Namespace, pins: tuple[list[str], list[str]], logs: Path
) -> Sample:
    server_cpu, wrk_cpu = pins
    log = logs / f"{c.name.replace('/', '_')}.log"
    server = Server(
        lambda port: [*server_cpu, *(a.replace("{port}", str(port)) for a in c.argv)],
        cwd=HERE,
        pythonpath=c.pythonpath,
        log=log,
    )
    try:
        try:
            server.wait_first_200(limit=30)
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{c.name}: {exc}\n$ {' '.join(c.argv)}\n{tail}") from None
        wrk(server.port, 1, args.connections, args.threads, wrk_cpu)  # warm-up
        before = tree_cpu(server)
        rps, p99, total = wrk(server.port, args.duration, args.connections, args.threads, wrk_cpu)
        cpu = tree_cpu(server) - before
    finally:
        server.stop()
    return Sample(rps, p99, total / cpu if cpu else float("nan"))


def report(results: dict[Contestant, list[Sample]], failed: dict[str, str]) -> None:
    print(
        f"\n{'app':8} {'server':18} {'req/s':>8} {'p99 ms':>7} {'req/CPU-s':>10} "
        f"{'vivace/peer':>12} {'per CPU':>8} {'target':>7}"
    )
    by_key = {(c.app, c.peer): samples for c, samples in results.items() if samples}
    for (app, peer), samples in by_key.items():
        rps = median([s.rps for s in samples])
        per_cpu = median([s.per_cpu for s in samples])
        p99 = median([s.p99 for s in samples])
        ratio = cpu_ratio = goal = ""
        ours = by_key.get((app, "vivace"))
        if ours and peer != "vivace":
            ratio = f"{median([s.rps for s in ours]) / rps:.2f}x"
            cpu_ratio = f"{median([s.per_cpu for s in ours]) / per_cpu:.2f}x"
            if (app, peer) in GOALS:
                goal = f">={GOALS[app, peer]:.1f}x"
        print(
            f"{app:8} {peer:18} {rps:8.0f} {p99:7.2f} {per_cpu:10.0f} "
            f"{ratio:>12} {cpu_ratio:>8} {goal:>7}"
        )
    for name, error in failed.items():
        print(f"{name}: FAILED\n{error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=",".join(PEERS), help="comma-separated servers")
    parser.add_argument("--apps", default="raw,fastapi,App", help="comma-separated apps")
    parser.add_argument(
        "--baseline", default=BASELINE, help="git revision for vivace App@BASE ('' to skip)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    peers = [p for p in PEERS if p in args.only.split(",")]
    apps = args.apps.split(",")
    pins = pinning(True)
    load = os.getloadavg()
    compile_sources()
    with tempfile.TemporaryDirectory(prefix="vivace-asgi-throughput-") as tmp:
        base = Path(tmp)
        baseline = None
        if args.baseline and "App" in apps:
            baseline = extract_baseline(args.baseline, base / "baseline")
        todo = [c for c in contestants(peers, baseline, args.baseline) if c.app in apps]
        results: dict[Contestant, list[Sample]] = {c: [] for c in todo}
        failed: dict[str, str] = {}
        for rnd in range(1, args.rounds + 1):
            for c in todo:
                if c.name in failed:
                    continue
                try:
                    sample = measure(c, args, pins, base)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    failed[c.name] = str(exc)
                    print(f"round {rnd} {c.name:26} failed (see the end)", flush=True)
                    continue
                results[c].append(sample)
                print(
                    f"round {rnd} {c.name:26} {sample.rps:8.0f} req/s  p99 {sample.p99:6.2f} ms"
                    f"  {sample.per_cpu:8.0f} req/CPU-s",
                    flush=True,
                )
    pinned = f"server on CPU {pins[0][-1]}, wrk on CPU {pins[1][-1]}" if pins[0] else "not pinned"
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds, "
        f"medians; {os.cpu_count()} CPUs, {pinned}; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    report(results, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
