"""The checks on an ASGI app's response headers (``runtime.server.asgi_messages``).

``response_fields`` serialises the headers of every HTTP response and keeps the pairs it has
checked in a bounded cache: a pair is checked the first time and found afterwards, so these tests
send each case twice (a pair refused once must be refused again, never cached).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from runtime.server import asgi_messages
from runtime.server.asgi_messages import response_fields, response_headers


def twice(raw: Any) -> tuple[bytes, int | None, bool]:
    first = response_fields(raw)
    second = response_fields(raw)
    assert first == second
    return first


def test_a_tab_and_non_ascii_bytes_are_allowed_in_values() -> None:
    assert twice([(b"x-a", b"one\ttwo \xc3\xa9")]) == (b"x-a: one\ttwo \xc3\xa9\r\n", None, False)


def test_kept_headers_are_serialised_in_order() -> None:
    fields, length, close = twice(
        [(b"content-type", b"application/json"), (b"x-a", b"1"), (b"X-B", b"two words")]
    )
    assert fields == b"content-type: application/json\r\nx-a: 1\r\nX-B: two words\r\n"
    assert (length, close) == (None, False)


def test_content_length_and_connection_are_read_not_kept() -> None:
    fields, length, close = twice(
        [(b"content-length", b"17"), (b"Connection", b"Close"), (b"x-a", b"1")]
    )
    assert (fields, length, close) == (b"x-a: 1\r\n", 17, True)
    assert twice([(b"connection", b"keep-alive")]) == (b"", None, False)


def test_headers_the_server_owns_are_dropped() -> None:
    raw = [(b"date", b"yesterday"), (b"Transfer-Encoding", b"chunked"), (b"x-a", b"1")]
    assert twice(raw) == (b"x-a: 1\r\n", None, False)


@pytest.mark.parametrize(
    "value", [b"-1", b"+1", b" 1", b"1 ", b"1a", b"", b"\xd9\xa1", b"1" * 19, b"9" * 5000]
)
def test_a_content_length_must_be_digits(value: bytes) -> None:
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Invalid Content-Length"):
            response_fields([(b"content-length", value)])


@pytest.mark.parametrize(
    "pair",
    [
        (b"x-a", b"1\r\nset-cookie: stolen=1"),
        (b"x-a", b"1\nx"),
        (b"x-a", b"1\rx"),
        (b"connection", b"close\r\nx: y"),
        (b"date", b"x\r\ny: z"),
        (b"content-length", b"1\r\n"),
        (b"x-a", b"nul\x00"),
        (b"x-a", b"vt\x0b"),
        (b"x-a", b"del\x7f"),
    ],
)
def test_a_value_with_a_control_character_is_refused_every_time(pair: tuple[bytes, bytes]) -> None:
    for _ in range(3):
        with pytest.raises(RuntimeError, match=r"forbidden character|Invalid Content-Length"):
            response_fields([(b"x-ok", b"1"), pair])
    assert pair not in asgi_messages._PAIRS


@pytest.mark.parametrize(
    "name", [b"x-a\r\nx", b"x:a", b"", b"x\n", b"x a", b"x(a)", b"x\x00", b"\xc3\xa9"]
)
def test_a_name_with_a_forbidden_character_is_refused(name: bytes) -> None:
    for _ in range(2):
        with pytest.raises(RuntimeError, match="forbidden character"):
            response_fields([(name, b"1")])


def test_bytes_like_pairs_lists_and_iterators_are_accepted() -> None:
    def pairs() -> Iterator[list[bytes]]:
        yield [b"x-a", b"1"]
        yield [b"x-b", b"2"]

    assert twice([(b"x-a", bytearray(b"1"))]) == (b"x-a: 1\r\n", None, False)
    assert twice([(bytearray(b"x-a"), bytearray(b"1"))]) == (b"x-a: 1\r\n", None, False)
    assert twice([(b"x-m", memoryview(b"1"))]) == (b"x-m: 1\r\n", None, False)
    assert twice([(b"x-m", memoryview(bytearray(b"2")))]) == (b"x-m: 2\r\n", None, False)
    assert response_fields(pairs()) == (b"x-a: 1\r\nx-b: 2\r\n", None, False)
    assert twice(((b"x-a", b"1"),)) == (b"x-a: 1\r\n", None, False)


def test_a_mutable_value_is_never_cached() -> None:
    value = bytearray(b"first")
    assert response_fields([(b"x-mutable", value)])[0] == b"x-mutable: first\r\n"
    value[:] = b"bad\r\nx: y"
    with pytest.raises(RuntimeError, match="forbidden character"):
        response_fields([(b"x-mutable", value)])


@pytest.mark.parametrize(
    "raw",
    [
        [("x-a", "1")],
        [(b"x-a", "1")],
        [(b"x-a", 1)],
        [(b"x-a",)],
        [(b"x-a", b"1", b"2")],
        [b"x-a"],
        None,
        [None],
    ],
)
def test_what_is_not_pairs_of_bytes_is_a_protocol_error(raw: Any) -> None:
    for _ in range(2):
        with pytest.raises(RuntimeError, match="ASGI response header"):
            response_fields(raw)


def test_the_cache_is_bounded() -> None:
    for n in range(asgi_messages._PAIRS_MAX * 2 + 10):
        fields, _, _ = response_fields([(b"set-cookie", b"session=%d" % n)])
        assert fields == b"set-cookie: session=%d\r\n" % n
        assert len(asgi_messages._PAIRS) <= asgi_messages._PAIRS_MAX


def test_long_values_are_checked_every_time_not_kept() -> None:
    pair = (b"content-security-policy", b"default-src 'self' " + b"x" * 1000)
    assert response_fields([pair])[0] == pair[0] + b": " + pair[1] + b"\r\n"
    assert pair not in asgi_messages._PAIRS
    short = (b"cache-control", b"no-store")
    response_fields([short])
    assert asgi_messages._PAIRS[short] == (asgi_messages._PLAIN, b"cache-control: no-store\r\n")


def test_response_headers_keeps_pairs_with_the_same_rules() -> None:
    raw = [(b"content-length", b"3"), (b"x-a", b"1"), (b"connection", b"close")]
    assert response_headers(raw) == ([(b"x-a", b"1")], 3, True)
    with pytest.raises(RuntimeError, match="forbidden character"):
        response_headers([(b"x-a", b"1\r\nx: y")])
    with pytest.raises(RuntimeError, match="Invalid Content-Length"):
        response_headers([(b"content-length", b"-3")])
