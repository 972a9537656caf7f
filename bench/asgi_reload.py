"""Save-to-new-response latency of a heavy FastAPI app (issue 12, 6b): vivace ``--reload`` against
``uvicorn --reload`` and ``granian --reload``.

    python bench/asgi_reload.py [--saves 10] [--pause 0.2 0.5] [--only vivace,uvicorn,granian]

Each server runs its reloader on 127.0.0.1 over its own copy of ``bench/apps/heavy`` (FastAPI,
pydantic, SQLAlchemy ORM on SQLite, ~38 routes; ``import heavy.main`` takes about 0.4-0.5 s here).
A round edits ``heavy/routers/health.py`` of every server (shuffled order, random pause), changing
the ``VERSION`` that ``GET /`` answers, and polls ``GET /`` every 5 ms, each poll on a new
connection, until the new version answers (``reload.Contestant``). Latency = end of the write to
that response; every refused, reset or non-200 poll meanwhile is a failed poll.

vivace runs from ``bench/.peers/vivace``, uvicorn and granian from ``bench/.peers/asgi``
(``asgi_peers.py``). Prints median / p90 / max, failed polls and the ratio to uvicorn, against
the targets of issue 12: vivace median <= 100 ms and <= 0.15x uvicorn's, 0 failed polls.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from asgi_peers import (
    bin_of,
    command,
    compile_sources,
    copy_heavy,
    heavy_import_seconds,
    median,
    peers_python,
    percentile,
    vivace_asgi_python,
)
from reload import POLL, Contestant
from startup import free_port

TARGET = "heavy.main:app"
SERVERS = ["vivace", "uvicorn", "granian"]


def commands() -> dict[str, list[str]]:
    vivace = str(vivace_asgi_python())
    python = peers_python()
    templates = {
        "vivace": "{vivace} -m runtime {target} -p {port} --reload --no-motd",
        "uvicorn": "{python} -m uvicorn {target} --port {port} --reload --log-level warning",
        "granian": "{granian} --interface asgi --port {port} --reload --log-level warning {target}",
    }
    values = {"vivace": vivace, "python": python, "granian": bin_of(python, "granian")}
    return {name: command(t, target=TARGET, **values) for name, t in templates.items()}


@dataclass
class HeavyContestant(Contestant):
    """``reload.Contestant`` on a copy of the heavy app, with any command line."""

    argv: list[str] = field(default_factory=list)  # "{port}" stands for the port

    def command(self) -> list[str]:
        return [a.replace("{port}", str(self.port)) for a in self.argv]

    @property
    def source(self) -> Path:
        return self.workdir / "heavy" / "routers" / "health.py"

    def start(self) -> None:
        copy_heavy(self.workdir)
        self.port = free_port()
        # The log lives outside the watched directory.
        self.log = self.workdir.parent / f"{self.name}.log"
        env = dict(os.environ, PYTHONPATH=str(self.workdir), PYTHONUNBUFFERED="1", NO_COLOR="1")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_for("0", 60)
        except SystemExit as exc:
            raise SystemExit(f"{exc}\n$ {' '.join(self.command())}\n{self.log_tail()}") from None
        self.reasons.clear()  # refusals while it was starting up do not count

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""

    def save_and_measure(self) -> None:
        self.version += 1
        text = re.sub(r'VERSION = ".*"', f'VERSION = "{self.version}"', self.source.read_text())
        with self.source.open("w") as f:
            f.write(text)
        saved = time.monotonic()
        try:
            seen, failures = self._wait_for(str(self.version), 30)
        except SystemExit as exc:
            raise SystemExit(f"{exc}\n{self.log_tail()}") from None
        self.latencies.append(seen - saved)
        self.failures += failures

    def stop(self) -> None:
        super().stop()
        if self.proc is not None:
            try:  # a reloader's children may outlive it: end the whole session
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def report(contestants: list[HeavyContestant], saves: int) -> None:
    ms = {c.name: [x * 1000 for x in c.latencies] for c in contestants}
    uvicorn = median(ms["uvicorn"]) if ms.get("uvicorn") else None
    print(f"\nsave -> new response, {saves} saves each, polling every {POLL * 1000:.0f} ms")
    print(f"{'server':10} {'median':>8} {'p90':>8} {'max':>8} {'failed':>7} {'x uvicorn':>10}")
    for c in contestants:
        values = ms[c.name]
        med = median(values)
        ratio = f"{med / uvicorn:.2f}" if uvicorn else "-"
        print(
            f"{c.name:10} {med:8.1f} {percentile(values, 0.9):8.1f} {max(values):8.1f} "
            f"{c.failures:>7} {ratio:>10}"
        )
    if "vivace" in ms:
        med = median(ms["vivace"])
        ours = next(c for c in contestants if c.name == "vivace")
        verdict = [f"median {med:.0f} ms {'<=' if med <= 100 else '>'} 100 ms"]
        if uvicorn:
            verdict.append(
                f"{med / uvicorn:.2f}x uvicorn ({'<=' if med / uvicorn <= 0.15 else '>'} 0.15x)"
            )
        verdict.append(f"{ours.failures} failed polls (target 0)")
        print("vivace against the targets: " + ", ".join(verdict))
    for c in contestants:
        if c.reasons:
            kinds = sorted(set(c.reasons))
            print(f"{c.name} failures: {', '.join(kinds[:3])}{' ...' if len(kinds) > 3 else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--pause", type=float, nargs=2, default=(0.2, 0.5), metavar=("MIN", "MAX"))
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    names = [n for n in SERVERS if n in args.only.split(",")]
    rng = random.Random(args.seed)
    argv = commands()
    compile_sources()
    base = Path(tempfile.mkdtemp(prefix="vivace-asgi-reload-"))
    contestants = []
    for name in names:
        (base / name).mkdir()
        contestants.append(HeavyContestant(name, base / name, argv=argv[name]))
    load = os.getloadavg()
    copy_heavy(base / "import")
    imports = [heavy_import_seconds(peers_python(), base / "import") for _ in range(3)]
    try:
        for c in contestants:
            c.start()
        for _ in range(args.saves):
            rng.shuffle(contestants)
            for c in contestants:
                time.sleep(rng.uniform(*args.pause))
                c.save_and_measure()
    finally:
        for c in contestants:
            c.stop()
    print(
        f"\nload average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}; 'import heavy.main' alone: "
        f"{median(imports) * 1000:.0f} ms (median of 3, fresh interpreter)"
    )
    report(sorted(contestants, key=lambda c: names.index(c.name)), args.saves)
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
