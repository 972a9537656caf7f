"""The router on its own: matching, typed parameters, slashes, 404/405, versions, url_for."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.exceptions import MethodNotAllowed, NotFound, RouteExists
from runtime.routing import Router


def h(*_: Any, **__: Any) -> None:
    return None


def make(*specs: tuple[str, list[str], str], **kw: Any) -> Router:
    router = Router()
    for path, methods, name in specs:
        router.add(path, methods, h, name=name, **kw)
    router.finalize()
    return router


def test_static_routes_and_methods() -> None:
    r = make(("/", ["GET"], "root"), ("/a", ["GET", "POST"], "a"), ("/a", ["PUT"], "a"))
    route, params = r.resolve("/", "GET")
    assert route.name == "root" and params == {}
    assert r.resolve("/a", "POST")[0].methods == frozenset({"GET", "POST"})
    assert r.resolve("/a", "PUT")[0].methods == frozenset({"PUT"})
    with pytest.raises(NotFound):
        r.resolve("/b", "GET")
    with pytest.raises(MethodNotAllowed) as info:
        r.resolve("/a", "DELETE")
    assert info.value.allowed_methods == ("GET", "HEAD", "POST", "PUT")
    assert info.value.headers["Allow"] == "GET, HEAD, POST, PUT"
    assert info.value.method == "DELETE"


def test_head_falls_back_to_get_and_options_is_405() -> None:
    r = make(("/a", ["GET"], "a"), ("/d/<x:int>", ["GET"], "d"), ("/o", ["OPTIONS"], "o"))
    assert r.resolve("/a", "HEAD")[0].name == "a"
    assert r.resolve("/d/1", "HEAD")[0].name == "d"
    with pytest.raises(MethodNotAllowed) as info:
        r.resolve("/a", "OPTIONS")
    assert info.value.allowed_methods == ("GET", "HEAD")
    assert r.resolve("/o", "OPTIONS")[0].name == "o"


@pytest.mark.parametrize(
    ("segment", "text", "value"),
    [
        ("<v>", "hello", "hello"),
        ("<v:str>", "a b", "a b"),
        ("<v:int>", "-42", -42),
        ("<v:float>", "1.5", 1.5),
        ("<v:alpha>", "abcXYZ", "abcXYZ"),
        ("<v:slug>", "my-post-1", "my-post-1"),
        (
            "<v:uuid>",
            "12345678-1234-5678-1234-567812345678",
            uuid.UUID(int=0x12345678123456781234567812345678),
        ),
        ("<v:ymd>", "2024-02-29", date(2024, 2, 29)),
        ("<v:path>", "a/b/c.txt", "a/b/c.txt"),
    ],
)
def test_typed_parameters(segment: str, text: str, value: Any) -> None:
    r = make((f"/x/{segment}", ["GET"], "x"))
    route, params = r.resolve(f"/x/{text}", "GET")
    assert params == {"v": value}
    assert type(params["v"]) is type(value)
    assert route.params == ("v",)


@pytest.mark.parametrize(
    ("segment", "text"),
    [
        ("<v:int>", "1.5"),
        ("<v:int>", "abc"),
        ("<v:float>", "x"),
        ("<v:alpha>", "ab1"),
        ("<v:slug>", "Not-Slug"),
        ("<v:uuid>", "1234"),
        ("<v:ymd>", "2023-02-30"),  # matches the pattern, not a date
        ("<v:ymd>", "2023-13-01"),
    ],
)
def test_typed_parameters_reject(segment: str, text: str) -> None:
    r = make((f"/x/{segment}", ["GET"], "x"))
    with pytest.raises(NotFound):
        r.resolve(f"/x/{text}", "GET")


def test_most_specific_route_wins_regardless_of_order() -> None:
    r = make(
        ("/u/<name>", ["GET"], "by_name"),
        ("/u/<id:int>", ["GET"], "by_id"),
        ("/u/me", ["GET"], "me"),
        ("/u/<id:int>/posts", ["GET"], "posts"),
        ("/u/<rest:path>", ["GET"], "rest"),
    )
    assert r.resolve("/u/me", "GET")[0].name == "me"
    assert r.resolve("/u/7", "GET")[0].name == "by_id"
    assert r.resolve("/u/bob", "GET")[0].name == "by_name"
    assert r.resolve("/u/7/posts", "GET")[0].name == "posts"
    assert r.resolve("/u/7/likes", "GET") == (r.find_route_by_name("rest"), {"rest": "7/likes"})


def test_method_search_continues_past_a_matching_shape() -> None:
    r = make(("/a/new", ["GET"], "new"), ("/a/<id>", ["POST"], "create"))
    assert r.resolve("/a/new", "POST")[0].name == "create"
    with pytest.raises(MethodNotAllowed) as info:
        r.resolve("/a/new", "PUT")
    assert info.value.allowed_methods == ("GET", "HEAD", "POST")


def test_trailing_slash_policy() -> None:
    r = Router()
    r.add("/loose", ["GET"], h, name="loose")
    r.add("/loose-dir/", ["GET"], h, name="loose_dir")
    r.add("/strict", ["GET"], h, name="strict", strict_slashes=True)
    r.add("/strict-dir/", ["GET"], h, name="strict_dir", strict_slashes=True)
    r.add("/d/<x:int>", ["GET"], h, name="d")
    r.add("/sd/<x:int>/", ["GET"], h, name="sd", strict_slashes=True)
    for path in ("/loose", "/loose/", "/loose-dir", "/loose-dir/", "/d/1", "/d/1/"):
        r.resolve(path, "GET")
    r.resolve("/strict", "GET")
    r.resolve("/strict-dir/", "GET")
    r.resolve("/sd/1/", "GET")
    for path in ("/strict/", "/strict-dir", "/sd/1"):
        with pytest.raises(NotFound):
            r.resolve(path, "GET")


def test_strict_forms_can_coexist_but_loose_conflicts() -> None:
    r = Router()
    r.add("/a", ["GET"], h, name="a", strict_slashes=True)
    r.add("/a/", ["GET"], h, name="a_dir", strict_slashes=True)
    assert r.resolve("/a", "GET")[0].name == "a"
    assert r.resolve("/a/", "GET")[0].name == "a_dir"
    with pytest.raises(RouteExists, match=r"GET /a is already handled by <Route .a. GET /a>"):
        r.add("/a/", ["GET"], h, name="other")


def test_duplicates_are_rejected_naming_both() -> None:
    r = Router()
    r.add("/x/<id:int>", ["GET", "POST"], h, name="first")
    with pytest.raises(RouteExists) as info:
        r.add("/x/<pk:int>", ["POST"], h, name="second")
    assert "first" in str(info.value) and "second" in str(info.value)
    r.add("/x/<pk:int>", ["PUT"], h, name="third")  # other method: fine
    with pytest.raises(RouteExists, match="name 'first' is already used"):
        r.add("/y", ["GET"], h, name="first")
    r.add("/s", ["GET"], h, name="s")
    with pytest.raises(RouteExists):
        r.add("/s/", ["GET"], h, name="s2")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a", "must start with '/'"),
        ("/a//b", "empty segment"),
        ("/a/<id:integer>", "Unknown parameter type 'integer'"),
        ("/a/x<id>", "mixes text and a parameter"),
        ("/a/<1x>", "Invalid dynamic segment"),
        ("/a/<id>/<id:int>", "uses parameter 'id' twice"),
        ("/a?b=1", "'?'"),
        ("/a b", "space"),
        ("/a/<_x>", "may not start with '_'"),
    ],
)
def test_bad_paths_say_what_to_fix(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        Router().add(path, ["GET"], h, name="n")


def test_bad_methods_and_names() -> None:
    with pytest.raises(ValueError, match="Invalid HTTP method"):
        Router().add("/a", ["GE T"], h, name="n")
    with pytest.raises(ValueError, match="at least one"):
        Router().add("/a", [], h, name="n")
    with pytest.raises(ValueError, match="non-empty name"):
        Router().add("/a", ["GET"], h, name="")
    assert Router().add("/a", "get", h, name="n").methods == frozenset({"GET"})


def test_versions() -> None:
    r = Router()
    r.add("/items", ["GET"], h, name="v1", version=1)
    r.add("/items", ["GET"], h, name="v2", version="v2")
    r.add("/", ["GET"], h, name="root3", version=3)
    r.add("/items", ["GET"], h, name="api", version=1.1, version_prefix="/api/v")
    assert r.resolve("/v1/items", "GET")[0].name == "v1"
    assert r.resolve("/v2/items", "GET")[0].version == "v2"
    assert r.resolve("/v3", "GET")[0].name == "root3"
    assert r.resolve("/api/v1.1/items", "GET")[0].name == "api"
    assert r.url_for("v1") == "/v1/items"
    with pytest.raises(ValueError, match="Invalid route version"):
        r.add("/x", ["GET"], h, name="bad", version="")


def test_websocket_routes_have_their_own_table() -> None:
    r = Router()
    r.add("/ws", ["GET"], h, name="ws", websocket=True, subprotocols=["chat"])
    r.add("/ws/<room>", ["GET"], h, name="room", websocket=True)
    r.add("/ws", ["GET"], h, name="page")
    route, params = r.resolve_websocket("/ws")
    assert route.websocket and route.subprotocols == ("chat",) and params == {}
    assert r.resolve_websocket("/ws/lobby")[1] == {"room": "lobby"}
    assert r.resolve("/ws", "GET")[0].name == "page"
    with pytest.raises(NotFound, match="No WebSocket route"):
        r.resolve_websocket("/nope")
    assert [x.name for x in r.routes] == ["ws", "room", "page"]


def test_route_attributes() -> None:
    r = Router()
    route = r.add("/s/<a:int>", ["post"], h, name="s", stream=True, blueprint="bp")
    assert route.path == "/s/<a:int>" and route.params == ("a",) and route.stream
    assert route.blueprint == "bp" and route.handler is h and not route.websocket
    route.ctx.x = 1
    route.extra["k"] = "v"
    assert "POST" in repr(route)
    assert r.routes_by_name["s"] is route


def test_url_for() -> None:
    r = make(
        ("/", ["GET"], "root"),
        ("/post/<id:int>", ["GET"], "post"),
        ("/tag/<name>", ["GET"], "tag"),
        ("/files/<p:path>", ["GET"], "files"),
        ("/day/<d:ymd>/", ["GET"], "day"),
        ("/café", ["GET"], "cafe"),
    )
    assert r.url_for("root") == "/"
    assert r.url_for("post", id=5) == "/post/5"
    assert r.url_for("post", id="5", page=2, tag=["a", "b"]) == "/post/5?page=2&tag=a&tag=b"
    assert r.url_for("tag", name="a b?c#") == "/tag/a%20b%3Fc%23"
    assert r.url_for("files", p="a b/c.txt") == "/files/a%20b/c.txt"
    assert r.url_for("day", d=date(2024, 1, 2)) == "/day/2024-01-02/"
    assert r.url_for("cafe") == "/caf%C3%A9"
    assert r.url_for("post", id=1, _anchor="top") == "/post/1#top"
    assert r.url_for("post", id=1, _external=True, _server="example.com:8000") == (
        "http://example.com:8000/post/1"
    )
    assert r.url_for("post", id=1, _server="x.org", _scheme="https") == "https://x.org/post/1"


def test_url_for_errors() -> None:
    r = make(("/post/<id:int>", ["GET"], "post"))
    with pytest.raises(NotFound, match=r"No route named 'nope'.*known names: post"):
        r.url_for("nope")
    with pytest.raises(ValueError, match="needs the route parameter 'id'"):
        r.url_for("post")
    with pytest.raises(ValueError, match="id='x' is not a valid int"):
        r.url_for("post", id="x")
    with pytest.raises(ValueError, match="is not a valid str"):
        make(("/tag/<name>", ["GET"], "tag")).url_for("tag", name="a/b")  # would not route back
    with pytest.raises(ValueError, match="_scheme needs _external"):
        r.url_for("post", id=1, _scheme="https")
    with pytest.raises(ValueError, match="needs _server"):
        r.url_for("post", id=1, _external=True)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1))
def test_url_for_and_resolve_agree(name: str) -> None:
    from urllib.parse import unquote

    r = make(("/tag/<name>", ["GET"], "tag"))
    url = r.url_for("tag", name=name)
    _, params = r.resolve(unquote(url), "GET")
    assert params == {"name": name}


def test_resolve_after_adding_late_routes_sorts_again() -> None:
    r = make(("/a/<x>", ["GET"], "str"))
    r.add("/a/<x:int>", ["GET"], h, name="int")  # added after finalize
    assert r.resolve("/a/3", "GET")[0].name == "int"


def test_several_parameters_and_bad_dates_among_them() -> None:
    r = make(
        ("/p/<year:int>/<day:ymd>/<slug:slug>", ["GET"], "p"),
        ("/p/<year:int>/<day>/<slug>", ["GET"], "fallback"),
    )
    route, params = r.resolve("/p/2024/2024-02-29/hello-x", "GET")
    assert route.name == "p" and route.is_dynamic
    assert params == {"year": 2024, "day": date(2024, 2, 29), "slug": "hello-x"}
    # 2023-02-30 fits the ymd pattern but is no date: the next route gets its chance
    assert r.resolve("/p/2023/2023-02-30/x", "GET") == (
        r.find_route_by_name("fallback"),
        {"year": 2023, "day": "2023-02-30", "slug": "x"},
    )
    assert not make(("/s", ["GET"], "s")).find_route_by_name("s").is_dynamic  # type: ignore[union-attr]


def test_url_for_odd_values_and_types() -> None:
    r = make(("/i/<n:int>/<f:float>/<s>", ["GET"], "i"))
    assert r.url_for("i", n=True, f=False, s=True) == "/i/1/0/True"
    with pytest.raises(TypeError, match="must be a str"):
        Router().add(b"/x", ["GET"], h, name="x")  # type: ignore[arg-type]


def test_dynamic_cache_is_bounded_invalidated_and_hands_out_copies() -> None:
    from runtime import routing

    r = make(("/n/<x:int>", ["GET"], "n"))
    _, first = r.resolve("/n/1", "GET")
    first["x"] = "changed by a handler"
    assert r.resolve("/n/1", "GET")[1] == {"x": 1}  # from the cache, unaffected
    for i in range(routing.CACHE_SIZE + 5):
        assert r.resolve(f"/n/{i}", "GET")[1] == {"x": i}
    assert len(r._http.cache) <= routing.CACHE_SIZE
    r.add("/n/<x:int>", ["POST"], h, name="n")  # same name, same path: fine
    r.add("/n/7", ["GET"], h, name="seven")
    assert r.resolve("/n/7", "GET")[0].name == "seven"
    r.add("/n/<s:alpha>", ["GET"], h, name="alpha")
    assert r.resolve("/n/1", "POST")[0].methods == frozenset({"POST"})
    assert r.resolve("/n/abc", "GET")[0].name == "alpha"
