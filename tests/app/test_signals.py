"""Signals and events: every rule of signals.md.

The first part drives ``runtime.signals.SignalRouter`` directly with a small stand-in app; the
second part goes through the public ``App`` / ``Blueprint`` facade (the seed scenarios).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest

from runtime import App, Blueprint, Request, json, text
from runtime.config import Config
from runtime.exceptions import InvalidSignal, SignalNotFound
from runtime.lifecycle import ListenerEvent, ListenerRegistry, run_listeners
from runtime.signals import (
    BUILTIN_CONTEXT,
    Event,
    SignalRouter,
    is_reported,
    parse_signal_name,
)
from runtime.testing import AsyncTestClient


def stand_in(**config: Any) -> Any:
    app = SimpleNamespace(
        config=Config(config, env_prefix=None), debug=False, listeners=ListenerRegistry()
    )
    app.signal_router = SignalRouter(app, app.listeners)
    return app


@pytest.fixture
def router() -> SignalRouter:
    router: SignalRouter = stand_in().signal_router
    return router


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "group", "action", "param"),
    [
        ("user.account.created", ("user", "account"), "created", None),
        ("user.account.<action>", ("user", "account"), None, "action"),
        ("order.item.<item_id:int>", ("order", "item"), None, "item_id"),
        ("ping", ("", ""), "ping", None),
        ("<thing>", ("", ""), None, "thing"),
        ("<n:int>", ("", ""), None, "n"),
        ("http.lifecycle.<step>", ("http", "lifecycle"), None, "step"),
        ("app.notice.hello", ("app", "notice"), "hello", None),
        ("http.lifecycle.request", ("http", "lifecycle"), "request", None),
    ],
)
def test_valid_names_are_parsed_once(
    text: str, group: tuple[str, str], action: str | None, param: str | None
) -> None:
    name = parse_signal_name(text)
    assert (name.group, name.action, name.param) == (group, action, param)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("foo.bar", "2 parts"),
        ("a.b.c.d", "4 parts"),
        ("<a>.b.c", "dynamic part '<a>'"),
        ("a.<b>.c", "dynamic part '<b>'"),
        ("server.init.other", "reserved namespace"),
        ("http.request.start", "reserved namespace"),
        ("websocket.handler.opened", "reserved namespace"),
        ("", "invalid part"),
        ("a..c", "invalid part"),
        ("a.b.<x:nosuchtype>", "Unknown parameter type"),
        ("a.b.<x:path>", "'path' type"),
        ("a.b.*", "invalid part"),
    ],
)
def test_invalid_names_raise_invalid_signal_at_registration(
    router: SignalRouter, text: str, why: str
) -> None:
    with pytest.raises(InvalidSignal, match=why) as info:
        router.add(lambda **kw: None, text)
    assert isinstance(info.value, ValueError)
    assert router.handlers() == []


def test_reserved_namespace_error_names_the_builtins_and_a_fix(router: SignalRouter) -> None:
    with pytest.raises(InvalidSignal) as info:
        router.add(lambda **kw: None, "server.init.other")
    assert "server.init.before" in str(info.value) and "app.init.other" in str(info.value)


def test_one_part_names_never_collide_with_three_part_names(router: SignalRouter) -> None:
    ran: list[str] = []
    router.add(lambda: ran.append("one-part"), "ping")
    router.add(lambda: ran.append("three-part"), "a.b.ping")
    assert router.has_handlers("ping") and router.has_handlers("a.b.ping")
    assert not router.has_handlers("x.y.ping")


def test_built_in_event_enum_has_every_event_of_the_spec() -> None:
    names = {e.name: e.value for e in Event}
    assert len(names) == 23
    assert names["HTTP_LIFECYCLE_BEGIN"] == "http.lifecycle.begin"
    assert names["HTTP_LIFECYCLE_READ_HEAD"] == "http.lifecycle.read_head"
    assert names["SERVER_SHUTDOWN_AFTER"] == "server.shutdown.after"
    assert names["WEBSOCKET_HANDLER_EXCEPTION"] == "websocket.handler.exception"
    for member in Event:
        assert member.name == member.value.replace(".", "_").upper()
        parse_signal_name(member)  # every built-in can be registered


# --- registration checks --------------------------------------------------------------------------


def test_handler_must_accept_its_own_dynamic_parameter(router: SignalRouter) -> None:
    def no_params() -> None: ...

    with pytest.raises(TypeError, match=r"no_params.*item_id"):
        router.add(no_params, "order.item.<item_id:int>")


def test_handler_may_take_more_parameters_from_the_context(router: SignalRouter) -> None:
    def quote(currency: str, amount: int) -> None: ...

    router.add(quote, "price.quote.<currency:alpha>")


def test_builtin_handler_must_accept_the_builtin_keywords(router: SignalRouter) -> None:
    def only_request(request: Any) -> None: ...

    with pytest.raises(TypeError, match=r"only_request.*request, response"):
        router.add(only_request, "http.lifecycle.response")
    router.add(only_request, "http.lifecycle.request")
    assert set(BUILTIN_CONTEXT) == {e for e in Event if not e.value.startswith("server.")} | {
        Event.SERVER_EXCEPTION_REPORT
    }


def test_bad_handler_condition_priority(router: SignalRouter) -> None:
    with pytest.raises(TypeError, match="callable"):
        router.add("x", "a.b.c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="condition must be a dict"):
        router.add(None, "a.b.c", condition=["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="priority"):
        router.add(None, "a.b.c", priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidSignal, match="string or an Enum"):
        router.add(None, 42)  # type: ignore[arg-type]


# --- dispatch: parameters and return values -------------------------------------------------------


async def test_dynamic_values_are_converted_and_merged_with_context(router: SignalRouter) -> None:
    got: list[dict[str, Any]] = []

    async def on_item(item_id: int, **context: Any) -> None:
        got.append({"item_id": item_id, **context})

    router.add(on_item, "order.item.<item_id:int>")
    await router.dispatch("order.item.42", context={"qty": 3}, inline=True)
    await router.dispatch("order.item.7", context={"item_id": "ctx wins"}, inline=True)
    assert got == [{"item_id": 42, "qty": 3}, {"item_id": "ctx wins"}]


@pytest.mark.parametrize(
    ("definition", "action", "value"),
    [
        ("<x:float>", "1.5", 1.5),
        ("<x:alpha>", "abc", "abc"),
        ("<x:slug>", "a-b-1", "a-b-1"),
        ("<x:uuid>", "6a5b1a0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", uuid.UUID(int=0)),
        ("<x>", "anything", "anything"),
    ],
)
async def test_typed_parts(router: SignalRouter, definition: str, action: str, value: Any) -> None:
    got: list[Any] = []
    router.add(lambda x: got.append(x), f"t.p.{definition}")
    await router.dispatch(f"t.p.{action}", inline=True)
    if isinstance(value, uuid.UUID):
        assert got == [uuid.UUID(action)]
    else:
        assert got == [value]


async def test_a_value_that_does_not_fit_the_type_is_no_such_signal(router: SignalRouter) -> None:
    router.add(lambda item_id: None, "order.item.<item_id:int>")
    with pytest.raises(SignalNotFound, match=r"Could not find signal order\.item\.abc"):
        await router.dispatch("order.item.abc", inline=True)
    assert await router.dispatch("order.item.abc", inline=True, fail_not_found=False) is None


async def test_each_handler_gets_exactly_its_own_parameters(router: SignalRouter) -> None:
    """The Sanic bug of section 9, in both registration orders."""
    got: list[tuple[str, dict[str, Any]]] = []
    router.add(lambda **kw: got.append(("static", kw)), "foo")
    router.add(lambda **kw: got.append(("dynamic", kw)), "<thing>")
    router.add(lambda **kw: got.append(("static2", kw)), "bar")
    await router.dispatch("foo", inline=True)
    await router.dispatch("bar", inline=True)
    assert got == [
        ("static", {}),
        ("dynamic", {"thing": "foo"}),
        ("dynamic", {"thing": "bar"}),
        ("static2", {}),
    ]


async def test_two_dynamic_definitions_each_get_their_own_name(router: SignalRouter) -> None:
    got: list[dict[str, Any]] = []
    router.add(lambda **kw: got.append(kw), "a.b.<first>")
    router.add(lambda **kw: got.append(kw), "a.b.<second:int>")
    await router.dispatch("a.b.5", inline=True)
    await router.dispatch("a.b.x", inline=True)
    assert got == [{"first": "5"}, {"second": 5}, {"first": "x"}]


async def test_inline_returns_the_first_truthy_value_and_stops(router: SignalRouter) -> None:
    ran: list[str] = []

    def none() -> None:
        ran.append("none")

    def zero() -> int:
        ran.append("zero")
        return 0

    async def value() -> str:
        ran.append("value")
        return "found"

    def never() -> str:
        ran.append("never")
        return "late"

    for fn in (none, zero, value, never):
        router.add(fn, "r.v.x")
    assert await router.dispatch("r.v.x", inline=True) == "found"
    assert ran == ["none", "zero", "value"]


async def test_inline_returns_none_when_no_handler_returns_a_truthy_value(
    router: SignalRouter,
) -> None:
    router.add(lambda: 0, "r.v.x")
    router.add(lambda: "", "r.v.x")
    assert await router.dispatch("r.v.x", inline=True) is None


async def test_non_inline_returns_a_started_task_with_the_inline_result(
    router: SignalRouter,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler() -> str:
        started.set()
        await release.wait()
        return "done"

    router.add(handler, "bg.task.run")
    task = await router.dispatch("bg.task.run")
    assert isinstance(task, asyncio.Task)
    assert started.is_set()  # the task started before dispatch returned
    release.set()
    assert await asyncio.wait_for(task, 5) == "done"


async def test_sync_handlers_run_too(router: SignalRouter) -> None:
    router.add(lambda: "sync", "s.y.n")
    assert await router.dispatch("s.y.n", inline=True) == "sync"


# --- order ----------------------------------------------------------------------------------------


async def test_priority_order_and_exact_reverse(router: SignalRouter) -> None:
    ran: list[str] = []

    def make(label: str) -> Any:
        def handler() -> None:
            ran.append(label)

        return handler

    for label, priority in [("p0", 0), ("p5", 5), ("p0b", 0), ("pm1", -1)]:
        router.add(make(label), "o.r.d", priority=priority)
    await router.dispatch("o.r.d", inline=True)
    assert ran == ["p5", "p0", "p0b", "pm1"]
    ran.clear()
    await router.dispatch("o.r.d", inline=True, reverse=True)
    assert ran == ["pm1", "p0b", "p0", "p5"]


async def test_static_and_dynamic_handlers_share_one_order(router: SignalRouter) -> None:
    ran: list[str] = []
    router.add(lambda: ran.append("static"), "o.r.go")
    router.add(lambda **kw: ran.append("dynamic-high"), "o.r.<x>", priority=1)
    router.add(lambda: ran.append("static-late"), "o.r.go")
    await router.dispatch("o.r.go", inline=True)
    assert ran == ["dynamic-high", "static", "static-late"]


# --- not found ------------------------------------------------------------------------------------


async def test_not_found(router: SignalRouter) -> None:
    with pytest.raises(SignalNotFound, match=r"^Could not find signal no\.such\.event$") as info:
        await router.dispatch("no.such.event", inline=True)
    assert isinstance(info.value, LookupError)
    assert await router.dispatch("no.such.event", inline=True, fail_not_found=False) is None
    task = await router.dispatch("no.such.event")
    assert await asyncio.wait_for(task, 5) is None
    task = await router.dispatch("no.such.event", fail_not_found=True)
    assert await asyncio.wait_for(task, 5) is None


async def test_builtin_events_never_fail_for_lack_of_handlers(router: SignalRouter) -> None:
    for member in Event:
        if member.value.startswith("server.") and member is not Event.SERVER_EXCEPTION_REPORT:
            continue
        assert await router.dispatch(member, inline=True, context={"x": 1}) is None
    assert await router.dispatch("http.lifecycle.whatever", inline=True) is None


async def test_signals_exist_but_none_matches_the_condition(router: SignalRouter) -> None:
    router.add(lambda: "ran", "c.o.n", condition={"x": "1"})
    assert await router.dispatch("c.o.n", inline=True, condition={"x": "2"}) is None


# --- conditions and exclusive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, ["A", "C"]),
        ({}, ["A"]),
        ({"x": "1"}, ["B", "C"]),
        ({"x": "2"}, ["D"]),
        ({"x": "3"}, []),
    ],
)
async def test_condition_table(
    router: SignalRouter, condition: dict[str, str] | None, expected: list[str]
) -> None:
    ran: list[str] = []

    def make(label: str) -> Any:
        return lambda: ran.append(label)

    router.add(make("A"), "c.t.e")
    router.add(make("B"), "c.t.e", condition={"x": "1"})
    router.add(make("C"), "c.t.e", condition={"x": "1"}, exclusive=False)
    router.add(make("D"), "c.t.e", condition={"x": "2"})
    assert await router.dispatch("c.t.e", inline=True, condition=condition) is None
    assert ran == expected


async def test_blueprint_handlers_get_the_blueprint_condition_and_are_not_exclusive(
    router: SignalRouter,
) -> None:
    ran: list[str] = []
    record = router.add(lambda: ran.append("bp"), "b.p.x", blueprint="billing", exclusive=True)
    router.add(lambda: ran.append("app"), "b.p.x")
    assert record.condition == {"__blueprint__": "billing"}  # type: ignore[union-attr]
    assert record.exclusive is False  # type: ignore[union-attr]
    await router.dispatch("b.p.x", inline=True)
    assert ran == ["bp", "app"]
    ran.clear()
    await router.dispatch("b.p.x", inline=True, condition={"__blueprint__": "billing"})
    assert ran == ["bp"]


# --- exceptions -----------------------------------------------------------------------------------


async def test_handler_exception_skips_the_rest_reports_once_and_reraises(
    router: SignalRouter,
) -> None:
    ran: list[str] = []
    reports: list[BaseException] = []
    reported = asyncio.Event()

    def report(exception: BaseException) -> None:
        reports.append(exception)
        reported.set()

    router.add(report, Event.SERVER_EXCEPTION_REPORT)

    def boom() -> None:
        ran.append("boom")
        raise ValueError("handler failed")

    router.add(boom, "e.x.c")
    router.add(lambda: ran.append("after"), "e.x.c")
    with pytest.raises(ValueError, match="handler failed") as info:
        await router.dispatch("e.x.c", inline=True)
    await asyncio.wait_for(reported.wait(), 5)
    assert ran == ["boom"]
    assert reports == [info.value] and is_reported(info.value)
    # reporting the same exception again (e.g. the request pipeline) does nothing
    assert router.report(info.value) is None


async def test_non_inline_exception_is_stored_in_the_task(router: SignalRouter) -> None:
    def boom() -> None:
        raise KeyError("in task")

    router.add(boom, "e.x.t")
    task = await router.dispatch("e.x.t")
    with pytest.raises(KeyError, match="in task"):
        await asyncio.wait_for(task, 5)


async def test_nested_dispatch_reports_an_exception_only_once(router: SignalRouter) -> None:
    reports: list[BaseException] = []
    router.add(lambda exception: reports.append(exception), "server.exception.report")

    def inner() -> None:
        raise RuntimeError("inner")

    async def outer() -> None:
        await router.dispatch("n.e.inner", inline=True)

    router.add(inner, "n.e.inner")
    router.add(outer, "n.e.outer")
    with pytest.raises(RuntimeError):
        await router.dispatch("n.e.outer", inline=True)
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(reports) == 1


async def test_report_handler_failure_is_logged_not_looped(
    router: SignalRouter, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_report(exception: BaseException) -> None:
        raise RuntimeError("report failed")

    router.add(bad_report, "server.exception.report")
    router.add(lambda: 1 / 0, "e.r.r")
    with caplog.at_level(logging.ERROR, logger="vivace.error"), pytest.raises(ZeroDivisionError):
        await router.dispatch("e.r.r", inline=True)
    for _ in range(3):
        await asyncio.sleep(0)
    assert any("server.exception.report" in r.getMessage() for r in caplog.records)


async def test_debug_mode_logs_handler_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    app = stand_in()
    app.debug = True

    def boom() -> None:
        raise RuntimeError("debug boom")

    app.signal_router.add(boom, "d.b.g")
    with caplog.at_level(logging.ERROR, logger="vivace.error"), pytest.raises(RuntimeError):
        await app.signal_router.dispatch("d.b.g", inline=True)
    assert any("boom" in r.getMessage() for r in caplog.records)


async def test_each_dispatch_is_logged_at_debug_level(
    router: SignalRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.add(None, "l.o.g")
    with caplog.at_level(logging.DEBUG, logger="vivace.root"):
        await router.dispatch("l.o.g", inline=True)
    assert "Dispatching signal: l.o.g" in caplog.messages


# --- waiters --------------------------------------------------------------------------------------


async def test_wait_for_returns_a_new_dict_equal_to_the_context(router: SignalRouter) -> None:
    router.add(None, "w.a.it")
    waiter = asyncio.create_task(router.wait_for("w.a.it", timeout=5))
    await asyncio.sleep(0)
    context = {"n": 1}
    await router.dispatch("w.a.it", context=context, inline=True)
    got = await waiter
    assert got == context and got is not context
    got["n"] = 2
    assert context == {"n": 1}


async def test_waiters_are_detached_when_resolved(router: SignalRouter) -> None:
    """Two consecutive inline dispatches while the waiter has not resumed (Sanic bug, section 9)."""
    router.add(None, "w.a.twice")
    waiter = asyncio.create_task(router.wait_for("w.a.twice", timeout=5))
    await asyncio.sleep(0)
    await router.dispatch("w.a.twice", context={"i": 1}, inline=True)
    await router.dispatch("w.a.twice", context={"i": 2}, inline=True)
    assert await waiter == {"i": 1}


async def test_waiters_resolve_before_handlers_run(router: SignalRouter) -> None:
    """Even a handler that fails does not keep the waiter from being resolved first."""

    def boom(**context: Any) -> None:
        raise RuntimeError("handler")

    router.add(boom, "w.a.order")
    waiter = asyncio.create_task(router.wait_for("w.a.order", timeout=5))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await router.dispatch("w.a.order", context={"k": 1}, inline=True)
    assert await waiter == {"k": 1}


async def test_wait_for_dynamic_and_wildcard(router: SignalRouter) -> None:
    router.add(lambda **kw: None, "a.b.<x:int>")
    dynamic = asyncio.create_task(router.wait_for("a.b.<x:int>", timeout=5))
    wildcard = asyncio.create_task(router.wait_for("a.b.*", timeout=5))
    await asyncio.sleep(0)
    await router.dispatch("a.b.3", context={"c": True}, inline=True)
    assert await dynamic == {"x": 3, "c": True}
    assert await wildcard == {"x": 3, "c": True}


async def test_wait_for_enum_events(router: SignalRouter) -> None:
    class Billing(Enum):
        PAID = "billing.invoice.paid"

    router.add(lambda invoice_id: None, Billing.PAID)
    waiter = asyncio.create_task(router.wait_for(Billing.PAID, timeout=5))
    await asyncio.sleep(0)
    await router.dispatch(Billing.PAID, context={"invoice_id": 9}, inline=True)
    assert await waiter == {"invoice_id": 9}


async def test_wait_for_needs_a_signal_unless_autoregister() -> None:
    router: SignalRouter = stand_in().signal_router
    with pytest.raises(SignalNotFound, match=r"Could not find signal u\.n\.known"):
        await router.wait_for("u.n.known", timeout=1)
    auto: SignalRouter = stand_in(EVENT_AUTOREGISTER=True).signal_router
    for event in ("u.n.known", "u.d.<x>", "u.w.*", "solo"):
        waiter = asyncio.create_task(auto.wait_for(event, timeout=5))
        await asyncio.sleep(0)
        concrete = event.replace("<x>", "1").replace("*", "any")
        await auto.dispatch(concrete, inline=True)  # the autoregistered signal exists now
        await asyncio.wait_for(waiter, 5)


async def test_wait_for_timeout_raises_timeout_error_and_detaches(router: SignalRouter) -> None:
    router.add(None, "t.i.me")
    with pytest.raises(TimeoutError):
        await router.wait_for("t.i.me", timeout=0.01)
    assert router._waiters == {}


@pytest.mark.parametrize(
    ("exclusive", "waiter_condition", "dispatch_condition", "woken"),
    [
        (True, None, None, True),
        (True, None, {"k": "v"}, False),
        (True, {"k": "v"}, None, False),
        (True, {"k": "v"}, {"k": "v"}, True),
        (False, {"k": "v"}, None, True),
        (False, {"k": "v"}, {"k": "v"}, True),
        (False, {"k": "v"}, {"k": "w"}, False),
    ],
)
async def test_waiter_conditions(
    router: SignalRouter,
    exclusive: bool,
    waiter_condition: dict[str, str] | None,
    dispatch_condition: dict[str, str] | None,
    woken: bool,
) -> None:
    router.add(None, "w.c.x")
    waiter = asyncio.create_task(
        router.wait_for("w.c.x", condition=waiter_condition, exclusive=exclusive)
    )
    await asyncio.sleep(0)
    await router.dispatch("w.c.x", inline=True, condition=dispatch_condition)
    await asyncio.sleep(0)
    assert waiter.done() is woken
    if woken:
        assert await waiter == {}
    else:
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert router._waiters == {}


async def test_waiter_on_a_builtin_event_turns_its_guard_on(router: SignalRouter) -> None:
    assert not router.guards.HTTP_LIFECYCLE_REQUEST
    waiter = asyncio.create_task(router.wait_for(Event.HTTP_LIFECYCLE_REQUEST, timeout=5))
    await asyncio.sleep(0)
    assert router.guards.HTTP_LIFECYCLE_REQUEST
    assert router.has_handlers(Event.HTTP_LIFECYCLE_REQUEST)
    await router.dispatch(Event.HTTP_LIFECYCLE_REQUEST, context={"request": "r"}, inline=True)
    assert await waiter == {"request": "r"}
    assert not router.guards.HTTP_LIFECYCLE_REQUEST


# --- guards for the request path ------------------------------------------------------------------


def test_has_handlers_and_guards_follow_registrations(router: SignalRouter) -> None:
    for member in Event:
        assert not router.has_handlers(member)
    router.add(lambda **kw: None, "http.lifecycle.<step>")
    lifecycle = {e for e in Event if e.value.startswith("http.lifecycle.")}
    for member in Event:
        assert router.has_handlers(member) is (member in lifecycle)
        if not member.value.startswith("server.") or member is Event.SERVER_EXCEPTION_REPORT:
            assert getattr(router.guards, member.name) is (member in lifecycle)
    router.add(lambda request, response: None, Event.HTTP_MIDDLEWARE_AFTER)
    assert router.guards.HTTP_MIDDLEWARE_AFTER and not router.guards.HTTP_MIDDLEWARE_BEFORE
    assert router.has_handlers("http.middleware.after")
    router.finalize()
    assert router.finalized and router.guards.HTTP_MIDDLEWARE_AFTER


# --- server.* events are listeners ----------------------------------------------------------------


async def test_server_signal_handlers_are_listeners_ordered_with_them() -> None:
    app = stand_in()
    ran: list[tuple[str, Any]] = []

    async def listener(app: Any) -> None:
        ran.append(("listener", app))

    async def signal_handler(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        ran.append(("signal", loop is asyncio.get_running_loop()))

    def kwargs_handler(**kwargs: Any) -> None:
        ran.append(("kwargs", sorted(kwargs)))

    app.listeners.add(listener, "before_server_start")
    app.signal_router.add(signal_handler, "server.init.before", priority=1)
    app.signal_router.add(kwargs_handler, Event.SERVER_INIT_BEFORE)
    assert app.signal_router.has_handlers(Event.SERVER_INIT_BEFORE)
    assert not app.signal_router.has_handlers(Event.SERVER_SHUTDOWN_AFTER)
    await run_listeners(app, ListenerEvent.BEFORE_SERVER_START)
    assert ran == [("signal", True), ("listener", app), ("kwargs", ["app", "loop"])]
    ran.clear()
    await app.signal_router.dispatch("server.init.before", inline=True)
    assert [label for label, _ in ran] == ["signal", "listener", "kwargs"]


def test_server_events_take_no_condition(router: SignalRouter) -> None:
    with pytest.raises(InvalidSignal, match="no condition"):
        router.add(lambda app, loop: None, "server.shutdown.after", condition={"a": "b"})


async def test_waiting_on_a_server_event() -> None:
    app = stand_in()
    waiter = asyncio.create_task(app.signal_router.wait_for("server.init.after", timeout=5))
    await asyncio.sleep(0)
    await run_listeners(app, "after_server_start")
    got = await waiter
    assert got["app"] is app and got["loop"] is asyncio.get_running_loop()


# ==================================================================================================
# Through the public App / Blueprint facade (seed scenarios of signals.md)
# ==================================================================================================

_names = iter(range(10**6))


async def settle() -> None:
    """Let freshly created tasks (bp.event starts one waiter task per app) reach their await."""
    for _ in range(5):
        await asyncio.sleep(0)


def new_app(**config: Any) -> App:
    app = App(f"Signals{next(_names)}")
    app.config.update(config)
    return app


async def test_seed_simplified_dynamic_signal(capsys: pytest.CaptureFixture[str]) -> None:
    app = new_app()

    @app.signal("<thing>")
    async def any_simple_signal(**kwargs: Any) -> None:
        print("foobar signal received")
        print(kwargs)

    @app.route("/")
    async def home(request: Request) -> Any:
        await request.app.dispatch("foobar")
        return json({"hello": "world"})

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
    assert response.json() == {"hello": "world"}
    assert capsys.readouterr().out == "foobar signal received\n{'thing': 'foobar'}\n"


async def test_seed_ping() -> None:
    app = new_app()
    ran: list[str] = []

    @app.signal("ping")
    async def on_ping() -> None:
        ran.append("ping")

    task = await app.dispatch("ping")
    await asyncio.wait_for(task, 5)
    assert await app.dispatch("ping", inline=True) is None
    assert ran == ["ping", "ping"]


async def test_registration_forms_on_app_and_blueprint() -> None:
    app = new_app()
    bp = Blueprint(f"billing{next(_names)}")
    got: list[Any] = []

    class Events(Enum):
        PAID = "billing.invoice.paid"

    @app.signal("order.item.<item_id:int>")
    async def on_item(item_id: int, **context: Any) -> None:
        got.append(("item", item_id, context))

    @app.signal("audit.entry.write", priority=10)
    async def audit_first(**context: Any) -> None:
        got.append("audit-first")

    app.add_signal(lambda **context: got.append("audit-second"), "audit.entry.write")

    @bp.signal(Events.PAID)
    async def mark_paid(invoice_id: int) -> None:
        got.append(("paid", invoice_id))

    app.add_signal(None, "report.batch.done")
    app.blueprint(bp)

    await app.dispatch("order.item.5", context={"qty": 2}, inline=True)
    await app.dispatch("audit.entry.write", inline=True)
    await app.dispatch(Events.PAID, context={"invoice_id": 7}, inline=True)
    assert await app.dispatch("report.batch.done", inline=True) is None
    assert got == [
        ("item", 5, {"qty": 2}),
        "audit-first",
        "audit-second",
        ("paid", 7),
    ]
    with pytest.raises(InvalidSignal, match="reserved namespace"):
        app.add_signal(None, "http.request.start")
    with pytest.raises(InvalidSignal, match="2 parts"):
        bp.signal("foo.bar")(lambda **kw: None)


async def test_condition_and_exclusive_through_the_app() -> None:
    app = new_app()
    ran: list[str] = []
    app.add_signal(lambda: ran.append("A"), "c.t.e")
    app.signal("c.t.e", condition={"x": "1"})(lambda: ran.append("B"))
    app.signal("c.t.e", condition={"x": "1"}, exclusive=False)(lambda: ran.append("C"))
    await app.dispatch("c.t.e", inline=True)
    await app.dispatch("c.t.e", inline=True, condition={"x": "1"})
    assert ran == ["A", "C", "B", "C"]


async def test_blueprint_dispatch_and_event() -> None:
    app = new_app()
    bp, other = Blueprint(f"bp{next(_names)}"), Blueprint(f"other{next(_names)}")
    ran: list[str] = []
    bp.signal("b.p.x")(lambda **kw: ran.append("bp"))
    other.signal("b.p.x")(lambda **kw: ran.append("other"))
    app.signal("b.p.x")(lambda **kw: ran.append("app"))
    app.blueprint(bp)
    app.blueprint(other)

    await bp.dispatch("b.p.x", inline=True)
    assert ran == ["bp"]
    ran.clear()
    await app.dispatch("b.p.x", inline=True)
    assert ran == ["app", "bp", "other"]  # blueprint handlers register when attached

    # bp.event resolves on bp.dispatch and on an unconditioned app.dispatch ...
    waiter = asyncio.create_task(bp.event("b.p.x", timeout=5))
    await settle()
    await bp.dispatch("b.p.x", context={"n": 1}, inline=True)
    assert await waiter == {"n": 1}
    waiter = asyncio.create_task(bp.event("b.p.x", timeout=5))
    await settle()
    await app.dispatch("b.p.x", context={"n": 2}, inline=True)
    assert await waiter == {"n": 2}
    # ... while app.event is not woken by bp.dispatch
    app_waiter = asyncio.create_task(app.event("b.p.x", timeout=5))
    await settle()
    await bp.dispatch("b.p.x", inline=True)
    await settle()
    assert not app_waiter.done()
    await app.dispatch("b.p.x", context={"n": 3}, inline=True)
    assert await app_waiter == {"n": 3}
    with pytest.raises(TimeoutError):
        await bp.event("b.p.x", timeout=0.01)


async def test_app_event_copy_timeout_and_autoregister() -> None:
    app = new_app()
    app.add_signal(None, "w.a.it")
    waiter = asyncio.create_task(app.event("w.a.it"))
    await asyncio.sleep(0)
    context = {"k": "v"}
    await app.dispatch("w.a.it", context=context, inline=True)
    await app.dispatch("w.a.it", context={"k": "second"}, inline=True)
    got = await waiter
    assert got == context and got is not context
    with pytest.raises(SignalNotFound, match=r"no\.such\.thing"):
        await app.event("no.such.thing", timeout=1)
    with pytest.raises(TimeoutError):
        await app.event("w.a.it", timeout=0.01)
    auto = new_app(EVENT_AUTOREGISTER=True)
    waiter = asyncio.create_task(auto.event("made.up.event", timeout=5))
    await asyncio.sleep(0)
    await auto.dispatch("made.up.event", context={"ok": True}, inline=True)
    assert await waiter == {"ok": True}


async def test_exceptions_are_reported_once_through_report_exception() -> None:
    app = new_app()
    reports: list[tuple[Any, BaseException]] = []
    reported = asyncio.Event()

    @app.report_exception
    async def collect(app_: Any, exception: BaseException) -> None:
        reports.append((app_, exception))
        reported.set()

    @app.signal("fail.in.handler")
    async def failing() -> None:
        raise LookupError("signal failed")

    @app.get("/")
    async def home(request: Request) -> Any:
        await request.app.dispatch("fail.in.handler", inline=True)
        return text("unreachable")

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
        await asyncio.wait_for(reported.wait(), 5)
        for _ in range(3):
            await asyncio.sleep(0)
    assert response.status_code == 500
    assert len(reports) == 1
    assert reports[0][0] is app and str(reports[0][1]) == "signal failed"


async def test_builtin_http_signals_in_process_order() -> None:
    app = new_app()
    seen: list[str] = []

    @app.signal("http.lifecycle.<step>")
    async def lifecycle(step: str, **context: Any) -> None:
        seen.append(f"lifecycle.{step}")

    @app.signal(Event.HTTP_ROUTING_BEFORE)
    async def routing_before(request: Request) -> None:
        seen.append("routing.before")

    @app.signal(Event.HTTP_ROUTING_AFTER)
    async def routing_after(request: Request, route: Any, kwargs: Any, handler: Any) -> None:
        seen.append("routing.after")

    @app.signal(Event.HTTP_HANDLER_BEFORE)
    async def handler_before(request: Request) -> None:
        seen.append("handler.before")

    @app.signal(Event.HTTP_HANDLER_AFTER)
    async def handler_after(request: Request) -> None:
        seen.append("handler.after")

    @app.get("/")
    async def home(request: Request) -> Any:
        seen.append("handler")
        return text("ok")

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).text == "ok"
    # signals.md §7: the test client plays the server's part too (begin, read_head, send, complete)
    assert seen == [
        "lifecycle.begin",
        "lifecycle.read_head",
        "lifecycle.request",
        "lifecycle.handle",
        "routing.before",
        "routing.after",
        "handler.before",
        "handler",
        "handler.after",
        "lifecycle.response",
        "lifecycle.send",
        "lifecycle.complete",
    ]


# --- remaining edges (direct) ---------------------------------------------------------------------


async def test_waiting_on_report_without_a_handler(router: SignalRouter) -> None:
    waiter = asyncio.create_task(router.wait_for(Event.SERVER_EXCEPTION_REPORT, timeout=5))
    await asyncio.sleep(0)
    exc = RuntimeError("seen by the waiter")
    assert router.report(exc) is None  # no handler: nothing to run in the background
    assert (await waiter)["exception"] is exc
    assert router.report(exc) is None and is_reported(exc)


async def test_one_part_wildcard_and_bad_wildcards(router: SignalRouter) -> None:
    router.add(None, "ping")
    waiter = asyncio.create_task(router.wait_for("*", timeout=5))
    await asyncio.sleep(0)
    await router.dispatch("ping", context={"a": 1}, inline=True)
    assert await waiter == {"a": 1}
    for bad in ("a.*", "<x>.b.*", "a.b.c.*"):
        with pytest.raises(InvalidSignal, match="wildcard"):
            await router.wait_for(bad, timeout=1)


async def test_dispatch_rejects_non_string_events(router: SignalRouter) -> None:
    with pytest.raises(InvalidSignal, match="string or an Enum"):
        await router.dispatch(3.5, inline=True)  # type: ignore[arg-type]


async def test_server_event_dispatch_in_the_background_and_by_string() -> None:
    app = stand_in()
    ran: list[str] = []
    app.listeners.add(lambda app: ran.append("stop"), "after_server_stop")
    assert app.signal_router.has_handlers("server.shutdown.after")
    assert not app.signal_router.has_handlers("server.shutdown.before")
    task = await app.signal_router.dispatch("server.shutdown.after")
    await asyncio.wait_for(task, 5)
    assert ran == ["stop"]


def test_has_handlers_by_string(router: SignalRouter) -> None:
    router.add(lambda x: None, "s.t.<x:int>")
    assert router.has_handlers("s.t.1") and not router.has_handlers("s.t.one")
    assert not router.has_handlers("not.a.valid.name")
