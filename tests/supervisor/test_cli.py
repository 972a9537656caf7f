"""The real command line and app.run() reach the supervisor: flags in every worker, unix sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from tests.supervisor.conftest import ROOT


def _run_until(
    cmd: list[str], cwd: Path, marker: str, count: int
) -> tuple[subprocess.Popen[str], list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", SUPTEST="")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen = 0
    lines = []
    for line in proc.stdout:
        lines.append(line)
        seen += marker in line
        if seen == count:
            return proc, lines
    proc.wait(5)
    raise AssertionError("".join(lines))


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def test_cli_flags_reach_every_worker_over_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "app.sock"
    cmd = [
        sys.executable,
        "-m",
        "runtime",
        "tests.supervisor.apps:app",
        "-u",
        str(sock),
        "-w",
        "2",
        "--debug",
    ]
    proc, _ = _run_until(cmd, ROOT, "Starting worker", 2)
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=5) as client:
            bodies = [client.get("http://x/pid").json() for _ in range(10)]
    finally:
        code, out = _finish(proc)
    assert all(body["debug"] is True for body in bodies)
    assert code == 0, out
    assert not sock.exists()  # the socket file is removed at shutdown


def test_app_run_script_with_two_workers(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            from runtime import App, text

            app = App("Script")
            print("module level", os.environ.get("VIVACE_WORKER_NAME", "main"), flush=True)

            @app.get("/")
            async def index(request):
                return text(request.app.m.name)

            if __name__ == "__main__":
                app.run(port=0, workers=2, motd=True)
            """
        )
    )
    proc, lines = _run_until([sys.executable, str(script)], tmp_path, "Starting worker", 2)
    code, rest = _finish(proc)
    out = "".join(lines) + rest
    assert code == 0, out
    # module-level code runs in the main process and once more in each worker
    assert out.count("module level main") == 1, out
    assert "Vivace-Server-0-0 | module level Vivace-Server-0-0" in out
    assert "Vivace-Server-1-0 | module level Vivace-Server-1-0" in out
