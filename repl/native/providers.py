"""Console names that projects and packages add: ``[tool.vivace] console`` and ``vivace.console``.

* A project lists providers in the nearest ``pyproject.toml`` (from the working directory up)::

      [tool.vivace]
      console = ["myproject.console:names"]

* A package declares an entry point in the ``vivace.console`` group::

      [project.entry-points."vivace.console"]
      mypackage = "mypackage.console:names"

A provider is a function of no argument, or of one (the console's ``app``), that returns a mapping
of names to objects. Packages' providers run first, then the project's (a project's name replaces a
package's). A provider that cannot be imported, raises, or returns something else is reported in
one line and skipped; the console opens anyway.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from repl.native import Section, one_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ENTRY_POINT_GROUP", "configured", "find_pyproject", "provided"]

ENTRY_POINT_GROUP = "vivace.console"
KEY = "console"


def find_pyproject(start: str) -> Path | None:
    """The nearest ``pyproject.toml`` from ``start`` upwards."""
    here = Path(start).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def configured(start: str) -> tuple[Path | None, list[str], list[str]]:
    """(pyproject path, the ``module:function`` strings of ``[tool.vivace] console``, problems)."""
    path = find_pyproject(start)
    if path is None:
        return None, [], []
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return path, [], [f"console names: {path} could not be read: {one_line(exc)}"]
    tool = data.get("tool")
    section = tool.get("vivace") if isinstance(tool, dict) else None
    if not isinstance(section, dict) or KEY not in section:
        return path, [], []
    value = section[KEY]
    example = 'console = ["myproject.console:names"]'
    if not isinstance(value, list):
        problem = f"console names: [tool.vivace] console in {path} must be a list: {example}"
        return path, [], [problem]
    refs: list[str] = []
    problems: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _valid_ref(item):
            problems.append(
                f"console names: [tool.vivace] console in {path}: {item!r} is not "
                f'"module:function" ({example})'
            )
            continue
        refs.append(item)
    return path, refs, problems


def _valid_ref(ref: str) -> bool:
    module, sep, attr = ref.partition(":")
    return bool(sep) and all(part.isidentifier() for part in (*module.split("."), *attr.split(".")))


def _resolve(ref: str) -> Callable[..., object]:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is a {type(obj).__name__}, not a function")
    return cast(Callable[..., object], obj)


def _takes_app(fn: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return any(p.kind in positional for p in parameters)


def call_provider(fn: Callable[..., object], app: object) -> dict[str, Any]:
    """The names ``fn`` provides; ``TypeError``/``ValueError`` say what is wrong with them."""
    result = fn(app) if _takes_app(fn) else fn()
    if not isinstance(result, Mapping):
        raise TypeError(f"returned a {type(result).__name__}, not a mapping of names to objects")
    names: dict[str, Any] = {}
    for name, obj in result.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"returned the name {name!r}, which is not a Python identifier")
        names[name] = obj
    return names


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(found, key=lambda ep: (ep.name, ep.value))


def provided(app: object, *, start: str) -> tuple[list[Section], list[str]]:
    """The sections of every provider (packages' first, then the project's) and the problems."""
    sections: list[Section] = []
    problems: list[str] = []
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        origin = f" ({dist.name} {dist.version})" if dist is not None else ""
        label = f"entry point {ENTRY_POINT_GROUP} {ep.name} = {ep.value}{origin}"
        try:
            names = call_provider(ep.load(), app)
        except Exception as exc:
            problems.append(f"console names from {label} failed: {one_line(exc)}")
            continue
        source = f"entry point {ep.name!r}{origin}"
        sections.append(Section(f"From the {label}:", names, source=source))
    path, refs, bad = configured(start)
    problems += bad
    where = _shown(path) if path is not None else ""
    for ref in refs:
        label = f"[tool.vivace] console {ref!r} ({where})"
        try:
            names = call_provider(_resolve(ref), app)
        except Exception as exc:
            problems.append(f"console names from {label} failed: {one_line(exc)}")
            continue
        sections.append(Section(f"From {label}:", names, source=f"[tool.vivace] {ref!r}"))
    return sections, problems


def _shown(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return relative if not relative.startswith("..") else str(path)
