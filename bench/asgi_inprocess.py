"""The Python work of one ASGI request without sockets: vivace's and uvicorn's protocol in process.

    python bench/asgi_inprocess.py [--rounds 5] [--requests 10000] [--apps raw,fastapi]
    python bench/asgi_inprocess.py --baseline fa8de23   # also vivace as of that commit

Each server's HTTP protocol object (vivace's ``ASGIHttpProtocol``, uvicorn's
``HttpToolsProtocol``) gets one connection on a fake transport and is fed ``GET /`` (the head wrk
sends) again and again on a uvloop loop; a request ends when the transport is written to. The
figure is CPU time per request (``time.process_time``): each round takes the least of 3 runs of
``--requests`` requests (after 2,000 of warm-up), and the median over ``--rounds`` is printed.
``null`` is the floor: a protocol that does nothing but run the app in a task with a ``send``
that writes the body, so what each server adds is its figure minus ``null``'s.

No kernel work is counted here (``asgi_throughput.py`` measures the servers on sockets); this
shows where the Python time goes, steadily enough to compare one change (about 0.1 us apart
when the machine is quiet). Each server runs in its own virtualenv (``asgi_peers``), one process
per measurement, pinned to the first CPU with ``taskset`` when there is one; rounds interleave.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from asgi_peers import APPS, HERE, peers_python, vivace_asgi_python
from asgi_throughput import extract_baseline
from startup import vivace_root

DRIVER = HERE / "asgi_inprocess_driver.py"


def measure(
    server: str, app: str, args: argparse.Namespace, pin: list[str], trees: dict[str, Path]
) -> float:
    python = peers_python() if server == "uvicorn" else vivace_asgi_python()
    paths = [str(APPS), str(HERE)]
    if server != "uvicorn":
        paths.insert(0, str(trees.get(server, vivace_root())))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    kind = server.partition("@")[0]  # vivace@REV: vivace's protocol from that tree
    out = subprocess.run(
        [*pin, str(python), str(DRIVER), kind, app, str(args.requests), "3"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(HERE),
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{server}/{app} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10000, help="per run")
    parser.add_argument("--apps", default="raw,fastapi")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--baseline", metavar="REV", help="also vivace's runtime/ as of REV (git archive)"
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = (
        []
        if args.no_pin or not cpus or not shutil.which("taskset")
        else ["taskset", "-c", str(cpus[0])]
    )
    servers = ["vivace", "uvicorn", "null"]
    trees: dict[str, Path] = {}
    scratch = tempfile.TemporaryDirectory(prefix="vivace-baseline-")
    if args.baseline:
        tree = extract_baseline(args.baseline, Path(scratch.name))
        if tree is not None:
            trees[f"vivace@{args.baseline}"] = tree
            servers.insert(1, f"vivace@{args.baseline}")
    results: dict[tuple[str, str], list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        for app in args.apps.split(","):
            for server in servers:
                value = measure(server, app, args, pin, trees)
                results.setdefault((app, server), []).append(value)
                print(f"round {round_} {app:8} {server:16} {value:7.2f} us/request", flush=True)
    print(f"\nCPU time per request, median of {args.rounds} rounds (each the least of 3 runs);")
    print("vivace/peer is the peer's time over vivace's (above 1: vivace does less work)")
    print(f"{'app':8} {'server':16} {'us':>7} {'less null':>10} {'vivace/peer':>12}")
    for app in args.apps.split(","):
        ours = statistics.median(results[app, "vivace"])
        floor = statistics.median(results[app, "null"])
        for server in servers:
            value = statistics.median(results[app, server])
            ratio = f"{value / ours:.2f}x" if server not in ("vivace", "null") else ""
            print(f"{app:8} {server:16} {value:7.2f} {value - floor:10.2f} {ratio:>12}")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
