"""The Sanic-style examples of ``examples/`` (static files, file responses, class-based views,
virtual hosts), written as Sanic's documentation and examples show them with only the import
lines changed, served by real vivace processes over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.frameworks.servers import Server, start

ROOT = Path(__file__).resolve().parent.parent.parent
SITE = ROOT / "examples" / "static_site"

pytestmark = pytest.mark.slow


@pytest.fixture
def serve_example(tmp_path: Path) -> Iterator[object]:
    started: list[Server] = []

    def run(target: str, *args: str) -> Server:
        server = start("vivace", target, tmp_path, args=args or ("--single-process",))
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop_cleanly()


def test_static_files_example(serve_example: object) -> None:
    server = serve_example("examples.static_files:app")  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        index = client.get("/")
        assert index.status_code == 200 and index.content == (SITE / "index.html").read_bytes()
        css = client.get("/static/css/site.css")
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        assert client.get("/static/css/site.css", headers={"Range": "bytes=0-3"}).content == b"body"
        assert (
            client.get(
                "/static/css/site.css", headers={"If-None-Match": css.headers["etag"]}
            ).status_code
            == 304
        )
        assert "site.css" in client.get("/browse/css/").text
        assert client.get("/static/../static_files.py").status_code == 404
        assert client.get("/where").text == "/static/css/site.css"


def test_file_responses_example(serve_example: object) -> None:
    server = serve_example("examples.file_responses:app")  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/file").content == (SITE / "index.html").read_bytes()
        download = client.get("/download")
        assert download.headers["content-disposition"] == 'attachment; filename="site.css"'
        assert download.headers["cache-control"] == "public, max-age=3600"
        streamed = client.get("/stream")
        assert streamed.headers["content-type"] == "text/html"
        assert streamed.content == (SITE / "index.html").read_bytes()
        modified = client.get("/bp/validated").headers["last-modified"]
        assert (
            client.get("/bp/validated", headers={"If-Modified-Since": modified}).status_code == 304
        )


def test_class_views_example(serve_example: object) -> None:
    server = serve_example("examples.class_views:app", "-w", "1")  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/").text == "I am get method"
        assert client.post("/").text == "I am post method"
        assert client.delete("/").text == "I am delete method"
        assert client.put("/async").text == "I am async put method"
        assert client.get("/hello/Ada").text == "Hello, Ada"
        refused = client.patch("/async")
        assert refused.status_code == 405
        assert set(refused.headers["allow"].replace(" ", "").split(",")) == {
            "GET",
            "HEAD",
            "POST",
            "PUT",
        }


def test_vhosts_example(serve_example: object) -> None:
    server = serve_example("examples.vhosts:app")  # type: ignore[operator]
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for host, path, expected in (
            ("example.com", "/", "Some defaults"),
            ("therestofyourdomains.com", "/", "Some defaults"),
            ("sub.example.com", "/", "42"),
            ("bp.example.com", "/question", "What is the meaning of life?"),
            ("bp.example.com", "/answer", "42"),
        ):
            answer = client.get(path, headers={"Host": host})
            assert answer.status_code == 200 and answer.text == expected, (host, path)
        assert client.get("/", headers={"Host": "elsewhere.net"}).status_code == 404
        assert client.get("/answer", headers={"Host": "example.com"}).status_code == 404
