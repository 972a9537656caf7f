"""Lifecycle listeners: lifecycle.md sections 2 and 4-8.

The first part drives ``runtime.lifecycle`` directly with a small stand-in app; the second part
goes through the public ``App`` / ``Blueprint`` facade (the seed scenarios).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import App, Blueprint, text
from runtime.config import Config
from runtime.lifecycle import (
    TEARDOWN_EVENTS,
    ListenerEvent,
    ListenerRegistry,
    normalize_event,
    run_listeners,
    run_listeners_sync,
)
from runtime.signals import SignalRouter
from runtime.testing import AsyncTestClient

ALL_EVENTS = [
    "main_process_start",
    "main_process_ready",
    "main_process_stop",
    "reload_process_start",
    "reload_process_stop",
    "before_reload_trigger",
    "after_reload_trigger",
    "before_server_start",
    "after_server_start",
    "before_server_stop",
    "after_server_stop",
]
STARTUP = [e for e in ALL_EVENTS if ListenerEvent(e) not in TEARDOWN_EVENTS]
TEARDOWN = [e for e in ALL_EVENTS if ListenerEvent(e) in TEARDOWN_EVENTS]


def stand_in() -> Any:
    app = SimpleNamespace(config=Config(env_prefix=None), debug=False, listeners=ListenerRegistry())
    app.signal_router = SignalRouter(app, app.listeners)
    return app


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def recorder(ran: list[str], label: str, *, is_async: bool = True) -> Callable[..., Any]:
    if is_async:

        async def alistener(app: Any, **kwargs: Any) -> None:
            ran.append(label)

        alistener.__name__ = alistener.__qualname__ = label
        return alistener

    def listener(app: Any, **kwargs: Any) -> None:
        ran.append(label)

    listener.__name__ = listener.__qualname__ = label
    return listener


# --- events and names -----------------------------------------------------------------------------


def test_there_are_exactly_the_eleven_events() -> None:
    assert sorted(e.value for e in ListenerEvent) == sorted(ALL_EVENTS)
    assert {e.value for e in TEARDOWN_EVENTS} == {
        "before_server_stop",
        "after_server_stop",
        "main_process_stop",
        "reload_process_stop",
    }


@pytest.mark.parametrize(
    "name", ["before_server_start", "BEFORE_SERVER_START", "Before_Server_Start"]
)
def test_event_names_are_case_insensitive(name: str) -> None:
    assert normalize_event(name) is ListenerEvent.BEFORE_SERVER_START
    assert normalize_event(ListenerEvent.AFTER_SERVER_STOP) is ListenerEvent.AFTER_SERVER_STOP


def test_unknown_event_is_a_value_error_listing_the_valid_names() -> None:
    with pytest.raises(ValueError, match="before_server_strat") as info:
        ListenerRegistry().add(lambda app: None, "before_server_strat")
    for name in ALL_EVENTS:
        assert name in str(info.value)


def test_event_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="before_server_start"):
        normalize_event(3)  # type: ignore[arg-type]


def test_priority_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        ListenerRegistry().add(lambda app: None, "before_server_start", priority="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="priority"):
        ListenerRegistry().add(lambda app: None, "before_server_start", priority=True)


def test_a_listener_must_be_callable() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        ListenerRegistry().add("nope", "before_server_start")  # type: ignore[arg-type]


# --- signature binding ----------------------------------------------------------------------------


def _wants_loop(fn: Callable[..., Any], event: str = "before_server_start") -> bool:
    return ListenerRegistry().add(fn, event).wants_loop


def test_signature_decides_app_or_app_and_loop() -> None:
    def f_app(app: Any) -> None: ...
    def f_underscore(_: Any) -> None: ...
    def f_args(*args: Any) -> None: ...
    def f_loop_default(app: Any, loop: Any = None) -> None: ...
    def f_app_loop(app: Any, loop: Any) -> None: ...
    def f_kwargs_only(app: Any, **kwargs: Any) -> None: ...

    assert not _wants_loop(f_app)
    assert not _wants_loop(f_underscore)
    assert not _wants_loop(f_args)
    assert not _wants_loop(f_loop_default)
    assert not _wants_loop(f_kwargs_only)
    assert _wants_loop(f_app_loop)


def test_changed_is_bound_for_after_reload_trigger() -> None:
    def f_changed(app: Any, changed: set[str]) -> None: ...
    def f_underscore(_: Any, changed: set[str]) -> None: ...
    def f_loop(app: Any, loop: Any, changed: set[str]) -> None: ...
    def f_kwargs(app: Any, **kwargs: Any) -> None: ...

    assert not _wants_loop(f_changed, "after_reload_trigger")
    assert not _wants_loop(f_underscore, "after_reload_trigger")
    assert _wants_loop(f_loop, "after_reload_trigger")
    assert not _wants_loop(f_kwargs, "after_reload_trigger")


def test_after_reload_trigger_without_changed_is_rejected_with_the_forms() -> None:
    def plain(app: Any) -> None: ...

    with pytest.raises(TypeError, match=r"plain.*after_reload_trigger.*changed"):
        ListenerRegistry().add(plain, "after_reload_trigger")


@pytest.mark.parametrize(
    "fn",
    [
        lambda: None,
        lambda app, loop, extra: None,
        lambda *, app: None,
    ],
    ids=["no-args", "three-positional", "keyword-only"],
)
def test_a_callable_that_fits_no_form_is_rejected_at_registration(fn: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=r"f\(app\), f\(app, loop\)"):
        ListenerRegistry().add(fn, "main_process_start")


def test_a_type_error_raised_inside_a_listener_is_not_retried_with_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    calls: list[tuple[Any, ...]] = []

    def buggy(app: Any, loop: Any = None) -> None:
        calls.append((app, loop))
        raise TypeError("a bug in the listener itself")

    app = stand_in()
    app.listeners.add(buggy, "main_process_start")
    with pytest.raises(TypeError, match="a bug in the listener itself"):
        run_listeners_sync(app, "main_process_start", loop)
    assert calls == [(app, None)]


def test_keyword_style_listeners_get_app_and_loop_by_name() -> None:
    def both(*, app: Any, loop: Any) -> None: ...
    def only_app(app: Any) -> None: ...
    def neither(request: Any) -> None: ...

    registry = ListenerRegistry()
    assert registry.add(both, "before_server_start", keyword_style=True).wants_loop
    assert not registry.add(only_app, "before_server_start", keyword_style=True).wants_loop
    with pytest.raises(TypeError, match="neither"):
        registry.add(neither, "before_server_start", keyword_style=True)


# --- ordering -------------------------------------------------------------------------------------


def test_sort_key_priority_then_origin_then_registration() -> None:
    registry = ListenerRegistry()
    ran: list[str] = []
    specs = [("first", 0, 0), ("second", 2, 0), ("bp_first", 0, 1), ("third", 3, 0)]
    for label, priority, origin in specs:
        registry.add(recorder(ran, label), "before_server_start", priority=priority, origin=origin)
    registry.add(recorder(ran, "neg"), "before_server_start", priority=-1)
    forward = [item.fn.__name__ for item in registry.ordered("before_server_start")]
    assert forward == ["third", "second", "first", "bp_first", "neg"]


@given(
    st.lists(st.tuples(st.integers(-3, 3), st.sampled_from([0, 1])), min_size=1, max_size=12),
    st.sampled_from(ALL_EVENTS),
)
def test_order_is_the_sort_key_forward_and_its_exact_reverse_at_teardown(
    specs: list[tuple[int, int]], event: str
) -> None:
    registry = ListenerRegistry()
    added = [registry.add(lambda app, **kw: None, event, priority=p, origin=o) for p, o in specs]
    expected = sorted(range(len(added)), key=lambda i: (-specs[i][0], specs[i][1], added[i].seq))
    forward = [added[i] for i in expected]
    got = registry.ordered(event)
    assert got == (forward[::-1] if ListenerEvent(event) in TEARDOWN_EVENTS else forward)


@pytest.mark.parametrize("event", TEARDOWN)
def test_teardown_runs_the_exact_reverse_of_the_forward_order(event: str) -> None:
    registry = ListenerRegistry()
    ran: list[str] = []
    for label, priority, origin in [("a", 0, 0), ("b", 1, 1), ("c", 1, 0), ("d", 0, 1)]:
        registry.add(recorder(ran, label), event, priority=priority, origin=origin)
    forward = ["c", "b", "a", "d"]
    assert [item.fn.__name__ for item in registry.ordered(event)] == forward[::-1]


@pytest.mark.parametrize("event", STARTUP)
async def test_startup_events_run_forward(event: str) -> None:
    app = stand_in()
    ran: list[str] = []
    for label in "xyz":
        app.listeners.add(recorder(ran, label, is_async=label != "y"), event)
    await run_listeners(app, event)
    assert ran == ["x", "y", "z"]


def test_registration_sequence_is_shared_across_registries() -> None:
    app_side, bp_side = ListenerRegistry(), ListenerRegistry()
    first = bp_side.add(lambda app: None, "before_server_start", origin=1)
    second = app_side.add(lambda app: None, "before_server_start")
    assert first.seq < second.seq


def test_attach_keeps_the_registration_sequence_and_copy_is_independent() -> None:
    bp_side, app_side = ListenerRegistry(), ListenerRegistry()
    early = bp_side.add(lambda app: None, "before_server_start")
    late = app_side.add(lambda app: None, "before_server_start", origin=1)
    attached = app_side.attach(early, origin=1)
    assert attached.seq == early.seq and attached.origin == 1
    assert app_side.ordered("before_server_start") == [attached, late]
    clone = app_side.copy()
    clone.add(lambda app: None, "before_server_start")
    assert len(clone) == 3 and len(app_side) == 2
    assert app_side.has("before_server_start") and not app_side.has("after_server_start")
    app_side.remove(late)
    assert list(app_side) == [attached]


# --- running --------------------------------------------------------------------------------------


async def test_sync_and_async_listeners_run_strictly_one_after_another() -> None:
    app = stand_in()
    ran: list[str] = []

    async def slow(app: Any) -> None:
        ran.append("slow:start")
        await asyncio.sleep(0.01)
        ran.append("slow:end")

    def sync(app: Any) -> Any:
        ran.append("sync")

        async def returned() -> None:
            await asyncio.sleep(0)
            ran.append("sync:awaitable")

        return returned()

    async def last(app: Any) -> None:
        ran.append("last")

    for fn in (slow, sync, last):
        app.listeners.add(fn, "before_server_start")
    await run_listeners(app, "before_server_start")
    assert ran == ["slow:start", "slow:end", "sync", "sync:awaitable", "last"]


async def test_server_events_get_the_running_loop() -> None:
    app = stand_in()
    seen: list[Any] = []

    async def async_listener(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        seen.append(loop is asyncio.get_running_loop())

    def sync_listener(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        seen.append(loop.is_running())

    app.listeners.add(async_listener, "after_server_start")
    app.listeners.add(sync_listener, "after_server_start")
    await run_listeners(app, ListenerEvent.AFTER_SERVER_START)
    assert seen == [True, True]


def test_main_process_events_get_a_loop_that_is_not_running(
    loop: asyncio.AbstractEventLoop,
) -> None:
    app = stand_in()
    seen: list[Any] = []

    def sync_listener(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        seen.append(("sync", loop.is_running()))

    async def async_listener(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        seen.append(("async", asyncio.get_running_loop() is loop))
        await asyncio.sleep(0)
        seen.append(("async:end", True))

    def after(app: Any) -> None:
        seen.append(("after", True))

    for fn in (sync_listener, async_listener, after):
        app.listeners.add(fn, "main_process_start")
    run_listeners_sync(app, "main_process_start", loop)
    assert seen == [("sync", False), ("async", True), ("async:end", True), ("after", True)]
    assert not loop.is_running()


async def test_run_listeners_sync_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="await run_listeners"):
        run_listeners_sync(stand_in(), "main_process_start", asyncio.get_running_loop())


def test_changed_is_passed_to_after_reload_trigger(loop: asyncio.AbstractEventLoop) -> None:
    app = stand_in()
    got: list[Any] = []

    def one(app: Any, changed: set[str]) -> None:
        got.append(changed)

    async def two(app: Any, loop: Any, changed: set[str]) -> None:
        got.append((loop is asyncio.get_running_loop(), changed))

    app.listeners.add(one, "after_reload_trigger")
    app.listeners.add(two, "after_reload_trigger")
    run_listeners_sync(app, "after_reload_trigger", loop, changed={"/srv/app.py"})
    assert got == [{"/srv/app.py"}, (True, {"/srv/app.py"})]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", STARTUP)
async def test_startup_listener_error_is_logged_and_reraised_and_stops_the_rest(
    event: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = stand_in()
    ran: list[str] = []

    def boom(app: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    def after(app: Any, **kwargs: Any) -> None:
        ran.append("after")

    app.listeners.add(boom, event)
    app.listeners.add(after, event)
    with caplog.at_level(logging.ERROR, logger="vivace.error"), pytest.raises(RuntimeError):
        await run_listeners(app, event)
    assert ran == []
    assert any("boom" in r.getMessage() and event in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("event", TEARDOWN)
async def test_teardown_listener_errors_are_logged_and_the_rest_still_run(
    event: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = stand_in()
    ran: list[str] = []

    def last(app: Any) -> None:  # registered first: runs last at teardown
        ran.append("last")

    async def boom(app: Any) -> None:
        raise RuntimeError("teardown boom")

    app.listeners.add(last, event)
    app.listeners.add(boom, event)
    with caplog.at_level(logging.ERROR, logger="vivace.error"):
        failures = await run_listeners(app, event)
    assert ran == ["last"]
    assert [str(f) for f in failures] == ["teardown boom"]
    assert any(r.exc_info and "teardown boom" in str(r.exc_info[1]) for r in caplog.records)


def test_sync_runner_has_the_same_error_policy(loop: asyncio.AbstractEventLoop) -> None:
    app = stand_in()
    ran: list[str] = []

    async def boom(app: Any) -> None:
        raise RuntimeError("main boom")

    app.listeners.add(boom, "main_process_start")
    app.listeners.add(lambda app: ran.append("start-after"), "main_process_start")
    app.listeners.add(lambda app: ran.append("stop-last"), "main_process_stop")
    app.listeners.add(boom, "main_process_stop")
    with pytest.raises(RuntimeError, match="main boom"):
        run_listeners_sync(app, "main_process_start", loop)
    failures = run_listeners_sync(app, "main_process_stop", loop)
    assert ran == ["stop-last"] and len(failures) == 1


@pytest.mark.parametrize("event", ["before_server_start", "after_server_stop"])
async def test_server_event_errors_are_reported_once(event: str) -> None:
    app = stand_in()
    reported: list[BaseException] = []
    done = asyncio.Event()

    def report(exception: BaseException) -> None:
        reported.append(exception)
        done.set()

    app.signal_router.add(report, "server.exception.report")

    def boom(app: Any) -> None:
        raise RuntimeError("server boom")

    app.listeners.add(boom, event)
    if ListenerEvent(event) in TEARDOWN_EVENTS:
        await run_listeners(app, event)
    else:
        with pytest.raises(RuntimeError):
            await run_listeners(app, event)
    await asyncio.wait_for(done.wait(), 5)
    assert [str(e) for e in reported] == ["server boom"]


async def test_main_process_errors_are_not_reported() -> None:
    app = stand_in()
    reported: list[BaseException] = []
    app.signal_router.add(lambda exception: reported.append(exception), "server.exception.report")

    def boom(app: Any) -> None:
        raise RuntimeError("main")

    app.listeners.add(boom, "main_process_start")
    with pytest.raises(RuntimeError):
        await run_listeners(app, "main_process_start")
    await asyncio.sleep(0)
    assert reported == []


# ==================================================================================================
# Through the public App / Blueprint facade (seed scenarios of lifecycle.md)
# ==================================================================================================

_names = iter(range(10**6))


def new_app(prefix: str = "Listeners") -> App:
    return App(f"{prefix}{next(_names)}")


def tracer(ran: list[str], label: str) -> Callable[..., Any]:
    async def listener(app: Any) -> None:
        ran.append(label)

    listener.__name__ = label
    return listener


def declare_priority_example(event: str, attach_first: bool) -> tuple[App, list[str]]:
    """lifecycle.md 7.2, with the blueprint attached before or after the app's listeners."""
    ran: list[str] = []
    app, bp = new_app("Ordering"), Blueprint(f"ordering_bp{next(_names)}")
    if attach_first:
        app.blueprint(bp)
    app_short, bp_short = getattr(app, event), getattr(bp, event)
    app_short(tracer(ran, "first"))
    app.listener(event, priority=2)(tracer(ran, "second"))
    app_short(priority=3)(tracer(ran, "third"))
    bp_short(tracer(ran, "bp_first"))
    bp.listener(event, priority=2)(tracer(ran, "bp_second"))
    bp_short(priority=3)(tracer(ran, "bp_third"))
    app_short(tracer(ran, "fourth"))
    if not attach_first:
        app.blueprint(bp)
    return app, ran


SEED_FORWARD = ["third", "bp_third", "second", "bp_second", "first", "fourth", "bp_first"]


@pytest.mark.parametrize("attach_first", [False, True], ids=["attach-after", "attach-before"])
async def test_seed_priority_example(attach_first: bool) -> None:
    app, ran = declare_priority_example("before_server_start", attach_first)
    stop_app, stop_ran = declare_priority_example("before_server_stop", attach_first)
    async with AsyncTestClient(app):
        assert ran == SEED_FORWARD
    async with AsyncTestClient(stop_app):
        assert stop_ran == []
    assert stop_ran == SEED_FORWARD[::-1]
    assert stop_ran == ["bp_first", "fourth", "first", "bp_second", "second", "bp_third", "third"]


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_every_event_has_a_shorthand_bare_called_and_with_priority(
    event: str, loop: asyncio.AbstractEventLoop
) -> None:
    app = new_app()
    ran: list[str] = []

    def make(label: str) -> Callable[..., Any]:
        def listener(app: Any, **kwargs: Any) -> None:
            ran.append(label)

        return listener

    shorthand = getattr(app, event)
    bare = make("bare")
    assert shorthand(bare) is bare
    shorthand()(make("called"))
    shorthand(priority=3)(make("priority"))
    app.register_listener(make("register"), event)
    app.register_listener(make("register-priority"), event, priority=5)
    app.listener(event)(make("generic"))
    app.listener(make("generic-call"), event)
    getattr(Blueprint(f"bp{next(_names)}"), event)(make("unattached-bp"))
    run_listeners_sync(app, event, loop)
    forward = ["register-priority", "priority", "bare", "called", "register", "generic"]
    forward.append("generic-call")
    assert ran == (forward[::-1] if ListenerEvent(event) in TEARDOWN_EVENTS else forward)


def test_bare_listener_decorator_without_event_is_an_error() -> None:
    app = new_app()
    with pytest.raises(TypeError, match="before_server_start"):

        @app.listener  # type: ignore[call-overload]
        def oops(app: Any) -> None: ...


def test_registration_errors_through_the_app() -> None:
    app, bp = new_app(), Blueprint(f"bp{next(_names)}")
    with pytest.raises(ValueError, match="Valid events: main_process_start"):
        app.register_listener(lambda app: None, "before_server_begin")
    with pytest.raises(ValueError, match="before_server_begin"):
        bp.listener("before_server_begin")(lambda app: None)

    def three(a: Any, b: Any, c: Any) -> None: ...

    with pytest.raises(TypeError, match=r"three.*f\(app\), f\(app, loop\)"):
        app.before_server_start(three)
    with pytest.raises(TypeError, match="three"):
        bp.after_server_stop(three)


async def test_injection_and_sequencing_through_the_test_client() -> None:
    app = new_app()
    seen: list[Any] = []

    @app.before_server_start
    async def only_app(app_: Any) -> None:
        seen.append(("only_app", app_ is app))
        await asyncio.sleep(0.01)
        seen.append(("only_app", "done"))

    @app.before_server_start
    def with_loop(app_: Any, loop: asyncio.AbstractEventLoop) -> None:
        seen.append(("with_loop", loop.is_running()))

    @app.after_server_start
    async def pool(app_: Any) -> None:
        app_.ctx.pool = "open"

    @app.get("/")
    async def home(request: Any) -> Any:
        return text(request.app.ctx.pool)

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).text == "open"
    assert seen == [("only_app", True), ("only_app", "done"), ("with_loop", True)]


def test_main_and_reload_events_with_changed_through_the_app(
    loop: asyncio.AbstractEventLoop,
) -> None:
    app = new_app()
    got: list[Any] = []

    @app.after_reload_trigger
    def reloaded(app: Any, changed: set[str]) -> None:
        got.append(sorted(changed))

    @app.main_process_start
    async def started(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        got.append(asyncio.get_running_loop() is loop)

    run_listeners_sync(app, "main_process_start", loop)
    run_listeners_sync(app, "after_reload_trigger", loop, changed={"/b.py", "/a.py"})
    assert got == [True, ["/a.py", "/b.py"]]


async def test_seed_nine_listener_sequence_in_one_worker() -> None:
    """lifecycle.md 7.3, the per-worker part (the server issue runs it in real processes)."""
    app = new_app("Demo")
    log: list[str] = []

    def make(n: int) -> Callable[..., Any]:
        async def listener(app: Any, loop: Any) -> None:
            log.append(f"listener_{n}")

        return listener

    app.main_process_start(make(0))
    app.listener("before_server_start")(make(1))
    app.before_server_start(make(2))
    app.listener("after_server_start")(make(3))
    app.after_server_start(make(4))
    app.listener("before_server_stop")(make(5))
    app.before_server_stop(make(6))
    app.listener("after_server_stop")(make(7))
    app.after_server_stop(make(8))
    app.main_process_stop(make(9))
    async with AsyncTestClient(app):
        log.append("serving")
    assert log == [
        "listener_1",
        "listener_2",
        "listener_3",
        "listener_4",
        "serving",
        "listener_6",
        "listener_5",
        "listener_8",
        "listener_7",
    ]


async def test_listener_added_to_an_attached_blueprint_applies_at_once() -> None:
    app, bp = new_app(), Blueprint(f"late{next(_names)}")
    app.blueprint(bp)
    ran: list[str] = []
    bp.before_server_start(tracer(ran, "late"))
    app.before_server_start(tracer(ran, "app"))
    async with AsyncTestClient(app):
        pass
    assert ran == ["app", "late"]


async def test_server_signal_handlers_and_listeners_are_ordered_together_on_the_app() -> None:
    app = new_app()
    ran: list[str] = []

    @app.before_server_stop
    async def listener(app: Any) -> None:
        ran.append("listener")

    @app.signal("server.shutdown.before", priority=1)
    async def via_signal(app: Any, loop: Any) -> None:
        ran.append("signal")

    async with AsyncTestClient(app):
        pass
    assert ran == ["listener", "signal"]  # teardown: exact reverse, higher priority last


async def test_startup_failure_propagates_out_of_the_test_client() -> None:
    app = new_app()

    @app.before_server_start
    def broken(app: Any) -> None:
        raise RuntimeError("cannot open pool")

    with pytest.raises(RuntimeError, match="cannot open pool"):
        async with AsyncTestClient(app):
            pass
