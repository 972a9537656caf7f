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

Prints medians and the ratios to uvicorn, against issue 12's target: start-up <= 0.5x uvicorn's.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers")
    args = parser.parse_args()
    names = [n for n in SERVERS if n in args.only.split(",")]
    argv = commands()
    compile_sources()
    load = os.getloadavg()
    starts: dict[str, list[float]] = {n: [] for n in names}
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
                    lambda port, name=name: [a.replace("{port}", str(port)) for a in argv[name]],
                    cwd=directory,
                    pythonpath=(directory,),
                    log=log,
                )
                try:
                    try:
                        started = server.wait_first_200(limit=30)
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
                memory[name].append(sample)
                print(
                    f"round {rnd} {name:8} first 200 after {started * 1000:6.0f} ms, "
                    f"{sample[2]} processes, PSS {sample[1]:6.1f} MiB, RSS {sample[0]:6.1f} MiB",
                    flush=True,
                )
    print(
        f"\n{WORKERS} workers, heavy app, median of {args.rounds} rounds; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'server':8} {'start ms':>9} {'x uvicorn':>10} {'procs':>6} {'PSS MiB':>8} "
        f"{'x uvicorn':>10} {'RSS MiB':>8}"
    )
    done = [n for n in names if starts[n]]
    ref_start = median(starts["uvicorn"]) if "uvicorn" in done else None
    ref_pss = median([m[1] for m in memory["uvicorn"]]) if "uvicorn" in done else None
    for name in done:
        start = median(starts[name]) * 1000
        pss = median([m[1] for m in memory[name]])
        rss = median([m[0] for m in memory[name]])
        start_ratio = f"{start / (ref_start * 1000):.2f}" if ref_start else "-"
        pss_ratio = f"{pss / ref_pss:.2f}" if ref_pss else "-"
        print(
            f"{name:8} {start:9.0f} {start_ratio:>10} {memory[name][0][2]:>6} {pss:8.1f} "
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
