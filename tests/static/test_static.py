"""``app.static`` and ``bp.static`` over real sockets: files, directories, options, names, and a
corpus of paths that try to leave the directory (each must get a 404, never a byte from outside).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import App, Blueprint
from tests.server import helpers
from tests.server.helpers import RawClient, serve

SECRET = b"TOP-SECRET-OUTSIDE"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``public/`` (served) beside ``secret.txt`` and ``private/`` (never served)."""
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "docs").mkdir()
    (public / "empty").mkdir()
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "css" / "site.css").write_text("body {}")
    (public / "docs" / "index.htm").write_text("docs index")
    (public / "docs" / "a b.txt").write_text("spaced")
    (public / "data.unknownext").write_bytes(b"\x00\x01")
    (public / ".well-known").mkdir()
    (public / ".well-known" / "security.txt").write_text("contact")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key.pem").write_bytes(SECRET)
    (public / "inside-link.css").symlink_to(public / "css" / "site.css")
    (public / "outside-link.txt").symlink_to(tmp_path / "secret.txt")
    (public / "outside-dir").symlink_to(tmp_path / "private")
    (public / "dangling").symlink_to(tmp_path / "nothing-here")
    os.mkfifo(public / "fifo")
    return tmp_path


def make_app(tree: Path) -> App:
    app = App("static_app")
    public = tree / "public"
    app.static("/static", public, use_content_range=True)
    app.static(
        "/site/", public, name="site", index=["index.htm", "index.html"], directory_view=True
    )
    app.static("/favicon.css", public / "css" / "site.css", name="favicon")
    app.static("/typed", public, name="typed", content_type="application/x-forced")
    app.static("/strict", public, name="strict", strict_slashes=True, index="index.html")
    app.static("/nocache", public, name="nocache", use_modified_since=False)
    bp = Blueprint("bp", url_prefix="/bp")
    bp.static("/files", public / "css")
    app.blueprint(bp)
    return app


@pytest.fixture
def server(tree: Path) -> Iterator[helpers.Running]:
    with serve(make_app(tree)) as running:
        yield running


def raw(port: int, target: str, method: str = "GET", extra: str = "") -> helpers.Response:
    with RawClient(port) as client:
        client.send(f"{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode("latin-1"))
        return client.read_response(head_only=method == "HEAD")


def test_files_and_their_types(server: helpers.Running) -> None:
    css = raw(server.port, "/static/css/site.css")
    assert css.status == 200 and css.body == b"body {}"
    assert css.header("content-type") == "text/css; charset=utf-8"
    assert (
        raw(server.port, "/static/data.unknownext").header("content-type")
        == "application/octet-stream"
    )
    assert raw(server.port, "/typed/css/site.css").header("content-type") == "application/x-forced"
    assert raw(server.port, "/static/docs/a%20b.txt").body == b"spaced"
    assert raw(server.port, "/static/inside-link.css").body == b"body {}"  # a symlink inside
    assert raw(server.port, "/static/.well-known/security.txt").body == b"contact"
    assert raw(server.port, "/favicon.css").body == b"body {}"
    assert raw(server.port, "/bp/files/site.css").body == b"body {}"
    head = raw(server.port, "/static/css/site.css", "HEAD")
    assert head.status == 200 and head.header("content-length") == "7"
    assert raw(server.port, "/static/css/site.css", "POST", "Content-Length: 0\r\n").status == 405


def test_validators_and_ranges_follow_the_options(server: helpers.Running) -> None:
    etag = raw(server.port, "/static/css/site.css").header("etag")
    assert (
        raw(server.port, "/static/css/site.css", extra=f"If-None-Match: {etag}\r\n").status == 304
    )
    assert (
        raw(server.port, "/nocache/css/site.css", extra=f"If-None-Match: {etag}\r\n").status == 200
    )
    part = raw(server.port, "/static/css/site.css", extra="Range: bytes=0-3\r\n")
    assert part.status == 206 and part.body == b"body"
    # use_content_range=False (Sanic's default): the whole file
    whole = raw(server.port, "/site/css/site.css", extra="Range: bytes=0-3\r\n")
    assert (
        whole.status == 200 and whole.body == b"body {}" and whole.header("accept-ranges") is None
    )


def test_directories_index_listing_and_redirect(server: helpers.Running) -> None:
    assert raw(server.port, "/site/").body == b"<h1>home</h1>"  # second index name
    assert raw(server.port, "/site/docs/").body == b"docs index"  # first index name
    moved = raw(server.port, "/site/docs?x=1")
    assert moved.status == 301 and moved.header("location") == "/site/docs/?x=1"
    listing = raw(server.port, "/site/css/")
    assert listing.status == 200 and b"site.css" in listing.body
    assert listing.header("content-type") == "text/html; charset=utf-8"
    # no index and no directory_view: a directory is not found
    assert raw(server.port, "/static/css/").status == 404
    assert raw(server.port, "/static/").status == 404
    assert raw(server.port, "/strict/").body == b"<h1>home</h1>"
    assert raw(server.port, "/strict").status == 404  # strict_slashes: only the form registered


def test_url_for_static(tree: Path) -> None:
    app = make_app(tree)
    assert app.url_for("static", filename="css/site.css") == "/static/css/site.css"
    assert app.url_for("static", name="static", filename="a b.txt") == "/static/a%20b.txt"
    assert app.url_for("static", name="site", filename="x.css") == "/site/x.css"
    assert app.url_for("static", name="site") == "/site/"
    assert app.url_for("static", name="favicon") == "/favicon.css"
    assert app.url_for("static", name="bp.static", filename="site.css") == "/bp/files/site.css"


def test_static_arguments_are_checked(tree: Path) -> None:
    app = App("checked")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        app.static("/x", tree / "missing")
    with pytest.raises(ValueError, match="pattern"):
        app.static("/x", tree, pattern=r"/?.+\.css")
    with pytest.raises(ValueError, match="directory_handler"):
        app.static("/x", tree, directory_handler=object())
    with pytest.raises(ValueError, match="resource_type='file'"):
        app.static("/x", tree, resource_type="file")
    with pytest.raises(ValueError, match="index"):
        app.static("/x", tree, index="../index.html")
    with pytest.raises(ValueError, match="starting with '/'"):
        app.static("x", tree)
    with pytest.raises(ValueError, match="apply=False"):
        app.static("/x", tree, apply=False)


#: (request target, what it tries) -- every one must be a 404 with nothing of the secrets
TRAVERSAL = [
    "/static/../secret.txt",
    "/static/../../secret.txt",
    "/static/css/../../secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/.%2e/secret.txt",
    "/static/%2e./secret.txt",
    "/static/%252e%252e/secret.txt",
    "/static/%252e%252e%252fsecret.txt",
    "/static/..%252fsecret.txt",
    "/static/%25252e%25252e/secret.txt",
    "/static/..\\secret.txt",
    "/static/..%5csecret.txt",
    "/static/..%5Csecret.txt",
    "/static/%5c..%5csecret.txt",
    "/static/css%5c..%5c..%5csecret.txt",
    "/static/%c0%ae%c0%ae/secret.txt",
    "/static/%c0%ae%c0%ae%c0%afsecret.txt",
    "/static/..%c0%afsecret.txt",
    "/static/css.css%00.txt",
    "/static/../secret.txt%00.css",
    "/static/%00../secret.txt",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/%2Fetc/passwd",
    "/static/" + str(Path("/etc/passwd")).lstrip("/"),
    "/static/outside-link.txt",
    "/static/outside-dir/key.pem",
    "/static/outside-dir/",
    "/static/dangling",
    "/static/fifo",
    "/static/css/./../../secret.txt",
    "/static/./../secret.txt",
    "/static/...",
    "/static/....//secret.txt",
    "/static/%0a../secret.txt",
    "/static/..;/secret.txt",
    "/site/../secret.txt",
    "/site/outside-dir/",
    "/site/%2e%2e/",
    "/bp/files/../../secret.txt",
    "/bp/files/%2e%2e/%2e%2e/secret.txt",
    "/static/..%2f..%2fprivate%2fkey.pem",
    "/static/%u002e%u002e/secret.txt",
    "/static/..%u2215secret.txt",
]


def test_the_traversal_corpus_gets_404(server: helpers.Running, tree: Path) -> None:
    assert len(TRAVERSAL) >= 30
    for target in TRAVERSAL:
        answer = raw(server.port, target)
        assert answer.status in (400, 404), (target, answer.status)
        assert SECRET not in answer.body, target
        assert b"root:" not in answer.body, target
    # the same through HEAD, with a dangerous file that exists outside the root
    for target in ("/static/../secret.txt", "/static/outside-link.txt"):
        assert raw(server.port, target, "HEAD").status == 404


def test_raw_bytes_the_parser_refuses(server: helpers.Running) -> None:
    """A NUL or a space in the request line itself never reaches the app: 400."""
    for target in ("/static/\x00../secret.txt", "/static/.. /secret.txt"):
        answer = raw(server.port, target)
        assert answer.status == 400 and SECRET not in answer.body


def test_a_single_file_registered_through_a_symlink_is_served(tree: Path) -> None:
    app = App("single")
    link = tree / "public" / "outside-link.txt"
    app.static("/one", link)  # registering a file: its target is what is served, by intent
    with serve(app) as running:
        assert raw(running.port, "/one").body == SECRET
