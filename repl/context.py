"""Names the user adds to the console, and reading them from ``app.repl_ctx``.

The App facade owns ``app.repl_ctx`` (``runtime`` never imports ``repl``), so this module only
reads it, whatever its exact shape: an object with ``entries()``, a mapping, or an iterable of
entries that carry ``name``, ``obj``/``value`` and ``desc``/``description``.
``ReplContext`` is the same registry for code that builds a console without an app (tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One user name in the console namespace."""

    name: str
    value: object
    description: str


def default_name(obj: object) -> str:
    name = getattr(obj, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        return name
    return type(obj).__name__


def default_description(obj: object) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    if doc == getattr(type(obj), "__doc__", None) and not isinstance(obj, type):
        doc = ""
    text = " ".join(str(doc).split())
    return text if len(text) <= 40 else text[:37] + "..."


class ReplContext:
    """A registry: ``add(obj, name=None, desc=None)``; a taken name raises ``ValueError``."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._entries: dict[str, Entry] = {}

    def add(self, obj: object, name: str | None = None, desc: str | None = None) -> None:
        key = name if name is not None else default_name(obj)
        if not key.isidentifier():
            raise ValueError(f"{key!r} is not a Python identifier; pass name='...' to add()")
        if key in self._reserved:
            raise ValueError(
                f"{key!r} is a built-in console name; pass another name, e.g. name='my_{key}'"
            )
        if key in self._entries:
            raise ValueError(f"{key!r} was already added to the console context")
        description = desc if desc is not None else default_description(obj)
        self._entries[key] = Entry(key, obj, description)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


def _entry_from(name: object, item: object) -> Entry:
    if isinstance(item, Entry):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        value, desc = item
        return Entry(str(name), value, str(desc or ""))
    for attr in ("obj", "value"):
        if hasattr(item, attr):
            desc = getattr(item, "desc", None) or getattr(item, "description", None) or ""
            key = getattr(item, "name", None) or name
            return Entry(str(key), getattr(item, attr), str(desc))
    return Entry(str(name), item, default_description(item))


def read_entries(repl_ctx: object) -> list[Entry]:
    """The user entries of ``app.repl_ctx`` in whatever shape the App facade keeps them."""
    if repl_ctx is None:
        return []
    source: Any = repl_ctx
    entries_fn = getattr(repl_ctx, "entries", None)
    if callable(entries_fn):
        source = entries_fn()
    if isinstance(source, Mapping):
        return [_entry_from(k, v) for k, v in source.items()]
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes)):
        items = list(source)
        if all(isinstance(i, Entry) or hasattr(i, "obj") or hasattr(i, "value") for i in items):
            return [_entry_from(getattr(i, "name", "?"), i) for i in items]
    items_fn = getattr(source, "items", None)
    if callable(items_fn):
        return [_entry_from(k, v) for k, v in items_fn()]
    data = getattr(repl_ctx, "__dict__", None)
    if isinstance(data, dict):
        return [_entry_from(k, v) for k, v in data.items() if not k.startswith("_")]
    return []
