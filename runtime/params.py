"""Typed dynamic segments shared by routes (``/item/<id:int>``) and signals (``a.b.<id:int>``).

A segment is written ``<name>`` or ``<name:type>``; each type has a regular expression that the raw
text must match in full and a function that converts the text to the value handed to handlers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from uuid import UUID


class ParamType(NamedTuple):
    """One segment type; build it with :meth:`of`, which compiles ``pattern``."""

    name: str
    pattern: str
    convert: Callable[[str], Any]
    regex: re.Pattern[str]
    #: ``path`` may span several segments; every other type matches inside one segment.
    multi_segment: bool = False

    @classmethod
    def of(
        cls, name: str, pattern: str, convert: Callable[[str], Any], multi_segment: bool = False
    ) -> ParamType:
        return cls(name, pattern, convert, re.compile(pattern), multi_segment)

    def parse(self, text: str) -> Any:
        """Return the converted value, or raise ``ValueError`` when ``text`` is not of this type."""
        if self.regex.fullmatch(text) is None:
            raise ValueError(f"{text!r} is not a valid {self.name}")
        return self.convert(text)


def _ymd(text: str) -> date:
    return datetime.strptime(text, "%Y-%m-%d").date()


def _uuid(text: str) -> UUID:
    from uuid import UUID  # imported on first use: most apps never route on UUIDs

    return UUID(text)


PARAM_TYPES: dict[str, ParamType] = {
    t.name: t
    for t in (
        ParamType.of("str", r"[^/]+", str),
        ParamType.of("int", r"-?\d+", int),
        ParamType.of("float", r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", float),
        ParamType.of("alpha", r"[A-Za-z]+", str),
        ParamType.of("slug", r"[a-z0-9]+(?:-[a-z0-9]+)*", str),
        ParamType.of(
            "uuid",
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            _uuid,
        ),
        ParamType.of("ymd", r"\d{4}-(?:0\d|1[0-2])-(?:[0-2]\d|3[01])", _ymd),
        ParamType.of("path", r"[^/].*?", str, multi_segment=True),
    )
}

_SEGMENT = re.compile(r"^<([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_][A-Za-z0-9_]*))?>$")


def parse_segment(segment: str) -> tuple[str, ParamType] | None:
    """``"<id:int>"`` -> ``("id", int type)``; a static segment -> ``None``.

    Raises ``ValueError`` naming the known types when the type is unknown.
    """
    if not (segment.startswith("<") and segment.endswith(">")):
        return None
    m = _SEGMENT.match(segment)
    if m is None:
        raise ValueError(f"Invalid dynamic segment {segment!r}: write <name> or <name:type>")
    name, type_name = m.group(1), m.group(2) or "str"
    try:
        return name, PARAM_TYPES[type_name]
    except KeyError:
        known = ", ".join(sorted(PARAM_TYPES))
        raise ValueError(
            f"Unknown parameter type {type_name!r} in {segment!r}; known types: {known}"
        ) from None
