"""``vivace --simple DIR``: files, index, listing, redirects, caching, no way out of the root."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from runtime.app import App
from runtime.loader import AppRef, load_app
from runtime.simple import create_simple_app, resolve
from runtime.testing import AsyncTestClient
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """``tmp_path/site`` with files, a sub-directory without index, and a secret next to it."""
    root = tmp_path / "site"
    (root / "docs" / "deeper").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "style.css").write_text("body {}")
    (root / "data.bin").write_bytes(b"\x00\x01\x02")
    (root / "docs" / "a b.txt").write_text("spaced")
    (root / "docs" / "<b>.txt").write_text("angle")
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("outside")
    return root


@pytest.fixture
def app(site: Path) -> Iterator[App]:
    made = create_simple_app(site)
    yield made
    App._registry.pop(made.name, None)


# --- resolve: the safety rules, without a server -------------------------------------------------


def test_resolve_inside(site: Path) -> None:
    root = site.resolve()
    assert resolve(root, "/") == root
    assert resolve(root, "/style.css") == root / "style.css"
    assert resolve(root, "/docs/") == root / "docs"
    assert resolve(root, "//docs/./deeper") == root / "docs" / "deeper"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/..",
        "/docs/..",
        "/.env",
        "/docs/\\..\\..\\secret.txt",
        "/style.css\x00.txt",
        "/missing.txt",
    ],
)
def test_resolve_refuses(site: Path, path: str) -> None:
    assert resolve(site.resolve(), path) is None


def test_symlinks_must_stay_inside(site: Path, tmp_path: Path) -> None:
    (site / "out").symlink_to(tmp_path / "secret.txt")
    (site / "in").symlink_to(site / "style.css")
    root = site.resolve()
    assert resolve(root, "/out") is None
    assert resolve(root, "/in") == root / "style.css"


def test_not_a_directory(tmp_path: Path) -> None:
    from runtime.exceptions import LoadError

    with pytest.raises(LoadError, match="needs a directory"):
        create_simple_app(tmp_path / "nope")


def test_load_app_builds_it(site: Path) -> None:
    made = load_app(AppRef(simple_dir=str(site)))
    try:
        assert made.ctx.simple_root == site.resolve()
    finally:
        App._registry.pop(made.name, None)


# --- through the app -----------------------------------------------------------------------------


async def test_index_and_files(app: App) -> None:
    async with AsyncTestClient(app) as client:
        home = await client.get("/")
        assert home.status_code == 200 and home.text == "<h1>home</h1>"
        assert home.headers["content-type"] == "text/html; charset=utf-8"
        css = await client.get("/style.css")
        assert css.text == "body {}" and css.headers["content-type"] == "text/css; charset=utf-8"
        data = await client.get("/data.bin")
        assert data.content == b"\x00\x01\x02"
        assert data.headers["content-type"] == "application/octet-stream"
        assert (await client.get("/docs/a%20b.txt")).text == "spaced"


async def test_listing_escapes_and_quotes_names(app: App) -> None:
    async with AsyncTestClient(app) as client:
        page = await client.get("/docs/")
    assert page.status_code == 200
    assert "Index of /docs/" in page.text
    assert '<a href="a%20b.txt">a b.txt</a>' in page.text
    assert '<a href="%3Cb%3E.txt">&lt;b&gt;.txt</a>' in page.text
    assert '<a href="deeper/">deeper/</a>' in page.text
    assert '<a href="../">../</a>' in page.text
    assert page.text.index("deeper/") < page.text.index("a b.txt")  # directories first


async def test_root_listing_hides_dotfiles(site: Path) -> None:
    (site / "index.html").unlink()
    made = create_simple_app(site)
    try:
        async with AsyncTestClient(made) as client:
            page = await client.get("/")
        assert "style.css" in page.text and ".env" not in page.text and "../" not in page.text
    finally:
        App._registry.pop(made.name, None)


async def test_directory_without_slash_redirects(app: App) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/docs?x=1")
    assert response.status_code == 301
    assert response.headers["location"] == "/docs/?x=1"


@pytest.mark.parametrize(
    "path", ["/%2e%2e/secret.txt", "/docs/%2e%2e/%2e%2e/secret.txt", "/.env", "/nope", "/%00"]
)
async def test_refused_paths_are_404(app: App, path: str) -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert "outside" not in response.text and "SECRET" not in response.text


async def test_methods_head_and_conditional_get(app: App, site: Path) -> None:
    async with AsyncTestClient(app) as client:
        assert (await client.post("/style.css")).status_code == 405
        head = await client.head("/style.css")
        assert head.status_code == 200 and head.content == b""
        last_modified = head.headers["last-modified"]
        cached = await client.get("/style.css", headers={"If-Modified-Since": last_modified})
        assert cached.status_code == 304 and cached.content == b""
        older = format_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc), usegmt=True)
        fresh = await client.get("/style.css", headers={"If-Modified-Since": older})
        assert fresh.status_code == 200
        bad = await client.get("/style.css", headers={"If-Modified-Since": "yesterday"})
        assert bad.status_code == 200


# --- a real server: raw request targets httpx would normalise ------------------------------------


def _raw_get(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--single-process"], ["-w", "1"]])
def test_served_directory_over_a_socket(site: Path, mode: list[str]) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", "./site", *mode, "-p", str(port)],
        cwd=site.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)  # polling the socket is the readiness signal from outside
        assert home.text == "<h1>home</h1>"
        for target in ("/../secret.txt", "/docs/../../secret.txt", "/%2e%2e/secret.txt"):
            answer = _raw_get(port, target)
            assert answer.startswith(b"HTTP/1.1 404") or answer.startswith(b"HTTP/1.1 400")
            assert b"outside" not in answer
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
