"""Memory with 2 workers: RSS and PSS summed over every server process, vivace vs Sanic 23.12.

    python bench/memory.py [--rounds 3]

Each server is started, warmed with 200 requests, and measured (``psutil`` ``memory_full_info``
of the main process and all its descendants: workers, fork server, resource trackers). PSS counts
shared pages once, split between the processes that share them, so it is the fair total; RSS
counts shared pages in every process. Prints medians in MiB and the vivace/Sanic ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from startup import Running, ensure_sanic, get, write_apps

MIB = 1024 * 1024


def measure(server: Running) -> tuple[float, float, int]:
    rss = pss = 0
    processes = server.tree()
    for proc in processes:
        info = proc.memory_full_info()
        rss += info.rss
        pss += info.pss
    return rss / MIB, pss / MIB, len(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    peers = ["vivace"] + (["sanic"] if ensure_sanic() else [])
    results: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_apps(directory)
        for _ in range(args.rounds):
            for peer in peers:
                server = Running(peer, 2, directory)
                try:
                    server.wait_first_200()
                    for _ in range(200):
                        get(server.port)
                    time.sleep(0.5)  # let late imports and the fork server settle
                    results.setdefault(peer, []).append(measure(server))
                finally:
                    server.stop()
    print(f"memory with 2 workers, median of {args.rounds} rounds (MiB, summed over all processes)")
    print(f"{'peer':>8} {'procs':>6} {'RSS':>8} {'PSS':>8}")
    for peer, rows in results.items():
        rss = statistics.median(r for r, _, _ in rows)
        pss = statistics.median(p for _, p, _ in rows)
        print(f"{peer:>8} {rows[0][2]:>6} {rss:>8.1f} {pss:>8.1f}")
    if "sanic" in results:
        ours = results["vivace"]
        theirs = results["sanic"]
        rss_ratio = statistics.median(r for r, _, _ in ours) / statistics.median(
            r for r, _, _ in theirs
        )
        pss_ratio = statistics.median(p for _, p, _ in ours) / statistics.median(
            p for _, p, _ in theirs
        )
        print(f"ratio vivace/sanic: RSS {rss_ratio:.2f}  PSS {pss_ratio:.2f}")


if __name__ == "__main__":
    main()
