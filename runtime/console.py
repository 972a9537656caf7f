"""The console's part of an app: the names it defines itself and ``app.repl_ctx``.

``repl`` imports this module (one ``ReplContext``, one entry shape, one list of names);
``runtime.app.App`` holds a ``ReplContext`` as ``app.repl_ctx``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["CONSOLE_NAMES", "ReplContext", "ReplEntry"]

#: Names the developer console defines itself, in the order its banner lists them;
#: ``repl_ctx`` refuses them. ``repl`` imports this tuple: it is the one list.
CONSOLE_NAMES: tuple[str, ...] = (
    "app",
    "runtime",
    "client",
    "do",
    "routes",
    "history",
    "replay",
    "workers",
    "restart",
    "reload",
    "scale",
    "manage",
    "stop",
    "logs",
    "refresh",
    "help",
    "exit",
    "quit",
)


class ReplEntry(NamedTuple):
    name: str
    obj: Any
    desc: str


class ReplContext:
    """``app.repl_ctx``: names the developer console adds to its namespace.

    ``app.repl_ctx.add(obj, name=None, desc=None)`` or ``app.repl_ctx.name = obj``. The name
    defaults to ``obj.__name__`` (or its class name), the description to the first 40 characters
    of the docstring. Names the console defines itself (``app``, ``client``, ``do``, ...) raise
    ``ValueError``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_entries", {})

    def add(self, obj: Any, name: str | None = None, desc: str | None = None) -> None:
        if name is None:
            name = getattr(obj, "__name__", None) or type(obj).__name__
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"repl_ctx name {name!r} is not a Python identifier")
        if name in CONSOLE_NAMES:
            taken = ", ".join(sorted(CONSOLE_NAMES))
            raise ValueError(
                f"repl_ctx name {name!r} is taken by the console ({taken}); choose another name"
            )
        if desc is None:
            described = (
                inspect.isroutine(obj)
                or inspect.isclass(obj)
                or inspect.ismodule(obj)
                or type(obj).__module__ != "builtins"
            )
            doc = inspect.getdoc(obj) if described else None
            desc = " ".join((doc or "").split())[:40].rstrip()
        self._entries[name] = ReplEntry(name, obj, desc)

    def __setattr__(self, name: str, value: Any) -> None:
        self.add(value, name=name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._entries[name].obj
        except KeyError:
            raise AttributeError(f"repl_ctx has no name {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[ReplEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, Any]]:
        return [(entry.name, entry.obj) for entry in self._entries.values()]

    _entries: dict[str, ReplEntry]
