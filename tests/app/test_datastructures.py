"""Headers, QueryArgs, RequestParameters, File and ConnInfo."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.datastructures import ConnInfo, File, Headers, QueryArgs, RequestParameters

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1
)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)


def test_headers_case_insensitive_and_multi_valued() -> None:
    h = Headers([("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("set-cookie", "b=2")])
    assert h["content-type"] == "text/plain"
    assert h.get("SET-COOKIE") == "a=1"
    assert h.getall("Set-Cookie") == ["a=1", "b=2"]
    assert h.getlist("set-cookie") == ["a=1", "b=2"]
    assert "CONTENT-type" in h
    assert "missing" not in h
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert h.getall("missing") == []
    assert len(h) == 3
    assert h.items() == [
        ("Set-Cookie", "a=1"),
        ("Content-Type", "text/plain"),
        ("set-cookie", "b=2"),
    ]
    assert h.keys() == ["set-cookie", "content-type"]
    assert list(h) == ["set-cookie", "content-type"]
    with pytest.raises(KeyError):
        h["missing"]


def test_headers_mutation_keeps_order_and_replaces_all() -> None:
    h = Headers({"A": "1"})
    h.add("b", "2")
    h.add("a", "3")
    assert h.getall("a") == ["1", "3"]
    h["A"] = "9"
    assert h.getall("a") == ["9"]
    assert h.items() == [("b", "2"), ("A", "9")]
    del h["b"]
    assert "b" not in h
    with pytest.raises(KeyError):
        del h["b"]
    assert h.setdefault("c", "x") == "x"
    assert h.setdefault("c", "y") == "x"
    assert h.pop("c") == "x"
    assert h.pop("c", "gone") == "gone"
    assert h == {"a": "9"}
    assert h != {"a": "8"}
    assert h != {"a": "9", "b": "1"}


def test_headers_from_raw_is_lazy_and_round_trips() -> None:
    raw = [(b"Host", b"example.com"), (b"X-Caf\xe9", b"cr\xe8me"), (b"Accept", b"*/*")]
    h = Headers.from_raw(raw)
    assert len(h) == 3 and bool(h)
    assert h.raw() == raw  # untouched: the original pairs
    assert h["x-café"] == "crème"  # latin-1 decoding
    h.add("Extra", "1")
    assert h.raw() == [*raw, (b"Extra", b"1")]
    assert not Headers.from_raw([])


def test_headers_reject_injection_and_bad_names() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Headers({"X": "a\r\nSet-Cookie: evil=1"})
    h = Headers()
    with pytest.raises(ValueError, match="Invalid header name"):
        h["Bad Name"] = "x"
    with pytest.raises(TypeError, match="must be str"):
        h.add("X", object())
    h["Num"] = 5
    assert h["num"] == "5"


@given(st.lists(st.tuples(TOKEN, VALUE), max_size=10))
def test_headers_round_trip_property(pairs: list[tuple[str, str]]) -> None:
    h = Headers(pairs)
    assert h.items() == pairs
    raw = h.raw()
    again = Headers.from_raw(raw)
    assert again.items() == pairs
    for name, _ in pairs:
        expected = [v for n, v in pairs if n.lower() == name.lower()]
        assert again.getall(name.upper()) == expected
        assert again.get(name) == expected[0]


def test_query_args_first_value_and_lists() -> None:
    args = QueryArgs("a=1&b=2&a=3&empty=&flag")
    assert args["a"] == "1"
    assert args.get("a") == "1"
    assert args.getlist("a") == ["1", "3"]
    assert args.items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert "empty" not in args and "flag" not in args
    assert len(args) == 2
    assert args.get("zz") is None
    assert args.getlist("zz") == []
    with pytest.raises(KeyError):
        args["zz"]
    blanks = QueryArgs("empty=&flag", keep_blank_values=True)
    assert blanks["empty"] == "" and blanks["flag"] == ""
    assert QueryArgs("q=caf%C3%A9+au+lait")["q"] == "café au lait"
    assert QueryArgs("") == QueryArgs([])
    assert QueryArgs("a=1").to_dict() == {"a": ["1"]}


@given(st.lists(st.tuples(st.text(min_size=1), st.text(min_size=1)), max_size=8))
def test_query_args_agree_with_stdlib(pairs: list[tuple[str, str]]) -> None:
    qs = urlencode(pairs)
    assert QueryArgs(qs).items() == parse_qsl(qs)


def test_request_parameters_and_file() -> None:
    params = RequestParameters({"a": ["1", "2"]})
    assert params.get("a") == "1"
    assert params.getlist("a") == ["1", "2"]
    assert params["a"] == ["1", "2"]
    assert params.get("b", "x") == "x"
    assert params.getlist("b") == []
    f = File(name="a.txt", type="text/plain", body=b"hi")
    assert f.name == "a.txt" and f.type == "text/plain" and f.body == b"hi"


def test_conn_info() -> None:
    info = ConnInfo("::1", 5000, "127.0.0.1", 8000)
    assert info.client == "[::1]:5000"
    assert info.server == "127.0.0.1:8000"
    assert info.scheme == "http" and info.unix is None and info.ssl is False
    info.ctx.user = "x"
    assert ConnInfo().ctx is not info.ctx
    unix = ConnInfo(unix="/tmp/s.sock")
    assert unix.server == "/tmp/s.sock"
    with pytest.raises(AttributeError):
        info.other = 1  # type: ignore[attr-defined]


def test_headers_bulk_operations_and_comparison() -> None:
    h = Headers({"A": "1"})
    h.update({"a": "2", "B": b"bytes"})
    assert h.items() == [("a", "2"), ("B", "bytes")]
    h.extend([("a", "3")])
    h.extend(Headers({"C": "4"}))
    assert h.getall("A") == ["2", "3"] and h.values() == ["2", "bytes", "3", "4"]
    copy = h.copy()
    copy.add("D", "5")
    assert "d" not in h and copy == Headers(copy.items())
    assert h == Headers([("A", "2"), ("b", "bytes"), ("a", "3"), ("c", "4")])
    assert h == {"a": ["2", "3"], "b": "bytes", "c": "4"}
    assert h != {1: "x", "b": "bytes", "c": "4"}
    assert h != {"z": "x", "b": "bytes", "c": "4"}
    assert h != ["a"]
    assert "Headers([" in repr(h)
    with pytest.raises(TypeError, match="Header names must be str"):
        Headers([(1, "x")])  # type: ignore[list-item]


def test_reprs_and_mapping_protocol() -> None:
    args = QueryArgs("a=1&b=2")
    assert list(args) == ["a", "b"] and dict(args) == {"a": "1", "b": "2"}
    assert args == {"a": "1", "b": "2"}
    assert repr(args) == "QueryArgs([('a', '1'), ('b', '2')])"
    assert "client='1.2.3.4:5'" in repr(ConnInfo("1.2.3.4", 5))
