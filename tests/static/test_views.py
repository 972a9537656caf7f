"""Class-based views over real sockets: per-method handlers, ``as_view`` arguments, decorators,
app and blueprint registration, 405 with ``Allow``, HEAD, streamed request bodies."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from runtime import App, Blueprint, HTTPMethodView, json, text
from runtime.request import Request
from runtime.views import stream
from tests.server.helpers import RawClient, serve


def tag(label: str) -> Callable[..., Any]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
            response = view(request, *args, **kwargs)
            if inspect.isawaitable(response):  # a sync method returns the response itself
                response = await response
            response.headers.add("x-decorated", label)
            return response

        return wrapped

    return decorator


class ItemView(HTTPMethodView):
    decorators = [tag("inner"), tag("outer")]

    def __init__(self, prefix: str = "item") -> None:
        self.prefix = prefix

    async def get(self, request: Request, item_id: int) -> Any:
        return text(f"{self.prefix} {item_id}")

    async def put(self, request: Request, item_id: int) -> Any:
        return json({"put": item_id, "body": request.body.decode()})

    def delete(self, request: Request, item_id: int) -> Any:  # a sync method
        return text("deleted", status=202)


class UploadView(HTTPMethodView):
    @stream
    async def post(self, request: Request) -> Any:
        sizes = []
        while (chunk := await request.stream.read()) is not None:
            sizes.append(len(chunk))
        return json({"total": sum(sizes)})


def make_app() -> App:
    app = App("views")
    app.add_route(ItemView.as_view(), "/items/<item_id:int>")
    app.add_route(ItemView.as_view("thing"), "/things/<item_id:int>", name="things")
    app.add_route(UploadView, "/upload")  # the class itself
    bp = Blueprint("bp", url_prefix="/bp")
    bp.add_route(ItemView.as_view(prefix="bp"), "/items/<item_id:int>")
    app.blueprint(bp)

    class Attached(HTTPMethodView, attach=app, uri="/attached"):
        async def get(self, request: Request) -> Any:
            return text("attached")

    class Later(HTTPMethodView):
        async def get(self, request: Request) -> Any:
            return text("later")

    Later.attach(app, "/later", host="example.com")

    return app


def send(port: int, data: bytes) -> Any:
    with RawClient(port) as client:
        client.send(data)
        return client.read_response(head_only=data.startswith(b"HEAD"))


def test_each_method_its_handler() -> None:
    with serve(make_app()) as srv:
        got = send(srv.port, b"GET /items/3 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert got.status == 200 and got.body == b"item 3"
        assert [v for k, v in got.headers if k == "x-decorated"] == ["inner", "outer"]
        put = send(srv.port, b"PUT /items/4 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        assert put.status == 200 and put.body == b'{"put":4,"body":"hi"}'
        deleted = send(srv.port, b"DELETE /items/5 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert deleted.status == 202 and deleted.body == b"deleted"
        head = send(srv.port, b"HEAD /items/3 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert head.status == 200 and head.header("content-length") == "6"
        assert send(srv.port, b"GET /things/1 HTTP/1.1\r\nHost: t\r\n\r\n").body == b"thing 1"
        assert send(srv.port, b"GET /bp/items/1 HTTP/1.1\r\nHost: t\r\n\r\n").body == b"bp 1"
        assert send(srv.port, b"GET /attached HTTP/1.1\r\nHost: t\r\n\r\n").body == b"attached"
        later = b"GET /later HTTP/1.1\r\nHost: example.com\r\n\r\n"
        assert send(srv.port, later).body == b"later"
        assert send(srv.port, b"GET /later HTTP/1.1\r\nHost: t\r\n\r\n").status == 404


def test_other_methods_get_405_listing_the_view_methods() -> None:
    with serve(make_app()) as srv:
        answer = send(srv.port, b"POST /items/3 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert answer.status == 405
        allowed = {m.strip() for m in answer.header("allow").split(",")}
        assert allowed == {"GET", "HEAD", "PUT", "DELETE"}
        upload = send(srv.port, b"GET /upload HTTP/1.1\r\nHost: t\r\n\r\n")
        assert upload.status == 405 and upload.header("allow") == "POST"


def test_a_stream_method_reads_the_body_as_it_comes() -> None:
    with serve(make_app()) as srv, RawClient(srv.port) as client:
        client.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(50):
            client.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
        client.send(b"0\r\n\r\n")
        answer = client.read_response()
        assert answer.status == 200 and answer.body == b'{"total":51200}'


def test_view_names_and_url_for() -> None:
    app = make_app()
    assert app.url_for("ItemView", item_id=7) == "/items/7"
    assert app.url_for("things", item_id=7) == "/things/7"
    assert app.url_for("bp.ItemView", item_id=7) == "/bp/items/7"


def test_a_view_without_methods_is_refused() -> None:
    class Empty(HTTPMethodView):
        pass

    with pytest.raises(TypeError, match="defines no method handler"):
        App("empty").add_route(Empty.as_view(), "/")
    with pytest.raises(TypeError, match="needs uri="):

        class Loose(HTTPMethodView, attach=App("loose")):
            async def get(self, request: Request) -> Any:
                return text("")
