from __future__ import annotations

import uuid
from datetime import date

import pytest

from runtime.params import PARAM_TYPES, parse_segment

UUID_TEXT = "12345678-1234-5678-1234-567812345678"


@pytest.mark.parametrize(
    ("type_name", "text", "value"),
    [
        ("str", "abc", "abc"),
        ("int", "-12", -12),
        ("float", "1.5", 1.5),
        ("float", "3", 3.0),
        ("alpha", "abcXYZ", "abcXYZ"),
        ("slug", "hello-world-2", "hello-world-2"),
        ("uuid", UUID_TEXT, uuid.UUID(UUID_TEXT)),
        ("ymd", "2024-02-29", date(2024, 2, 29)),
        ("path", "a/b/c.txt", "a/b/c.txt"),
    ],
)
def test_each_type_parses_its_values(type_name: str, text: str, value: object) -> None:
    assert PARAM_TYPES[type_name].parse(text) == value


@pytest.mark.parametrize(
    ("type_name", "text"),
    [
        ("int", "1.5"),
        ("int", "abc"),
        ("float", "x"),
        ("alpha", "ab1"),
        ("slug", "Hello"),
        ("slug", "a--b"),
        ("uuid", "1234"),
        ("ymd", "2024-13-01"),
        ("ymd", "2023-02-30"),
        ("str", "a/b"),
    ],
)
def test_each_type_rejects_what_it_does_not_match(type_name: str, text: str) -> None:
    with pytest.raises(ValueError):
        PARAM_TYPES[type_name].parse(text)


def test_parse_segment() -> None:
    assert parse_segment("static") is None
    name, kind = parse_segment("<id:int>") or ("", PARAM_TYPES["str"])
    assert (name, kind.name) == ("id", "int")
    assert parse_segment("<thing>") == ("thing", PARAM_TYPES["str"])
    with pytest.raises(ValueError, match="known types"):
        parse_segment("<id:number>")
    with pytest.raises(ValueError, match="<name:type>"):
        parse_segment("<1bad>")
