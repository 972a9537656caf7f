"""Lifecycle listeners: the eleven events, their registry and the one function that runs them.

Rules (``spec/lifecycle.md`` sections 2 and 4-8):

1. A listener is registered for one of eleven events (:class:`ListenerEvent`); names are
   case-insensitive and an unknown name is a ``ValueError`` that lists the valid ones.
2. Whether a listener gets ``app`` or ``app, loop`` (and ``changed=`` for
   ``after_reload_trigger``) is decided once, at registration, by binding its signature. A
   callable that fits no accepted form is a ``TypeError`` at registration. Listeners are never
   called speculatively.
3. Forward order is the sort key ``(-priority, origin, seq)``: higher priority first, app
   (origin 0) before blueprint (origin 1), then registration order. ``seq`` comes from one
   process-wide counter, so declaration order holds across every registry.
4. Start-up events run in forward order; teardown events run in the exact reverse of it.
5. Listeners of one event run one after another: each awaitable is awaited before the next starts.
6. Errors: a start-up listener that raises is logged and its exception re-raised (nothing after
   it runs); a teardown listener that raises is logged and the remaining listeners still run.
   Exceptions from the four server events are also reported through ``server.exception.report``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, NamedTuple

from runtime.log import error_logger


class ListenerEvent(str, Enum):
    MAIN_PROCESS_START = "main_process_start"
    MAIN_PROCESS_READY = "main_process_ready"
    MAIN_PROCESS_STOP = "main_process_stop"
    RELOAD_PROCESS_START = "reload_process_start"
    RELOAD_PROCESS_STOP = "reload_process_stop"
    BEFORE_RELOAD_TRIGGER = "before_reload_trigger"
    AFTER_RELOAD_TRIGGER = "after_reload_trigger"
    BEFORE_SERVER_START = "before_server_start"
    AFTER_SERVER_START = "after_server_start"
    BEFORE_SERVER_STOP = "before_server_stop"
    AFTER_SERVER_STOP = "after_server_stop"

    def __str__(self) -> str:
        return self.value


#: Events whose listeners run in the exact reverse of the forward order.
TEARDOWN_EVENTS: frozenset[ListenerEvent] = frozenset(
    {
        ListenerEvent.BEFORE_SERVER_STOP,
        ListenerEvent.AFTER_SERVER_STOP,
        ListenerEvent.MAIN_PROCESS_STOP,
        ListenerEvent.RELOAD_PROCESS_STOP,
    }
)

#: The four events that are also the built-in ``server.*`` signals.
SERVER_EVENTS: dict[ListenerEvent, str] = {
    ListenerEvent.BEFORE_SERVER_START: "server.init.before",
    ListenerEvent.AFTER_SERVER_START: "server.init.after",
    ListenerEvent.BEFORE_SERVER_STOP: "server.shutdown.before",
    ListenerEvent.AFTER_SERVER_STOP: "server.shutdown.after",
}

_BY_NAME: dict[str, ListenerEvent] = {e.value: e for e in ListenerEvent}
_VALID_NAMES = ", ".join(e.value for e in ListenerEvent)

#: Registration sequence shared by every registry (app and blueprints) in the process.
SEQUENCE: Iterator[int] = itertools.count()


def next_sequence() -> int:
    """The next registration number; listeners and signal handlers share this counter."""
    return next(SEQUENCE)


def normalize_event(name: str | ListenerEvent) -> ListenerEvent:
    """``"Before_Server_Start"`` -> ``ListenerEvent.BEFORE_SERVER_START``.

    Raises ``ValueError`` naming the valid events when ``name`` is not one of them.
    """
    if isinstance(name, ListenerEvent):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"A listener event must be a string such as 'before_server_start', not {name!r}"
        )
    event = _BY_NAME.get(name.strip().lower())
    if event is None:
        raise ValueError(f"Unknown listener event {name!r}. Valid events: {_VALID_NAMES}")
    return event


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else repr(fn)


_ARG = object()


def _binds(sig: inspect.Signature, args: tuple[object, ...], kwargs: dict[str, object]) -> bool:
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _wants_loop(fn: Callable[..., Any], event: ListenerEvent, keyword_style: bool) -> bool:
    """Decide from the signature whether ``fn`` takes the loop too; reject what fits no form."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: the plain form
        return False
    extras: dict[str, object] = (
        {"changed": _ARG} if event is ListenerEvent.AFTER_RELOAD_TRIGGER else {}
    )
    if keyword_style:
        if _binds(sig, (), {"app": _ARG, "loop": _ARG, **extras}):
            return True
        if _binds(sig, (), {"app": _ARG, **extras}):
            return False
        forms = "f(app, loop), f(**kwargs)"
    else:
        if _binds(sig, (_ARG,), extras):
            return False
        if _binds(sig, (_ARG, _ARG), extras):
            return True
        forms = "f(app), f(app, loop)"
        if extras:
            forms = "f(app, changed), f(app, loop, changed), f(app, **kwargs)"
    hint = (
        " (after_reload_trigger passes the changed files as the keyword argument 'changed')"
        if extras
        else ""
    )
    raise TypeError(
        f"Listener {_callable_name(fn)}{sig} cannot be registered for {event.value}: "
        f"it must accept one of {forms}{hint}"
    )


class Listener(NamedTuple):
    """One registered listener. ``origin`` is 0 for the app, 1 for a blueprint."""

    fn: Callable[..., Any]
    event: ListenerEvent
    priority: int
    origin: int
    seq: int
    wants_loop: bool
    keyword_style: bool

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (-self.priority, self.origin, self.seq)

    def call(self, app: Any, loop: asyncio.AbstractEventLoop, extras: dict[str, Any]) -> Any:
        if self.keyword_style:
            if self.wants_loop:
                return self.fn(app=app, loop=loop, **extras)
            return self.fn(app=app, **extras)
        if self.wants_loop:
            return self.fn(app, loop, **extras)
        return self.fn(app, **extras)


def _check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int (higher runs first), not {priority!r}")
    return priority


class ListenerRegistry:
    """The listeners of one app or blueprint, by event."""

    __slots__ = ("_by_event", "_ordered")

    def __init__(self) -> None:
        self._by_event: dict[ListenerEvent, list[Listener]] = {}
        self._ordered: dict[ListenerEvent, tuple[Listener, ...]] = {}

    def add(
        self,
        fn: Callable[..., Any],
        event: str | ListenerEvent,
        *,
        priority: int = 0,
        origin: int = 0,
        keyword_style: bool = False,
    ) -> Listener:
        """Register ``fn`` for ``event``; errors in the event name or signature raise here."""
        ev = normalize_event(event)
        if not callable(fn):
            raise TypeError(f"A listener must be callable, got {fn!r} for {ev.value}")
        listener = Listener(
            fn=fn,
            event=ev,
            priority=_check_priority(priority),
            origin=origin,
            seq=next_sequence(),
            wants_loop=_wants_loop(fn, ev, keyword_style),
            keyword_style=keyword_style,
        )
        self.attach(listener)
        return listener

    def attach(self, listener: Listener, *, origin: int | None = None) -> Listener:
        """Add an existing listener (e.g. a blueprint's), keeping its registration sequence."""
        if origin is not None and origin != listener.origin:
            listener = listener._replace(origin=origin)
        self._by_event.setdefault(listener.event, []).append(listener)
        self._ordered.pop(listener.event, None)
        return listener

    def remove(self, listener: Listener) -> None:
        """Remove one registered listener (``ValueError`` if it is not registered here)."""
        self._by_event.get(listener.event, []).remove(listener)
        self._ordered.pop(listener.event, None)

    def ordered(self, event: str | ListenerEvent) -> list[Listener]:
        """The listeners of ``event`` in the order they run (reversed for teardown events)."""
        ev = normalize_event(event)
        cached = self._ordered.get(ev)
        if cached is None:
            forward = sorted(self._by_event.get(ev, ()), key=lambda item: item.sort_key)
            if ev in TEARDOWN_EVENTS:
                forward.reverse()
            cached = self._ordered[ev] = tuple(forward)
        return list(cached)

    def has(self, event: str | ListenerEvent) -> bool:
        return bool(self._by_event.get(normalize_event(event)))

    def copy(self) -> ListenerRegistry:
        other = ListenerRegistry()
        other._by_event = {ev: list(items) for ev, items in self._by_event.items()}
        return other

    def __iter__(self) -> Iterator[Listener]:
        """Every listener, in registration order."""
        everything = [item for items in self._by_event.values() for item in items]
        return iter(sorted(everything, key=lambda item: item.seq))

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_event.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{ev.value}={len(items)}" for ev, items in self._by_event.items())
        return f"<ListenerRegistry {counts}>"


def _extras(ev: ListenerEvent, changed: set[str] | None) -> dict[str, Any]:
    if ev is ListenerEvent.AFTER_RELOAD_TRIGGER:
        return {"changed": set() if changed is None else changed}
    return {}


def _log_failure(ev: ListenerEvent, listener: Listener) -> None:
    error_logger.exception(
        "Exception in %s listener %s", ev.value, _callable_name(listener.fn), stacklevel=2
    )


def _report(app: Any, ev: ListenerEvent, exc: BaseException) -> None:
    """Report a server-event listener exception through ``server.exception.report`` (once)."""
    if ev not in SERVER_EVENTS:
        return
    router = getattr(app, "signal_router", None)
    report = getattr(router, "report", None)
    if report is not None:
        report(exc)


def _wake(app: Any, ev: ListenerEvent, loop: asyncio.AbstractEventLoop) -> None:
    """Resolve ``app.event("server.init.before")``-style waiters for the server events."""
    name = SERVER_EVENTS.get(ev)
    router = getattr(app, "signal_router", None)
    if name is not None and router is not None:
        wake = getattr(router, "wake_waiters", None)
        if wake is not None:
            wake(name, {"app": app, "loop": loop})


async def run_listeners(
    app: Any, event: str | ListenerEvent, *, changed: set[str] | None = None
) -> list[Exception]:
    """Run the listeners of ``event`` from ``app.listeners`` in the running loop.

    Start-up events re-raise the first exception; teardown events log every exception, go on, and
    return the exceptions they logged (so an ASGI adapter can answer ``lifespan.shutdown.failed``).
    """
    ev = normalize_event(event)
    loop = asyncio.get_running_loop()
    extras = _extras(ev, changed)
    teardown = ev in TEARDOWN_EVENTS
    failures: list[Exception] = []
    _wake(app, ev, loop)
    for listener in app.listeners.ordered(ev):
        try:
            result = listener.call(app, loop, extras)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            _log_failure(ev, listener)
            _report(app, ev, exc)
            if not teardown:
                raise
            failures.append(exc)
    return failures


def run_listeners_sync(
    app: Any,
    event: str | ListenerEvent,
    loop: asyncio.AbstractEventLoop,
    *,
    changed: set[str] | None = None,
) -> list[Exception]:
    """Run the listeners of ``event`` with ``loop`` not running (main and reloader processes).

    Sync listeners are called directly; every awaitable is run to completion with
    ``loop.run_until_complete`` before the next listener starts. Same error policy as
    :func:`run_listeners`.
    """
    ev = normalize_event(event)
    if loop.is_running():
        raise RuntimeError(
            f"run_listeners_sync({ev.value}) needs a loop that is not running; "
            "inside a running loop use 'await run_listeners(app, event)'"
        )
    extras = _extras(ev, changed)
    teardown = ev in TEARDOWN_EVENTS
    failures: list[Exception] = []
    for listener in app.listeners.ordered(ev):
        try:
            result = listener.call(app, loop, extras)
            if inspect.isawaitable(result):
                loop.run_until_complete(_await(result))
        except Exception as exc:
            _log_failure(ev, listener)
            if not teardown:
                raise
            failures.append(exc)
    return failures


async def _await(awaitable: Any) -> Any:
    return await awaitable


__all__ = [
    "SERVER_EVENTS",
    "TEARDOWN_EVENTS",
    "Listener",
    "ListenerEvent",
    "ListenerRegistry",
    "next_sequence",
    "normalize_event",
    "run_listeners",
    "run_listeners_sync",
]
