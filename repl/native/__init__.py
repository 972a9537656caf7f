"""What makes the console feel native in each framework: its names and the scope of a statement.

``collect(host, start=...)`` returns the ``Section``s of names the console adds besides its own,
in the order they are applied (a later section's name replaces an earlier one's):

1. the framework's own (``repl.native.django``: every installed app's models, as Django 5.2's
   ``manage.py shell`` imports them; ``repl.native.flask``: ``app.make_shell_context()``, what
   ``flask shell`` adds; ``repl.native.fastapi``: ``openapi``);
2. packages' providers, the ``vivace.console`` entry point group (``repl.native.providers``);
3. the project's providers, ``console = ["module:function"]`` in ``[tool.vivace]``.

A source that fails is one line in ``Native.problems``; the others still apply.

``scopes(host, current)`` returns what each statement runs inside: Flask's application context
(pushed per statement, on the thread the statement runs on), Quart's (async, pushed in the
statement's task; a plain statement runs in a copy of that task's context).

A framework is never imported here: each adapter runs only for an object whose class comes from
that framework (its module is imported already).
"""

from __future__ import annotations

import inspect
import reprlib
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from runtime.hosting import Hosted

__all__ = [
    "Native",
    "Scopes",
    "Section",
    "collect",
    "describe_object",
    "framework_object",
    "one_line",
    "scopes",
]


@dataclass
class Section:
    """One source of console names and how the banner shows it."""

    title: str
    names: dict[str, Any]
    #: banner lines under the title; empty: one line per name with its description
    lines: list[str] = field(default_factory=list)
    #: lines after the names (what else works, e.g. the application context)
    notes: list[str] = field(default_factory=list)
    #: what a note calls this source ("Django's shell imports", "[tool.vivace] 'm:f'")
    source: str = ""


@dataclass
class Native:
    sections: list[Section] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scopes:
    """What a statement runs inside (``repl.evaluate.Evaluator`` takes both)."""

    #: entered on the thread that runs a plain statement (Flask: ``app.app_context()``)
    plain: Callable[[], AbstractContextManager[object]] | None = None
    #: entered in the task of a statement that awaits (and of a plain one when ``plain`` is None)
    task: Callable[[], AbstractAsyncContextManager[object]] | None = None
    #: ends what the scopes hold (the application context's teardown), when the console closes
    close: Callable[[], None] | None = None


def framework_object(target: object, package: str) -> Any:
    """``target``, or the object it wraps (``.app``, middleware), whose class is ``package``'s."""
    obj: object = target
    for _ in range(8):
        if any((cls.__module__ or "").split(".")[0] == package for cls in type(obj).__mro__):
            return obj
        inner = getattr(obj, "app", None)
        if inner is None or inner is obj:
            break
        obj = inner
    return None


def _public_module(cls: type) -> str:
    """``pathlib`` for ``pathlib._local.Path`` (Python 3.13): the nearest parent package that
    exports the class under its name, when its own module is private."""
    module = cls.__module__ or ""
    parts = module.split(".")
    while len(parts) > 1 and any(part.startswith("_") for part in parts[1:]):
        parts.pop()
        parent = sys.modules.get(".".join(parts))
        if parent is not None and getattr(parent, cls.__name__, None) is cls:
            return parent.__name__
    return module


def describe_object(obj: object, width: int = 60) -> str:
    """A short description for the banner: ``class catalog.models.Product``, a docstring line."""
    if inspect.isclass(obj):
        return f"class {_public_module(obj)}.{obj.__qualname__}"
    if inspect.ismodule(obj):
        return f"module {obj.__name__}"
    if type(obj).__name__ == "LocalProxy":  # Flask's g: its docstring is the proxy's
        return "the object of the current application context"
    if type(obj).__module__ == "builtins" and not inspect.isroutine(obj):
        text = f"{type(obj).__name__} {reprlib.repr(obj)}"
        return text if len(text) <= width else text[: width - 3].rstrip() + "..."
    doc = ""
    if inspect.isroutine(obj) or type(obj).__module__ != "builtins":
        doc = " ".join((inspect.getdoc(obj) or "").split())
    if inspect.isroutine(obj):
        text = f"{getattr(obj, '__qualname__', '')}(): {doc}" if doc else "a function"
    else:
        text = f"{type(obj).__name__}: {doc}" if doc else type(obj).__name__
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def collect(host: Hosted, *, start: str) -> Native:
    """Every section of names for ``host`` (the framework's, packages', the project's).

    ``start`` is the directory the nearest ``pyproject.toml`` is looked for from. Runs where plain
    statements run (the console's thread with no event loop), so a provider may use Django's ORM.
    """
    from repl.native import providers

    native = Native()
    framework = host.framework
    try:
        if framework == "Django":
            from repl.native.django import django_section

            native.sections += django_section()
        elif framework in ("Flask", "Quart"):
            from repl.native.flask import shell_context_section

            native.sections += shell_context_section(host.target, framework)
        elif framework == "FastAPI":
            from repl.native.fastapi import fastapi_section

            native.sections += fastapi_section(lambda: host.target)
        elif framework in ("Starlette", "Litestar"):
            native.sections.append(
                Section(
                    f"{framework}:",
                    {},
                    source=framework,
                    notes=[
                        "app.state is what the app's lifespan start-up made in this process; "
                        "do() requests see it."
                    ],
                )
            )
    except Exception as exc:
        native.problems.append(f"console names of {framework} failed: {one_line(exc)}")
    found, problems = providers.provided(host.target, start=start)
    native.sections += found
    native.problems += problems
    return native


def scopes(host: Hosted, current: Callable[[], object]) -> Scopes:
    """The statement scopes for ``host``'s framework; ``current()`` is the console's ``app``."""
    if host.framework == "Flask":
        from repl.native.flask import flask_scopes

        return flask_scopes(current)
    if host.framework == "Quart":
        from repl.native.flask import quart_scopes

        return quart_scopes(current)
    return Scopes()
