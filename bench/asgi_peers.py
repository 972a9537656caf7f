"""What the ASGI benchmarks share (issue 12): the peers' virtualenv, vivace's, the apps, a server.

* ``bench/.peers/asgi``: uvicorn (with uvloop, httptools, watchfiles), granian (with its reloader),
  hypercorn, and the apps' packages; created on first use.
* ``bench/.peers/vivace``: the virtualenv of ``startup.vivace_python()`` (this tree editable), with
  the apps' packages added on first use; ``BENCH_VIVACE_PYTHON=/path/to/python`` picks another.
  Both are virtualenvs of the same base interpreter, so no side pays this machine's sandbox
  ``.pth`` (see ``startup.py``).
* ``bench/apps``: ``heavy`` (the realistic FastAPI service) and ``fastapi_hello``; the raw ASGI
  hello is ``throughput.apps:bare`` (the bare callable of the throughput benchmark).

``Server`` is ``startup.Running`` for any command line: launch, first 200 on ``GET /``, stop with
SIGINT and check that the whole process tree is gone.
"""

from __future__ import annotations

import compileall
import functools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from startup import Running, free_port, vivace_python, vivace_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APPS = HERE / "apps"
HEAVY = APPS / "heavy"
PEERS_VENV = HERE / ".peers" / "asgi"

# Keep in step with the ``bench`` extra of pyproject.toml.
APP_PACKAGES = [
    "fastapi>=0.115",
    "pydantic[email]>=2.7",
    "sqlalchemy>=2.0",
    "python-multipart>=0.0.9",
    "httpx>=0.27",
    "psutil>=5.9",
]
SERVER_PACKAGES = ["uvicorn[standard]>=0.29", "granian[reload]>=2.0", "hypercorn>=0.17"]
APP_MODULES = "fastapi, sqlalchemy.orm, email_validator, multipart, httpx, psutil"


def _pip_install(python: Path, packages: Sequence[str]) -> None:
    print(f"installing into {python.parent.parent}: {' '.join(packages)} ...", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True, timeout=900)


def peers_python() -> Path:
    """``bench/.peers/asgi/bin/python``: uvicorn, granian, hypercorn and the apps' packages."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        PEERS_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=120)
        _pip_install(python, SERVER_PACKAGES + APP_PACKAGES)
    return python


@functools.cache
def vivace_asgi_python() -> Path:
    """vivace's virtualenv (``startup.vivace_python()``) with the apps' packages in it, or the
    interpreter named by ``BENCH_VIVACE_PYTHON`` (e.g. a virtualenv outside this tree)."""
    python = Path(vivace_python())
    probe = subprocess.run([str(python), "-c", f"import {APP_MODULES}"], capture_output=True)
    if probe.returncode != 0:
        _pip_install(python, APP_PACKAGES)
    return python


def bin_of(python: Path, script: str) -> str:
    """A console script of the virtualenv that ``python`` belongs to."""
    return str(python.parent / script)


def command(template: str, port: str | int = "{port}", **values: object) -> list[str]:
    """``template`` split on spaces, then each word formatted: values may contain spaces.

    ``port`` stays ``{port}`` unless given, for ``Server``'s ``argv`` to fill in.
    """
    return [word.format(port=port, **values) for word in template.split()]


def compile_sources(*directories: Path) -> None:
    """Byte-compile vivace and the given trees, as ``startup.py`` does: this machine sets
    ``PYTHONDONTWRITEBYTECODE``, so without it every start would recompile them, a cost that
    no user pays after the first start (pip compiled the peers' site-packages)."""
    for directory in (vivace_root() / "runtime", vivace_root() / "repl", *directories):
        compileall.compile_dir(directory, quiet=1)


def copy_heavy(destination: Path) -> Path:
    """Copy ``bench/apps/heavy`` into ``destination/heavy``, byte-compiled; returns the copy.

    The reload benchmark edits the copy, never the tree.
    """
    target = destination / "heavy"
    shutil.copytree(HEAVY, target, ignore=shutil.ignore_patterns("__pycache__"))
    compile_sources(target)
    return target


def heavy_import_seconds(python: Path, directory: Path) -> float:
    """How long ``import heavy.main`` takes under ``python`` (in a fresh interpreter)."""
    code = "import time; t = time.perf_counter(); import heavy.main; print(time.perf_counter() - t)"
    out = subprocess.run(
        [str(python), "-c", code],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout.strip())


class Server(Running):
    """``startup.Running`` for any command: ``argv(port)`` is launched in ``cwd`` with
    ``pythonpath`` on ``PYTHONPATH``; output goes to ``log`` (or nowhere)."""

    def __init__(
        self,
        argv: Callable[[int], list[str]],
        cwd: Path,
        pythonpath: Sequence[Path] = (),
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath),
            NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(argv(self.port), cwd=cwd, env=env, stdout=out, stderr=out)
        if log is not None:
            out.close()  # type: ignore[union-attr]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
