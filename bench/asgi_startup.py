"""Start-up to the first 200 and memory of a heavy FastAPI app with 2 workers (issue 12, 6c):
vivace ``-w 2`` against ``uvicorn --workers 2`` (and ``granian --workers 2`` for reference).

    python bench/asgi_startup.py [--rounds 5] [--only vivace,uvicorn,granian]

The app is a byte-compiled copy of ``bench/apps/heavy`` (FastAPI, pydantic, SQLAlchemy ORM on
SQLite, ~38 routes). The clock starts when the server command is launched and stops at the first
200 on ``GET /``, polled every 5 ms on fresh connections (``startup.Running``). The server then
gets 200 requests and half a second to settle, and its memory is summed over the main process
and every descendant (``memory.measure``: RSS and PSS from ``psutil.memory_full_info()``; PSS
splits shared pages between the processes sharing them). Rounds are interleaved; every server is
stopped with SIGINT and its process tree checked gone. vivace runs from ``bench/.peers/vivace``,
the peers from ``bench/.peers/asgi`` (``asgi_peers.py``).

Also printed: the CPU time the server's processes had used when the first 200 came (user +
system from ``/proc``, of every live process of the tree and of the children they reaped), which is
what the start-up costs a machine whose cores are busy. ``--cpus 1`` runs each server on one CPU
(``taskset``), as in a container limited to one core.

Prints medians and the ratios to uvicorn, against issue 12's target: start-up <= 0.5x uvicorn's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from asgi_peers import (
    Server,
    bin_of,
    command,
    compile_sources,
    copy_heavy,
    heavy_import_seconds,
    median,
    peers_python,
    vivace_asgi_python,
)
from memory import measure
from startup import get

TARGET = "heavy.main:app"
SERVERS = ["vivace", "uvicorn", "granian"]
WORKERS = 2


def commands() -> dict[str, list[str]]:
    vivace = str(vivace_asgi_python())
    python = peers_python()
    templates = {
        "vivace": "{vivace} -m runtime {target} -p {port} -w {workers} --no-motd",
        "uvicorn": "{python} -m uvicorn {target} --port {port} --workers {workers}"
        " --log-level warning",
        "granian": "{granian} --interface asgi --port {port} --workers {workers}"
        " --log-level warning {target}",
    }
    values = {"vivace": vivace, "python": python, "granian": bin_of(python, "granian")}
    return {
        name: command(t, target=TARGET, workers=WORKERS, **values) for name, t in templates.items()
    }


def tree_cpu(server: Server) -> float:
    """CPU seconds of ``server``'s processes so far: each live one's own, and those of the
    children it reaped (``cutime``/``cstime``), so that a helper that has exited counts too."""
    total = 0
    for proc in server.tree():
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers")
    parser.add_argument("--cpus", type=int, default=0, help="run each server on this many CPUs")
    args = parser.parse_args()
    pin: list[str] = []
    if args.cpus:
        cpus = sorted(os.sched_getaffinity(0))[: args.cpus]
        if shutil.which("taskset") is None:
            parser.error("--cpus needs taskset")
        pin = ["taskset", "-c", ",".join(str(c) for c in cpus)]
    names = [n for n in SERVERS if n in args.only.split(",")]
    argv = commands()
    compile_sources()
    load = os.getloadavg()
    starts: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    memory: dict[str, list[tuple[float, float, int]]] = {n: [] for n in names}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="vivace-asgi-startup-") as tmp:
        directory = Path(tmp)
        copy_heavy(directory)
        interpreters = {"vivace venv": vivace_asgi_python(), "peers venv": peers_python()}
        imports: dict[str, list[float]] = {label: [] for label in interpreters}
        for rnd in range(1, args.rounds + 1):
            for label, python in interpreters.items():  # the floor, in the same rounds
                imports[label].append(heavy_import_seconds(python, directory))
            for name in names:
                if name in failed:
                    continue
                log = directory / f"{name}.log"
                log.write_bytes(b"")
                server = Server(
                    lambda port, name=name: [
                        *pin,
                        *(a.replace("{port}", str(port)) for a in argv[name]),
                    ],
                    cwd=directory,
                    pythonpath=(directory,),
                    log=log,
                )
                try:
                    try:
                        started = server.wait_first_200(limit=30)
                        used = tree_cpu(server)
                    except RuntimeError as exc:
                        tail = log.read_text(errors="replace")[-3000:]
                        failed[name] = f"{exc}\n$ {' '.join(argv[name])}\n{tail}"
                        print(f"round {rnd} {name:8} failed (see the end)", flush=True)
                        continue
                    for _ in range(200):
                        get(server.port)
                    time.sleep(0.5)  # late imports, the last worker's start
                    sample = measure(server)
                finally:
                    server.stop()
                starts[name].append(started)
                cpu[name].append(used)
                memory[name].append(sample)
                print(
                    f"round {rnd} {name:8} first 200 after {started * 1000:6.0f} ms "
                    f"({used * 1000:5.0f} CPU ms), "
                    f"{sample[2]} processes, PSS {sample[1]:6.1f} MiB, RSS {sample[0]:6.1f} MiB",
                    flush=True,
                )
    print(
        f"\n{WORKERS} workers, heavy app, {f'on {args.cpus} CPU(s), ' if args.cpus else ''}"
        f"median of {args.rounds} rounds; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'server':8} {'start ms':>9} {'x uvicorn':>10} {'CPU ms':>7} {'x uvicorn':>10} "
        f"{'procs':>6} {'PSS MiB':>8} {'x uvicorn':>10} {'RSS MiB':>8}"
    )
    done = [n for n in names if starts[n]]
    ref_start = median(starts["uvicorn"]) if "uvicorn" in done else None
    ref_pss = median([m[1] for m in memory["uvicorn"]]) if "uvicorn" in done else None
    ref_cpu = median(cpu["uvicorn"]) if "uvicorn" in done else None
    for name in done:
        start = median(starts[name]) * 1000
        used = median(cpu[name])
        cpu_ratio = f"{used / ref_cpu:.2f}" if ref_cpu else "-"
        pss = median([m[1] for m in memory[name]])
        rss = median([m[0] for m in memory[name]])
        start_ratio = f"{start / (ref_start * 1000):.2f}" if ref_start else "-"
        pss_ratio = f"{pss / ref_pss:.2f}" if ref_pss else "-"
        print(
            f"{name:8} {start:9.0f} {start_ratio:>10} {used * 1000:7.0f} {cpu_ratio:>10} "
            f"{memory[name][0][2]:>6} {pss:8.1f} "
            f"{pss_ratio:>10} {rss:8.1f}"
        )
    if "vivace" in done and ref_start:
        ratio = median(starts["vivace"]) / ref_start
        print(f"vivace start-up {ratio:.2f}x uvicorn's (target <= 0.50x)")
    for label, values in imports.items():
        print(f"'import heavy.main' in the {label}: {median(values) * 1000:.0f} ms (median)")
    for name, error in failed.items():
        print(f"{name}: FAILED\n{error}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
