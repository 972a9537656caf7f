"""A 100 MiB file served by a real vivace process never passes through its memory: the serving
process's peak RSS (``VmHWM``, so a buffer freed afterwards still counts) ends less than 20 MiB
above its RSS before three downloads, one of them read slowly."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.frameworks.servers import start

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent
SIZE = 100 * 1024 * 1024
APP = """
from pathlib import Path
from runtime import App
from runtime.response import file, file_stream

app = App("bigfile")
BIG = Path(__file__).parent / "big.bin"
app.static("/static", Path(__file__).parent)

@app.get("/")
async def index(request):
    return await file(BIG)

@app.get("/stream")
async def streamed(request):
    return await file_stream(BIG)
"""


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far (Linux ``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def download(port: int, path: str, *, slow: bool = False) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        received = 0
        deadline = time.monotonic() + 60
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
            if slow and received < 8 * 1024 * 1024:
                time.sleep(0.002)  # the server waits on a full socket, not in memory
            assert time.monotonic() < deadline, "download too slow"
        return received


def serve_big_file(tmp_path: Path) -> Any:
    """A single-process vivace serving ``APP`` and a sparse 100 MiB ``big.bin``."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "bigapp.py").write_text(APP)
    with (app_dir / "big.bin").open("wb") as out:  # sparse: no 100 MiB of disk
        out.truncate(SIZE)
    return start(
        "vivace",
        "bigapp:app",
        tmp_path / "trace",
        args=("--single-process",),
        env={"PYTHONPATH": os.pathsep.join((str(app_dir), str(ROOT)))},
        ready_path="/static/bigapp.py",
    )


def test_a_large_file_does_not_grow_the_worker(tmp_path: Path) -> None:
    server = serve_big_file(tmp_path)
    try:
        process = psutil.Process(server.proc.pid)
        assert download(server.port, "/static/bigapp.py") > 0  # warm: the file path has run
        before = process.memory_info().rss
        for path, slow in (("/", False), ("/stream", True), ("/static/big.bin", False)):
            head_and_body = download(server.port, path, slow=slow)
            assert head_and_body > SIZE, path
        grown = peak_rss(server.proc.pid) - before
    finally:
        server.stop_cleanly()
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"


def test_a_client_that_stops_reading_holds_up_no_other_download(tmp_path: Path) -> None:
    """Files are sent by one sender thread per worker, one body at a time while its client takes
    it; a client that stops reading is handed back to the event loop within milliseconds, so
    other downloads go on (``runtime.server.respond``, rule 5)."""
    server = serve_big_file(tmp_path)
    stalled: list[socket.socket] = []
    try:
        for _ in range(3):  # three clients that ask for 100 MiB and read nothing
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            stalled.append(sock)
        time.sleep(0.3)
        started = time.monotonic()
        assert download(server.port, "/static/big.bin") > SIZE
        took = time.monotonic() - started
        assert took < 20, f"a download beside three stalled ones took {took:.1f} s"
        for sock in stalled:  # the stalled ones still get their bytes once they read
            sock.settimeout(10)
            assert len(sock.recv(65536)) > 0
    finally:
        for sock in stalled:
            sock.close()
        server.stop_cleanly()
