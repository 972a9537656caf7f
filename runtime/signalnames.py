"""Signal names: the built-in events, and parsing a name once, at registration.

Rules 1-3 of ``runtime.signals`` live here: a name has one part or three (only the last may be
dynamic), one-part names have a group of their own, and ``http``, ``server`` and ``websocket`` are
reserved for the built-in :class:`Event` members. ``SignalRouter`` (``runtime.signals``) stores
handlers by the :class:`SignalName` this module parses; dispatch only splits the event string.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, NamedTuple

from runtime.exceptions import InvalidSignal
from runtime.params import ParamType, parse_segment

__all__ = [
    "BUILTIN_CONTEXT",
    "BUILTIN_EVENTS",
    "RESERVED_NAMESPACES",
    "SIMPLE_GROUP",
    "Event",
    "Group",
    "SignalName",
    "event_text",
    "in_reserved_namespace",
    "parse_signal_name",
    "split_event",
    "wildcard_group",
]


class Event(Enum):
    """The built-in events the runtime dispatches (``spec/signals.md`` section 7)."""

    HTTP_LIFECYCLE_BEGIN = "http.lifecycle.begin"
    HTTP_LIFECYCLE_READ_HEAD = "http.lifecycle.read_head"
    HTTP_LIFECYCLE_REQUEST = "http.lifecycle.request"
    HTTP_LIFECYCLE_HANDLE = "http.lifecycle.handle"
    HTTP_ROUTING_BEFORE = "http.routing.before"
    HTTP_ROUTING_AFTER = "http.routing.after"
    HTTP_MIDDLEWARE_BEFORE = "http.middleware.before"
    HTTP_MIDDLEWARE_AFTER = "http.middleware.after"
    HTTP_LIFECYCLE_READ_BODY = "http.lifecycle.read_body"
    HTTP_HANDLER_BEFORE = "http.handler.before"
    HTTP_HANDLER_AFTER = "http.handler.after"
    HTTP_LIFECYCLE_EXCEPTION = "http.lifecycle.exception"
    HTTP_LIFECYCLE_RESPONSE = "http.lifecycle.response"
    HTTP_LIFECYCLE_SEND = "http.lifecycle.send"
    HTTP_LIFECYCLE_COMPLETE = "http.lifecycle.complete"
    SERVER_EXCEPTION_REPORT = "server.exception.report"
    SERVER_INIT_BEFORE = "server.init.before"
    SERVER_INIT_AFTER = "server.init.after"
    SERVER_SHUTDOWN_BEFORE = "server.shutdown.before"
    SERVER_SHUTDOWN_AFTER = "server.shutdown.after"
    WEBSOCKET_HANDLER_BEFORE = "websocket.handler.before"
    WEBSOCKET_HANDLER_AFTER = "websocket.handler.after"
    WEBSOCKET_HANDLER_EXCEPTION = "websocket.handler.exception"


RESERVED_NAMESPACES: frozenset[str] = frozenset({"http", "server", "websocket"})
BUILTIN_EVENTS: dict[str, Event] = {e.value: e for e in Event}

#: The keyword arguments the runtime passes to handlers of each built-in event.
BUILTIN_CONTEXT: dict[Event, tuple[str, ...]] = {
    Event.HTTP_LIFECYCLE_BEGIN: ("conn_info",),
    Event.HTTP_LIFECYCLE_READ_HEAD: ("head",),
    Event.HTTP_LIFECYCLE_REQUEST: ("request",),
    Event.HTTP_LIFECYCLE_HANDLE: ("request",),
    Event.HTTP_ROUTING_BEFORE: ("request",),
    Event.HTTP_ROUTING_AFTER: ("request", "route", "kwargs", "handler"),
    Event.HTTP_MIDDLEWARE_BEFORE: ("request", "response"),
    Event.HTTP_MIDDLEWARE_AFTER: ("request", "response"),
    Event.HTTP_LIFECYCLE_READ_BODY: ("body",),
    Event.HTTP_HANDLER_BEFORE: ("request",),
    Event.HTTP_HANDLER_AFTER: ("request",),
    Event.HTTP_LIFECYCLE_EXCEPTION: ("request", "exception"),
    Event.HTTP_LIFECYCLE_RESPONSE: ("request", "response"),
    Event.HTTP_LIFECYCLE_SEND: ("data",),
    Event.HTTP_LIFECYCLE_COMPLETE: ("conn_info",),
    Event.SERVER_EXCEPTION_REPORT: ("exception",),
    Event.WEBSOCKET_HANDLER_BEFORE: ("request", "websocket"),
    Event.WEBSOCKET_HANDLER_AFTER: ("request", "websocket"),
    Event.WEBSOCKET_HANDLER_EXCEPTION: ("request", "websocket", "exception"),
}
SIMPLE_GROUP = ("", "")  # one-part names: no parsed three-part name has empty parts
_STATIC_PART = re.compile(r"[A-Za-z0-9_\-]+")

Group = tuple[str, str]


class SignalName(NamedTuple):
    """A parsed signal name. ``action`` is set for static names, ``param`` for dynamic ones."""

    text: str
    group: Group
    action: str | None
    param: str | None = None
    param_type: ParamType | None = None

    @property
    def one_part(self) -> bool:
        return self.group == SIMPLE_GROUP

    @property
    def reserved(self) -> bool:
        return self.group[0] in RESERVED_NAMESPACES

    def match(self, action: str) -> dict[str, Any] | None:
        """The parameters this name gives to a dispatch of ``action`` (``None``: no match)."""
        if self.action is not None:
            return {} if action == self.action else None
        assert self.param is not None and self.param_type is not None
        try:
            return {self.param: self.param_type.parse(action)}
        except ValueError:
            return None


def event_text(event: str | Enum) -> str:
    """The string of an event given as a string or an ``Enum`` member."""
    if isinstance(event, Enum):
        event = event._value_
    if not isinstance(event, str):
        raise InvalidSignal(f"A signal event must be a string or an Enum of strings, not {event!r}")
    return event


def split_event(text: str) -> tuple[Group, str] | None:
    """``"a.b.c"`` -> ``(("a", "b"), "c")``; ``"ping"`` -> ``(("", ""), "ping")``; else ``None``.

    The action is everything after the second dot, so a dynamic part can receive ``"1.5"``.
    """
    if "." not in text:
        return (SIMPLE_GROUP, text) if text else None
    parts = text.split(".", 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        return None
    return (parts[0], parts[1]), parts[2]


_FORMS = "use 'namespace.reference.action' (the action may be '<name:type>') or one part ('ping')"


def parse_signal_name(event: str | Enum) -> SignalName:
    """Parse a signal name for registration; ``InvalidSignal`` says what is wrong with it."""
    text = event_text(event)
    parts = text.split(".")
    if len(parts) not in (1, 3):
        raise InvalidSignal(f"Invalid signal name {text!r}: {len(parts)} parts; {_FORMS}")
    *fixed, last = parts
    for part in fixed:
        if not _STATIC_PART.fullmatch(part):
            what = "dynamic" if part.startswith("<") else "invalid"
            raise InvalidSignal(
                f"Invalid signal name {text!r}: {what} part {part!r}; only the last part may be "
                f"dynamic and the others are letters, digits, '_' or '-'"
            )
    group: Group = (fixed[0], fixed[1]) if fixed else SIMPLE_GROUP
    try:
        dynamic = parse_segment(last)
    except ValueError as exc:
        raise InvalidSignal(f"Invalid signal name {text!r}: {exc}") from None
    if dynamic is not None:
        param, param_type = dynamic
        if param_type.multi_segment:
            raise InvalidSignal(
                f"Invalid signal name {text!r}: the 'path' type cannot be used in a signal name"
            )
        return SignalName(text, group, None, param, param_type)
    if not _STATIC_PART.fullmatch(last):
        raise InvalidSignal(f"Invalid signal name {text!r}: invalid part {last!r}; {_FORMS}")
    name = SignalName(text, group, last)
    if name.reserved and text not in BUILTIN_EVENTS:
        builtins = ", ".join(e.value for e in Event if e.value.startswith(group[0] + "."))
        raise InvalidSignal(
            f"Invalid signal name {text!r}: {group[0]!r} is a reserved namespace and this is not "
            f"one of its built-in events ({builtins}); use your own namespace such as "
            f"'app.{group[1]}.{last}'"
        )
    return name


def wildcard_group(text: str) -> Group:
    """``"a.b.*"`` -> ``("a", "b")``; ``"*"`` -> the one-part group."""
    if text == "*":
        return SIMPLE_GROUP
    parts = text.split(".")
    if len(parts) != 3 or not all(_STATIC_PART.fullmatch(p) for p in parts[:2]):
        raise InvalidSignal(
            f"Invalid event {text!r}: a wildcard is 'namespace.reference.*' (or '*' for "
            "one-part names)"
        )
    return parts[0], parts[1]


def in_reserved_namespace(text: str) -> bool:
    head, dot, _ = text.partition(".")
    return bool(dot) and head in RESERVED_NAMESPACES
