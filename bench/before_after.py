"""vivace before and after a change: the throughput, start-up, restart, reload and console
benchmarks run for two vivace interpreters in one run, rounds interleaved.

    python bench/before_after.py --before /tmp/before-venv/bin/python \\
        [--after /tmp/after-venv/bin/python] [--rounds 5] [--only startup,restart]

Each side is an interpreter with a vivace checkout installed (``--after`` defaults to
``bench/.peers/vivace``, this tree). Every round runs each benchmark script once per side with
``BENCH_VIVACE_PYTHON`` set to that side's interpreter (so each script measures the vivace that
interpreter imports), in the order before/after, after/before, ... so that drift in the machine's
load falls on both alike. The scripts' own figures are parsed from what they print; this script
prints per round, then medians over the rounds and after/before ratios, with the load average at
the start and end of each benchmark. Only vivace's rows are compared (``startup.py`` and
``restart.py`` also run Sanic when it is there; its figures are shown as a noise check: the same
Sanic in both columns).

* ``throughput``: ``asgi_throughput.py --apps App --only vivace`` (the ``App`` hello of
  ``throughput/apps.py``, pinned, 1 s warm-up, ``--duration`` s): req/s, p99, req/CPU-s.
* ``startup``: ``startup.py --rounds 1``: launch -> first 200, 1 and 2 workers.
* ``restart``: ``restart.py --rounds 3``: ``app.m.restart()``, ``zero_downtime``, 1 and 2 workers.
* ``reload``: ``reload.py --only vivace,vivace-watcher --saves 10``.
* ``console``: ``console.py --only vivace --rounds 1``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
Figures = dict[str, float]


def _throughput(out: str) -> Figures:
    m = re.search(r"^App\s+vivace\s+(\d+)\s+([\d.]+)\s+(\d+)", out, re.M)
    if m is None:
        return {}
    return {"req/s": float(m[1]), "p99 ms": float(m[2]), "req/CPU-s": float(m[3])}


def _startup(out: str) -> Figures:
    figures: Figures = {}
    for m in re.finditer(r"^\s+([12])\s+(\d+)(?:\s+(\d+)\s+[\d.]+)?\s*$", out, re.M):
        figures[f"{m[1]} worker(s), ms"] = float(m[2])
        if m[3]:
            figures[f"{m[1]} worker(s), ms (Sanic)"] = float(m[3])
    for m in re.finditer(r"^(python -c .+): (\d+) ms", out, re.M):
        figures[f"{m[1]}, ms"] = float(m[2])
    return figures


def _restart(out: str) -> Figures:
    figures: Figures = {}
    row = r"^\s+([12])\s+(restart|zero_downtime)\s+(\d+)\s+(\d+)(?:\s+(\d+)\s+(\d+)\s+[\d.]+)?"
    for m in re.finditer(row, out, re.M):
        figures[f"{m[2]}, {m[1]} worker(s), ms"] = float(m[3])
        figures[f"{m[2]}, {m[1]} worker(s), failed"] = float(m[4])
        if m[5]:
            figures[f"{m[2]}, {m[1]} worker(s), ms (Sanic)"] = float(m[5])
    return figures


def _reload(out: str) -> Figures:
    figures: Figures = {}
    row = r"^(vivace|vivace-watcher)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)"
    for m in re.finditer(row, out, re.M):
        figures[f"{m[1]} median ms"] = float(m[2])
        figures[f"{m[1]} p90 ms"] = float(m[3])
        if m[5] != "-":
            figures[f"{m[1]} failed"] = float(m[5])
    return figures


def _console(out: str) -> Figures:
    figures: Figures = {}
    row = r"^(.+?)\s+vivace\s+median\s+([\d.]+)\s+p90\s+([\d.]+)\s+max\s+([\d.]+)"
    for m in re.finditer(row, out, re.M):
        figures[f"{m[1]}, median"] = float(m[2])
        if m[1].startswith("keystroke"):
            figures[f"{m[1]}, p90"] = float(m[3])
    return figures


# name -> (script and its arguments, parser of what it prints)
BENCHMARKS: dict[str, tuple[list[str], Callable[[str], Figures]]] = {
    "throughput": (["asgi_throughput.py", "--apps", "App", "--only", "vivace"], _throughput),
    "startup": (["startup.py", "--rounds", "1"], _startup),
    "restart": (["restart.py", "--rounds", "3"], _restart),
    "reload": (["reload.py", "--only", "vivace,vivace-watcher", "--saves", "10"], _reload),
    "console": (["console.py", "--only", "vivace", "--rounds", "1"], _console),
}
HIGHER_IS_BETTER = {"req/s", "req/CPU-s"}


def run(side: str, argv: list[str], timeout: float = 900) -> str:
    env = dict(os.environ)
    env.pop("BENCH_VIVACE_PYTHON", None)
    if side:
        env["BENCH_VIVACE_PYTHON"] = side
    out = subprocess.run(
        [sys.executable, *argv], cwd=HERE, env=env, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {out.returncode}:\n{out.stderr[-3000:]}")
    return out.stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="interpreter of the 'before' vivace")
    parser.add_argument("--after", default="", help="interpreter of the 'after' vivace")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks")
    parser.add_argument("--duration", type=int, default=4, help="seconds per throughput wrk run")
    args = parser.parse_args()
    sides = {"before": args.before, "after": args.after}
    for side in sides.values():  # byte-compile each vivace once, in its own tree
        run(side, ["-c", "import startup; startup.compile_vivace()"])
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, {args.rounds} rounds")
    for label, python in sides.items():
        root = run(python, ["-c", "import startup; print(startup.vivace_root())"]).strip()
        print(f"  {label}: {python or 'bench/.peers/vivace'} ({root})")
    for name in args.only.split(","):
        argv, parse = BENCHMARKS[name]
        if name == "throughput":
            argv = [*argv, "--rounds", "1", "--duration", str(args.duration), "--baseline", ""]
        results: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
        began = load()
        for rnd in range(args.rounds):
            order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
            for label in order:
                figures = parse(run(sides[label], argv))
                if not figures:
                    raise RuntimeError(f"{name}: nothing parsed from the {label} run")
                for key, value in figures.items():
                    results[label].setdefault(key, []).append(value)
                shown = ", ".join(f"{k} {v:g}" for k, v in figures.items())
                print(f"{name} round {rnd + 1} {label:6} {shown}", flush=True)
        print(f"\n{name}: medians of {args.rounds} runs; load average {began} -> {load()}")
        print(f"| {name} | before | after | after/before |\n|---|---|---|---|")
        for key, values in results["before"].items():
            before = statistics.median(values)
            after = statistics.median(results["after"].get(key, [float("nan")]))
            ratio = f"{after / before:.2f}" if before else "-"
            if "failed" in key:
                ratio = "-"
                before, after = sum(values), sum(results["after"].get(key, []))
            label = f"{key} (higher is better)" if key in HIGHER_IS_BETTER else key
            print(f"| {label} | {before:g} | {after:g} | {ratio} |")
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
