"""Signals: named events with handlers, dispatched in one process (``spec/signals.md``).

Rules:

1. A name is one part (``"ping"``, ``"<thing>"``) or three parts (``"a.b.c"``, ``"a.b.<x:int>"``);
   only the last part may be dynamic, with the parameter types of :mod:`runtime.params`. ``Enum``
   members stand for their ``.value``. Names are parsed once, at registration, into
   :class:`SignalName`; dispatch only splits the concrete event string and looks it up.
2. One-part names live in a private group, so ``"ping"`` never meets ``"a.b.ping"``.
3. ``http``, ``server`` and ``websocket`` are reserved: a static name there must be a built-in
   :class:`Event`. The four ``server.*`` events are lifecycle listeners and are stored in the app's
   :class:`~runtime.lifecycle.ListenerRegistry`, so they are ordered together with listeners.
4. Each handler is called with exactly its own dynamic values merged with the dispatch context
   (context wins). A static and a dynamic handler of the same event never see each other's values.
5. Handler ``(condition C, exclusive)`` runs for dispatch condition ``D`` when
   ``(D is None and not exclusive) or (D is None and not C) or D == C``; waiters use the same rule.
6. Order: priority descending, then registration order; ``reverse=True`` is the exact reverse.
7. Waiters are resolved (with a new dict) and detached before any handler runs.
8. A handler exception stops the dispatch, is reported once through ``server.exception.report``
   (non-inline) and is re-raised.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from runtime.exceptions import InvalidSignal, SignalNotFound
from runtime.lifecycle import (
    SERVER_EVENTS,
    Listener,
    ListenerEvent,
    ListenerRegistry,
    next_sequence,
    run_listeners,
)
from runtime.log import error_logger, logger
from runtime.signalnames import (
    BUILTIN_CONTEXT,
    BUILTIN_EVENTS,
    RESERVED_NAMESPACES,
    SIMPLE_GROUP,
    Event,
    Group,
    SignalName,
    event_text,
    in_reserved_namespace,
    parse_signal_name,
    split_event,
    wildcard_group,
)

_LISTENER_EVENT_OF: dict[str, ListenerEvent] = {name: ev for ev, name in SERVER_EVENTS.items()}
_LISTENER_EVENT_BY_MEMBER: dict[str, ListenerEvent] = {
    BUILTIN_EVENTS[name].name: ev for name, ev in _LISTENER_EVENT_OF.items()
}
_REPORT = Event.SERVER_EXCEPTION_REPORT.value
_REPORTED_FLAG = "__vivace_reported__"
_CACHE_LIMIT = 4096


# --- handlers and waiters ----------------------------------------------------------------------


def _noop(**_: Any) -> None:
    return None


def _name_of(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


def _matches(exclusive: bool, own: Mapping[str, Any], dispatched: Mapping[str, Any] | None) -> bool:
    if dispatched is None:
        return not exclusive or not own
    return dispatched == own


@dataclass(eq=False, slots=True)
class SignalHandler:
    """One registered handler of a signal name (compared by identity; never mutated)."""

    fn: Callable[..., Any]
    name: SignalName
    condition: dict[str, Any]
    exclusive: bool
    priority: int
    seq: int
    blueprint: str | None = None

    def accepts(self, condition: Mapping[str, Any] | None) -> bool:
        return _matches(self.exclusive, self.condition, condition)


@dataclass(eq=False, slots=True)
class _Waiter:
    name: SignalName | None  # None: wildcard "a.b.*" / "*"
    group: Group
    condition: dict[str, Any]
    exclusive: bool
    future: asyncio.Future[dict[str, Any]] = field(repr=False)

    def params_for(self, action: str) -> dict[str, Any] | None:
        if self.name is None:
            return {}
        return self.name.match(action)


_Entry = tuple[SignalHandler, dict[str, Any]]


def _check_handler_signature(fn: Callable[..., Any], name: SignalName) -> None:
    """Reject at registration a handler that cannot take the keywords it will certainly get."""
    required: tuple[str, ...] = ()
    builtin = BUILTIN_EVENTS.get(name.text)
    if builtin is not None:
        required = BUILTIN_CONTEXT.get(builtin, ())
    elif name.param is not None:
        required = (name.param,)
    if not required:
        return
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:  # partial: the dispatch context may supply the handler's other parameters
        sig.bind_partial(**dict.fromkeys(required))
    except TypeError:
        wanted = ", ".join(required)
        raise TypeError(
            f"Signal handler {_name_of(fn)}{sig} for {name.text!r} must accept the keyword "
            f"arguments {wanted} (or **kwargs)"
        ) from None


#: The built-in events the request path dispatches (everything but the four listener events).
REQUEST_PATH_EVENTS: tuple[Event, ...] = tuple(
    e for e in Event if e.value not in _LISTENER_EVENT_OF
)


class _Guards:
    """One boolean attribute per request-path :class:`Event` member, e.g.
    ``guards.HTTP_LIFECYCLE_SEND``: true when dispatching it would run a handler or wake a waiter.
    """

    __slots__ = tuple(e.name for e in REQUEST_PATH_EVENTS)

    def __init__(self) -> None:
        for member in REQUEST_PATH_EVENTS:
            setattr(self, member.name, False)

    def __repr__(self) -> str:
        on = [m.name for m in REQUEST_PATH_EVENTS if getattr(self, m.name)]
        return f"<Guards on={on}>"


# --- the router --------------------------------------------------------------------------------


class SignalRouter:
    """Holds the signal handlers and waiters of one app and dispatches events to them."""

    def __init__(self, app: Any, listeners: ListenerRegistry) -> None:
        self.app = app
        self.listeners = listeners
        #: ``guards.HTTP_LIFECYCLE_REQUEST`` is true when dispatching that event would do anything;
        #: the request path reads it (one attribute lookup) before dispatching a built-in event.
        self.guards = _Guards()
        self._groups: dict[Group, list[SignalHandler]] = {}
        self._waiters: dict[Group, list[_Waiter]] = {}
        self._hot_names: frozenset[str] = frozenset()
        self._resolved: dict[str, tuple[_Entry, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.finalized = False

    # registration ------------------------------------------------------------------------------

    def add(
        self,
        handler: Callable[..., Any] | None,
        event: str | Enum,
        *,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
        priority: int = 0,
        blueprint: str | None = None,
    ) -> SignalHandler | Listener:
        """Register ``handler`` (``None``: a no-op) for ``event``; bad input raises here."""
        name = parse_signal_name(event)
        if handler is None:
            handler = _noop
        elif not callable(handler):
            raise TypeError(f"A signal handler must be callable, got {handler!r} for {name.text!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int (higher runs first), not {priority!r}")
        if condition is not None and not isinstance(condition, Mapping):
            raise TypeError(f"condition must be a dict, not {condition!r} (signal {name.text!r})")
        listener_event = _LISTENER_EVENT_OF.get(name.text)
        if listener_event is not None:
            if condition:
                raise InvalidSignal(
                    f"{name.text!r} is a server lifecycle event and takes no condition"
                )
            return self.listeners.add(
                handler,
                listener_event,
                priority=priority,
                origin=0 if blueprint is None else 1,
                keyword_style=True,
            )
        _check_handler_signature(handler, name)
        own = dict(condition or {})
        if blueprint is not None:
            own["__blueprint__"] = blueprint
            exclusive = False
        record = SignalHandler(
            fn=handler,
            name=name,
            condition=own,
            exclusive=bool(exclusive),
            priority=priority,
            seq=next_sequence(),
            blueprint=blueprint,
        )
        self._groups.setdefault(name.group, []).append(record)
        self._changed()
        return record

    def finalize(self) -> None:
        """Precompute the guards; registration stays possible afterwards (it updates them)."""
        self._changed()
        self.finalized = True

    def handlers(self) -> list[SignalHandler]:
        """Every registered signal handler (``server.*`` handlers live in the listener registry)."""
        everything = [h for items in self._groups.values() for h in items]
        return sorted(everything, key=lambda h: h.seq)

    def has_handlers(self, event: Event | str) -> bool:
        """Would dispatching ``event`` run a handler or wake a waiter? O(1) for :class:`Event`."""
        if event.__class__ is Event:  # member names: str hashing is cached, Enum's is not
            name: str = event._name_
            if name in self._hot_names:
                return True
            listener_event = _LISTENER_EVENT_BY_MEMBER.get(name)
            return listener_event is not None and self.listeners.has(listener_event)
        text = event_text(event)
        listener_event = _LISTENER_EVENT_OF.get(text)
        if listener_event is not None:
            return self.listeners.has(listener_event)
        split = split_event(text)
        return bool(self._resolve(text)) or (
            split is not None and self._waiting(split[0], split[1])
        )

    def _changed(self) -> None:
        self._resolved.clear()
        self._refresh_guards()

    def _refresh_guards(self) -> None:
        hot: set[Event] = set()
        for member in REQUEST_PATH_EVENTS:
            split = split_event(member.value)
            assert split is not None
            group, action = split
            handlers = self._groups.get(group, ())
            if any(h.name.match(action) is not None for h in handlers) or self._waiting(
                group, action
            ):
                hot.add(member)
        self._hot_names = frozenset(member.name for member in hot)
        for member in REQUEST_PATH_EVENTS:
            setattr(self.guards, member.name, member in hot)

    def _waiting(self, group: Group, action: str) -> bool:
        return any(w.params_for(action) is not None for w in self._waiters.get(group, ()))

    # lookup ------------------------------------------------------------------------------------

    def _resolve(self, text: str) -> tuple[_Entry, ...]:
        """The handlers a dispatch of ``text`` reaches, in forward order, with their own params."""
        cached = self._resolved.get(text)
        if cached is not None:
            return cached
        split = split_event(text)
        entries: list[_Entry] = []
        if split is not None:
            group, action = split
            for handler in self._groups.get(group, ()):
                params = handler.name.match(action)
                if params is not None:
                    entries.append((handler, params))
            entries.sort(key=lambda e: (-e[0].priority, e[0].seq))
        resolved = tuple(entries)
        if len(self._resolved) >= _CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[text] = resolved
        return resolved

    # dispatch ----------------------------------------------------------------------------------

    async def dispatch(
        self,
        event: str | Enum,
        *,
        context: Mapping[str, Any] | None = None,
        condition: Mapping[str, Any] | None = None,
        fail_not_found: bool = True,
        inline: bool = False,
        reverse: bool = False,
    ) -> Any:
        """Run the handlers of ``event`` (``spec/signals.md`` section 3).

        ``inline=False`` returns a started ``asyncio.Task`` whose result is the inline result;
        ``inline=True`` returns the first truthy handler result (or ``None``).
        """
        text = event if event.__class__ is str else event_text(event)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Dispatching signal: %s", text)
        ctx: Mapping[str, Any] = {} if context is None else context
        listener_event = _LISTENER_EVENT_OF.get(text)
        if listener_event is not None:
            coro: Coroutine[Any, Any, Any] = self._run_server_event(listener_event)
        else:
            entries = self._resolve(text)
            if self._waiters:
                self.wake_waiters(text, ctx, condition, entries)
            if not entries:
                if inline and fail_not_found and not in_reserved_namespace(text):
                    raise SignalNotFound(f"Could not find signal {text}")
                if inline:
                    return None
                coro = _nothing()
            else:
                coro = self._run(text, entries, ctx, condition, reverse)
        if inline:
            return await coro
        task = asyncio.get_running_loop().create_task(coro)
        await asyncio.sleep(0)
        return task

    async def dispatch_builtin(
        self,
        event: Event,
        context: dict[str, Any],
        condition: dict[str, Any] | None = None,
        *,
        reverse: bool = False,
    ) -> Any:
        """Dispatch a built-in event inline from the request path (never ``SignalNotFound``)."""
        return await self.dispatch(
            event,
            context=context,
            condition=condition,
            inline=True,
            fail_not_found=False,
            reverse=reverse,
        )

    async def _run_server_event(self, listener_event: ListenerEvent) -> None:
        await run_listeners(self.app, listener_event)

    async def _run(
        self,
        text: str,
        entries: tuple[_Entry, ...],
        context: Mapping[str, Any],
        condition: Mapping[str, Any] | None,
        reverse: bool,
    ) -> Any:
        for handler, params in reversed(entries) if reverse else entries:
            if not handler.accepts(condition):
                continue
            try:
                result = handler.fn(**{**params, **context}) if params else handler.fn(**context)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                if self._debug():
                    error_logger.exception(
                        "Exception in signal handler %s for %s", _name_of(handler.fn), text
                    )
                if text != _REPORT:
                    self.report(exc)
                raise
            if result:
                return result
        return None

    def _debug(self) -> bool:
        debug = getattr(self.app, "debug", None)
        if debug is None:
            config = getattr(self.app, "config", None)
            debug = config.get("DEBUG", False) if isinstance(config, Mapping) else False
        return bool(debug)

    # reporting ---------------------------------------------------------------------------------

    def report(self, exc: BaseException) -> asyncio.Task[Any] | None:
        """Dispatch ``server.exception.report`` for ``exc`` in a background task, once.

        Needs a running loop. Returns the task, or ``None`` when ``exc`` was already reported or
        nothing listens (the exception is marked as reported either way).
        """
        if is_reported(exc):
            return None
        mark_reported(exc)
        entries = self._resolve(_REPORT)
        if not entries and not self._waiters.get(("server", "exception")):
            return None
        if self._waiters:
            self.wake_waiters(_REPORT, {"exception": exc}, None, entries)
        if not entries:
            return None
        task = asyncio.get_running_loop().create_task(
            self._run(_REPORT, entries, {"exception": exc}, None, False)
        )
        self._tasks.add(task)
        task.add_done_callback(self._report_done)
        return task

    def _report_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            error_logger.error("Exception in a server.exception.report handler", exc_info=exc)

    # waiters -----------------------------------------------------------------------------------

    def wake_waiters(
        self,
        event: str,
        context: Mapping[str, Any],
        condition: Mapping[str, Any] | None = None,
        entries: tuple[_Entry, ...] | None = None,
    ) -> None:
        """Resolve and detach every waiter matching this dispatch (before handlers run)."""
        split = split_event(event)
        if split is None:
            return
        group, action = split
        waiters = self._waiters.get(group)
        if not waiters:
            return
        keep: list[_Waiter] = []
        woke = False
        for waiter in waiters:
            if waiter.future.done():
                woke = True
                continue
            params = waiter.params_for(action)
            if params is None or not _matches(waiter.exclusive, waiter.condition, condition):
                keep.append(waiter)
                continue
            if waiter.name is None:  # wildcard: the values of the definitions that matched
                for _, own in entries if entries is not None else self._resolve(event):
                    params.update(own)
            waiter.future.set_result({**params, **context})
            woke = True
        if woke:
            self._set_waiters(group, keep)

    def _set_waiters(self, group: Group, waiters: list[_Waiter]) -> None:
        if waiters:
            self._waiters[group] = waiters
        else:
            self._waiters.pop(group, None)
        if group[0] in RESERVED_NAMESPACES:
            self._refresh_guards()

    async def wait_for(
        self,
        event: str | Enum,
        timeout: float | None = None,
        *,
        condition: Mapping[str, Any] | None = None,
        exclusive: bool = True,
    ) -> dict[str, Any]:
        """Wait for the next matching dispatch of ``event`` and return a new context dict.

        ``"a.b.*"`` (or ``"*"`` for one-part names) waits for any action. ``TimeoutError`` after
        ``timeout`` seconds; ``SignalNotFound`` when no signal exists for the definition (unless
        ``app.config.EVENT_AUTOREGISTER``).
        """
        text = event_text(event)
        name: SignalName | None
        if text == "*" or text.endswith(".*"):
            group = wildcard_group(text)
            name = None
        else:
            name = parse_signal_name(text)
            group = name.group
        if not self._registered(name, group, text):
            config = getattr(self.app, "config", None)
            if isinstance(config, Mapping) and config.get("EVENT_AUTOREGISTER"):
                if name is None:
                    prefix = "" if group == SIMPLE_GROUP else f"{group[0]}.{group[1]}."
                    self.add(None, f"{prefix}<__action__>")
                else:
                    self.add(None, text)
            else:
                raise SignalNotFound(f"Could not find signal {text}")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(name, group, dict(condition or {}), bool(exclusive), future)
        self._set_waiters(group, [*self._waiters.get(group, ()), waiter])
        try:
            if timeout is None:
                return await future
            try:
                return await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:  # Python 3.10: not yet the built-in TimeoutError
                raise TimeoutError(f"no {text} within {timeout} s") from None
        finally:
            remaining = self._waiters.get(group)
            if remaining is not None and waiter in remaining:
                self._set_waiters(group, [w for w in remaining if w is not waiter])

    def _registered(self, name: SignalName | None, group: Group, text: str) -> bool:
        if group[0] in RESERVED_NAMESPACES:  # built-in events always exist
            return True
        handlers = self._groups.get(group, ())
        if name is None:
            return bool(handlers)
        if name.action is not None:
            return bool(self._resolve(text))
        return any(h.name.action is None for h in handlers)


async def _nothing() -> None:
    return None


def is_reported(exc: BaseException) -> bool:
    """Has ``exc`` already gone through ``server.exception.report``?"""
    return bool(getattr(exc, _REPORTED_FLAG, False))


def mark_reported(exc: BaseException) -> None:
    """Mark ``exc`` as reported so that it is not reported again."""
    try:
        setattr(exc, _REPORTED_FLAG, True)
    except AttributeError:  # pragma: no cover - exceptions with __slots__ and no __dict__
        pass


__all__ = [
    "BUILTIN_CONTEXT",
    "BUILTIN_EVENTS",
    "RESERVED_NAMESPACES",
    "Event",
    "SignalHandler",
    "SignalName",
    "SignalRouter",
    "event_text",
    "is_reported",
    "mark_reported",
    "parse_signal_name",
]
