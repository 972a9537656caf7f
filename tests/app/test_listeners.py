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
