"""Blueprints and groups: prefixes, versions, names, late declarations, listeners, signals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime import App, Blueprint, BlueprintGroup, Request, text
from runtime.blueprints import join_uri
from runtime.exceptions import RouteExists
from runtime.testing import AsyncTestClient


def _bp(name: str, **kwargs: Any) -> Blueprint:
    bp = Blueprint(name, **kwargs)

    @bp.get("/")
    async def index(request: Request) -> Any:
        return text(f"{name} index")

    @bp.get("/item/<item_id:int>")
    async def item(request: Request, item_id: int) -> Any:
        return text(f"{name} item {item_id}")

    return bp


@pytest.mark.parametrize(
    ("prefix", "uri", "joined"),
    [
        (None, "/x", "/x"),
        ("/api", "/x", "/api/x"),
        ("/api/", "/x", "/api/x"),
        ("/api", "/", "/api/"),
        ("/", "/x", "/x"),
        ("/api", "", "/api"),
    ],
)
def test_join_uri(prefix: str | None, uri: str, joined: str) -> None:
    assert join_uri(prefix, uri) == joined


async def test_url_prefix_version_and_route_names() -> None:
    app = App("bp_basic")
    app.blueprint(_bp("users", url_prefix="/users"))
    app.blueprint(_bp("orders", url_prefix="/orders", version=2))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/users")).text == "users index"
        assert (await client.get("/users/item/3")).text == "users item 3"
        assert (await client.get("/v2/orders/item/4")).text == "orders item 4"
        assert (await client.get("/orders/item/4")).status_code == 404
    assert app.url_for("users.item", item_id=9) == "/users/item/9"
    assert app.url_for("orders.index") == "/v2/orders/"
    assert sorted(app.blueprints) == ["orders", "users"]


async def test_attach_options_override_the_blueprint() -> None:
    app = App("bp_options")
    app.blueprint(_bp("docs", url_prefix="/docs"), url_prefix="/manual", version=1)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/v1/manual/item/1")).text == "docs item 1"


async def test_strict_slashes_from_route_blueprint_app() -> None:
    app = App("bp_slashes", strict_slashes=False)
    strict = Blueprint("strict", url_prefix="/s", strict_slashes=True)

    @strict.get("/page")
    async def page(request: Request) -> Any:
        return text("strict page")

    loose = Blueprint("loose", url_prefix="/l")

    @loose.get("/page")
    async def loose_page(request: Request) -> Any:
        return text("loose page")

    app.blueprint([strict, loose])
    async with AsyncTestClient(app) as client:
        assert (await client.get("/s/page")).status_code == 200
        assert (await client.get("/s/page/")).status_code == 404
        assert (await client.get("/l/page/")).text == "loose page"


async def test_groups_join_prefixes_and_pass_versions_down() -> None:
    app = App("bp_groups")
    inner = Blueprint.group(_bp("a", url_prefix="/a"), _bp("b"), url_prefix="/inner")
    outer = BlueprintGroup(
        inner, _bp("c", url_prefix="/c", version=3), url_prefix="/api", version=1
    )
    assert len(outer) == 2 and [bp.name for bp in outer.blueprints] == ["a", "b", "c"]
    app.blueprint(outer)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/v1/api/inner/a/item/1")).text == "a item 1"
        assert (await client.get("/v1/api/inner/item/2")).text == "b item 2"
        assert (await client.get("/v3/api/c/item/3")).text == "c item 3"


async def test_group_middleware_and_exception_apply_to_every_member() -> None:
    app = App("bp_group_mw")
    first, second = _bp("first", url_prefix="/one"), _bp("second", url_prefix="/two")
    group = Blueprint.group(first, second, url_prefix="/g")
    seen: list[str] = []

    @group.middleware
    def everywhere(request: Request) -> None:
        seen.append(request.path)

    @group.on_response(priority=1)
    def tag(request: Request, response: Any) -> None:
        response.headers["x-group"] = "yes"

    @second.get("/fail")
    async def fail(request: Request) -> Any:
        raise LookupError("x")

    @group.exception(LookupError)
    def handled(request: Request, exc: Exception) -> Any:
        return text("group handled", status=409)

    @app.get("/outside")
    async def outside(request: Request) -> Any:
        return text("outside")

    app.blueprint(group)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/g/one/item/1")).headers["x-group"] == "yes"
        assert (await client.get("/g/two/fail")).status_code == 409
        assert "x-group" not in (await client.get("/outside")).headers
    assert seen == ["/g/one/item/1", "/g/two/fail"]


async def test_declarations_after_attaching_apply_at_once() -> None:
    app = App("bp_late")
    bp = Blueprint("late", url_prefix="/late")
    app.blueprint(bp)
    assert bp.apps == [app] and bp.registered

    @bp.get("/added")
    async def added(request: Request) -> Any:
        return text("added later")

    @bp.on_response
    def stamp(request: Request, response: Any) -> None:
        response.headers["x-late"] = "1"

    async with AsyncTestClient(app) as client:
        response = await client.get("/late/added")
    assert response.text == "added later" and response.headers["x-late"] == "1"
    assert [route.name for route in bp.routes] == ["late.added"]


def test_blueprint_names_are_unique_per_app_and_valid() -> None:
    app = App("bp_names")
    bp = _bp("same")
    app.blueprint(bp)
    with pytest.raises(ValueError, match=r"'same' is already registered.*this blueprint is"):
        app.blueprint(bp)
    with pytest.raises(ValueError, match="another one with that name"):
        app.blueprint(_bp("same"))
    with pytest.raises(ValueError, match=r"Blueprint name 'has\.dot' is not valid"):
        Blueprint("has.dot")
    with pytest.raises(TypeError, match="takes a Blueprint"):
        app.blueprint("not a blueprint")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url_prefix must be a str"):
        Blueprint("prefix", url_prefix=5)  # type: ignore[arg-type]


def test_a_blueprint_can_be_attached_to_two_apps() -> None:
    bp = _bp("shared")
    first, second = App("first_app"), App("second_app")
    first.blueprint(bp)
    second.blueprint(bp, url_prefix="/other")
    assert bp.apps == [first, second]
    assert first.url_for("shared.item", item_id=1) == "/item/1"
    assert second.url_for("shared.item", item_id=1) == "/other/item/1"


def test_duplicate_routes_inside_blueprints_are_refused() -> None:
    app = App("bp_dupes")
    one, two = Blueprint("one"), Blueprint("two")

    @one.get("/same")
    async def a(request: Request) -> Any:
        return text("a")

    @two.get("/same")
    async def b(request: Request) -> Any:
        return text("b")

    app.blueprint(one)
    with pytest.raises(RouteExists):
        app.blueprint(two)


def test_blueprint_listeners_sort_after_app_listeners_of_equal_priority() -> None:
    app, bp = App("bp_listeners"), Blueprint("bp_listeners_bp")
    ran: list[str] = []

    def tracer(label: str) -> Any:
        def listener(app: App) -> None:
            ran.append(label)

        listener.__name__ = label
        return listener

    bp.before_server_start(tracer("bp_first"))
    app.blueprint(bp)
    app.before_server_start(tracer("app_first"))
    bp.before_server_start(priority=1)(tracer("bp_high"))  # after attach: applied at once
    names = [x.fn.__name__ for x in app.listeners.ordered("before_server_start")]
    assert names == ["bp_high", "app_first", "bp_first"]
    assert [x.origin for x in app.listeners.ordered("before_server_start")] == [1, 0, 1]


def test_blueprint_listener_mistakes_raise_at_declaration() -> None:
    bp = Blueprint("bp_bad_listeners")
    with pytest.raises(ValueError, match="Unknown listener event"):
        bp.register_listener(lambda app: None, "on_start")
    with pytest.raises(TypeError, match="needs the event"):
        bp.listener(lambda app: None)  # type: ignore[call-overload]

    def three(a: Any, b: Any, c: Any) -> None: ...

    with pytest.raises(TypeError, match="must accept one of"):
        bp.after_server_stop(three)


async def test_blueprint_signals_dispatch_and_event() -> None:
    app = App("bp_signals")
    bp = Blueprint("billing")
    calls: list[str] = []

    @bp.signal("billing.invoice.paid")
    async def bp_paid(**context: Any) -> None:
        calls.append(f"bp {context}")

    @app.signal("billing.invoice.paid")
    async def app_paid(**context: Any) -> None:
        calls.append(f"app {context}")

    with pytest.raises(RuntimeError, match="not attached to an app"):
        await bp.dispatch("billing.invoice.paid")
    app.blueprint(bp)
    app.finalize()

    await app.dispatch("billing.invoice.paid", context={"n": 1}, inline=True)
    assert calls == ["app {'n': 1}", "bp {'n': 1}"]  # registration order: bp at attach
    calls.clear()
    results = await bp.dispatch("billing.invoice.paid", context={"n": 2}, inline=True)
    assert results == [None] and calls == ["bp {'n': 2}"]

    waiter = asyncio.ensure_future(bp.event("billing.invoice.paid", timeout=5))
    await asyncio.sleep(0)
    await bp.dispatch("billing.invoice.paid", context={"n": 3}, inline=True)
    assert await asyncio.wait_for(waiter, 5) == {"n": 3}

    waiter = asyncio.ensure_future(bp.event("billing.invoice.paid", timeout=5))
    await asyncio.sleep(0)
    await app.dispatch("billing.invoice.paid", context={"n": 4}, inline=True)
    assert await asyncio.wait_for(waiter, 5) == {"n": 4}

    with pytest.raises(TimeoutError):
        await bp.event("billing.invoice.paid", timeout=0.01)
