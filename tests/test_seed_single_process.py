"""lifecycle.md §7.2 and §10 for real: the seed's priority example in `vivace --single-process`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from tests.support import free_port

SEED_APP = textwrap.dedent(
    """
    from runtime import App, Blueprint, text

    app, bp = App("Ordering"), Blueprint("ordering_bp")
    if ATTACH_FIRST:
        app.blueprint(bp)

    def tracer(label, event):
        async def listener(app):
            print(f"{event}:{label}", flush=True)
        listener.__name__ = label
        return listener

    for EVENT in ("before_server_start", "before_server_stop"):
        on_app = getattr(app, EVENT)
        on_bp = getattr(bp, EVENT)
        on_app(tracer("first", EVENT))
        app.listener(EVENT, priority=2)(tracer("second", EVENT))
        on_app(priority=3)(tracer("third", EVENT))
        on_bp(tracer("bp_first", EVENT))
        bp.listener(EVENT, priority=2)(tracer("bp_second", EVENT))
        on_bp(priority=3)(tracer("bp_third", EVENT))
        on_app(tracer("fourth", EVENT))

    if not ATTACH_FIRST:
        app.blueprint(bp)

    @app.after_server_start
    def serving(app):
        print("after_server_start", flush=True)

    @app.after_server_stop
    def done(app):
        print("after_server_stop", flush=True)

    @app.main_process_start
    def main_only(app):
        print("main_process_start", flush=True)  # never in single-process mode

    @app.get("/")
    async def index(request):
        return text("ok")
    """
)

VIVACE = [sys.executable, "-m", "runtime"]
FORWARD = ["third", "bp_third", "second", "bp_second", "first", "fourth", "bp_first"]


def _run_seed(tmp_path: Path, attach_first: bool) -> list[str]:
    (tmp_path / "seed_ordering.py").write_text(
        f"ATTACH_FIRST = {attach_first}\n" + SEED_APP, encoding="utf-8"
    )
    port = free_port()
    proc = subprocess.Popen(
        [*VIVACE, "seed_ordering:app", "--single-process", "-p", str(port), "--no-motd"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the server did not answer in time"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0, out.decode()
    return [
        line.strip()
        for line in out.decode().splitlines()
        if line.strip().startswith(("before_server", "after_server", "main_process"))
    ]


def test_priority_example_runs_in_order_and_exact_reverse_at_teardown(tmp_path: Path) -> None:
    for attach_first in (False, True):
        lines = _run_seed(tmp_path, attach_first)
        assert lines == [
            *(f"before_server_start:{label}" for label in FORWARD),
            "after_server_start",
            *(f"before_server_stop:{label}" for label in reversed(FORWARD)),
            "after_server_stop",
        ], f"attach_first={attach_first}"
