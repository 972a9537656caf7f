"""The HTTP/1.1 core without I/O: bytes in, events out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.proto import h1
from runtime.proto.h1 import END, Data, H1Connection, Reject, RequestHead, Upgrade


def heads(events: list[object]) -> list[RequestHead]:
    return [e for e in events if isinstance(e, RequestHead)]


def test_simple_get() -> None:
    conn = H1Connection()
    events = conn.receive_data(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n")
    assert len(events) == 2 and events[1] is END
    head = events[0]
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version) == ("GET", b"/a?b=1", "1.1")
    assert head.headers == [(b"Host", b"x"), (b"X-Y", b"z")]
    assert head.keep_alive and not head.has_body and not head.expect_continue


@pytest.mark.parametrize("connection", [H1Connection, h1.LowerNamesConnection])
def test_whitespace_after_a_value_is_no_part_of_it(connection: type[H1Connection]) -> None:
    # RFC 9112 5: field-line = field-name ":" OWS field-value OWS (llhttp keeps the last OWS)
    events = connection().receive_data(
        b"POST / HTTP/1.1\r\nHost: x \r\nX-A: v  w \t\r\nContent-Length: 1 \r\n"
        b"Expect: 100-continue\t\r\n\r\n"
    )
    head = heads(events)[0]
    assert [value for _, value in head.headers] == [b"x", b"v  w", b"1", b"100-continue"]
    assert head.expect_continue and head.has_body


def test_byte_by_byte_feeding_gives_the_same_events() -> None:
    data = (
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    conn = H1Connection()
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    assert [h.target for h in heads(events)] == [b"/p", b"/q"]
    assert b"".join(e.data for e in events if isinstance(e, Data)) == b"abc"
    assert conn.in_message is False


def test_pipelined_requests_come_out_in_order() -> None:
    conn = H1Connection()
    events = conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: x\r\n"
    )
    assert [h.target for h in heads(events)] == [b"/1", b"/2"]
    assert conn.in_message
    assert [h.target for h in heads(conn.receive_data(b"\r\n"))] == [b"/3"]


def test_chunked_body() -> None:
    conn = H1Connection()
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n"
    )
    assert heads(events)[0].chunked
    assert [e.data for e in events if isinstance(e, Data)] == [b"ab", b"c"]
    assert events[-1] is END


def test_keep_alive_rules() -> None:
    assert not heads(H1Connection().receive_data(b"GET / HTTP/1.0\r\n\r\n"))[0].keep_alive
    conn = H1Connection()
    head = heads(conn.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))[0]
    assert head.keep_alive
    conn = H1Connection()
    events = conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert len(heads(events)) == 1 and not conn.keep_alive  # nothing after "close" is read
    assert conn.receive_data(b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n") == []
    off = H1Connection(keep_alive=False)
    assert not heads(off.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))[0].keep_alive


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"CONNECT a:1 HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: nope\r\nContent-Length: 1\r\n\r\n", 417),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
)
def test_rejections(data: bytes, status: int) -> None:
    conn = H1Connection()
    events = conn.receive_data(data)
    assert isinstance(events[-1], Reject), events
    assert events[-1].status == status
    assert conn.dead and conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []


def test_limits() -> None:
    conn = H1Connection(max_header_size=64)
    reject = conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100 + b"\r\n\r\n")[-1]
    assert isinstance(reject, Reject) and reject.status == 431
    conn = H1Connection(max_header_size=64)  # a head that never ends is cut off too
    assert conn.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 40) == []
    assert isinstance(conn.receive_data(b"a" * 40)[-1], Reject)
    conn = H1Connection(max_header_count=2)
    reject = conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")[-1]
    assert isinstance(reject, Reject) and reject.status == 431
    conn = H1Connection(max_body_size=4)
    reject = conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")[-1]
    assert isinstance(reject, Reject) and reject.status == 413
    conn = H1Connection(max_body_size=4)
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n"
    )
    assert isinstance(events[-1], Reject) and events[-1].status == 413


def test_pipelined_good_request_before_a_bad_one_is_kept() -> None:
    events = H1Connection().receive_data(
        b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /a b HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [h.target for h in heads(events)] == [b"/ok"]
    assert isinstance(events[-1], Reject)


def test_websocket_upgrade_and_other_upgrades() -> None:
    conn = H1Connection()
    events = conn.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
    )
    assert heads(events)[0].upgrade
    assert isinstance(events[-1], Upgrade) and events[-1].trailing == b"\x81\x00"
    conn = H1Connection()  # h2c is not supported: served as plain HTTP/1.1
    events = conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [h.target for h in heads(events)] == [b"/", b"/next"]
    assert not heads(events)[0].upgrade


def test_expect_continue_flag() -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    head = heads(H1Connection().receive_data(data))[0]
    assert head.expect_continue and head.content_length == 2


def test_response_serialisation() -> None:
    head = h1.response_head(
        200, [(b"content-type", b"text/plain")], content_length=2, keep_alive=True
    )
    assert head.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n")
    assert b"date: " in head and head.endswith(b"connection: keep-alive\r\n\r\n")
    chunked = h1.response_head(200, [], content_length=None, keep_alive=False)
    assert b"transfer-encoding: chunked" in chunked and b"connection: close" in chunked
    assert b"content-length" not in h1.response_head(204, [], content_length=0, keep_alive=True)
    raw = h1.response_head(200, [], content_length=None, keep_alive=False, chunked=False)
    assert b"transfer-encoding" not in raw and b"content-length" not in raw
    assert h1.chunk(b"hello") == b"5\r\nhello\r\n" and h1.chunk(b"") == b""
    assert h1.status_line(299) == b"HTTP/1.1 299 \r\n"
    reject = h1.reject_response(431, "too big")
    assert reject.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert reject.endswith(b"431 Request Header Fields Too Large: too big\n")
    assert h1.http_date() is h1.http_date()  # cached within the second


@given(st.integers(min_value=0, max_value=253402300799))  # up to 9999-12-31T23:59:59Z
def test_the_date_header_is_formatted_exactly_as_the_standard_library_does(seconds: int) -> None:
    from email.utils import formatdate

    assert h1.imf_fixdate(seconds) == formatdate(seconds, usegmt=True)


@given(st.binary(max_size=300))
def test_any_bytes_give_events_or_a_reject_never_an_exception(data: bytes) -> None:
    conn = H1Connection(max_header_size=128)
    events = conn.receive_data(data) + conn.receive_data(data)
    assert all(not isinstance(e, Reject) for e in events[:-1])


def reject_of(data: bytes) -> Reject:
    events = H1Connection().receive_data(data)
    assert events and isinstance(events[-1], Reject), events
    return events[-1]


@pytest.mark.parametrize(
    ("fields", "version", "reason"),
    [
        (b"", "1.1", "Missing Host header (HTTP/1.1 requires one)"),
        (b"Host: a\r\nHost: a\r\n", "1.1", "More than one Host header"),
        (b"Host: a\r\nHOST: b\r\n", "1.1", "More than one Host header"),
        (b"Host: a\r\nHost: a\r\n", "1.0", "More than one Host header"),
        (b"Host: a b/c\r\n", "1.1", "Invalid Host header (expected host[:port])"),
        (b"Host: a/b\r\n", "1.1", "Invalid Host header (expected host[:port])"),
        (b"Host: a@b\r\n", "1.1", "Invalid Host header (expected host[:port])"),
        (b"Host: a:b\r\n", "1.1", "Invalid Host header (expected host[:port])"),
        (b"Host: [::1\r\n", "1.1", "Invalid Host header (expected host[:port])"),
        (b"Host: a\xffb\r\n", "1.0", "Invalid Host header (expected host[:port])"),
    ],
)
def test_host_is_required_once_and_valid(fields: bytes, version: str, reason: str) -> None:
    reject = reject_of(b"GET / HTTP/%s\r\n%s\r\n" % (version.encode(), fields))
    assert (reject.status, reject.reason) == (400, reason)


@pytest.mark.parametrize(
    "host",
    [b"", b"example.com", b"example.com:8080", b"127.0.0.1:1", b"[::1]:80", b"xn--bcher-kva.de"],
)
def test_valid_hosts_are_served(host: bytes) -> None:
    events = H1Connection().receive_data(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert heads(events) and events[-1] is END


def test_http_1_0_may_leave_host_out() -> None:
    events = H1Connection().receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert heads(events) and events[-1] is END


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unknown method FOO"),
        (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unknown method get"),
        (b"GE / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unknown method GE"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
            501,
            "Unknown method BREW",
        ),
        (b"\x16\x03\x01\x00\xa5\x01\x00", 400, "Malformed request line (no method)"),
        (b"G\x00T / HTTP/1.1\r\n\r\n", 400, "Malformed request line (no method)"),
        (
            b"GET / HTTP/3.1\r\nHost: x\r\n\r\n",
            505,
            "HTTP/3.1 is not supported (HTTP/1.1 and 1.0 are)",
        ),
        (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            505,
            "HTTP/2.0 is not supported (HTTP/1.1 and 1.0 are)",
        ),
        (b"GET /\r\n\r\n", 400, "Malformed request line (HTTP/0.9 is not supported)"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "Invalid chunk size (expected hexadecimal digits)",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            400,
            "More than one Content-Length",
        ),
    ],
)
def test_rejections_say_what_was_wrong_in_our_words(data: bytes, status: int, reason: str) -> None:
    reject = reject_of(data)
    assert (reject.status, reject.reason) == (status, reason)


def test_an_unknown_method_is_told_from_garbage_by_its_request_line() -> None:
    # llhttp stops at the first byte no method it knows has there ("X"); when the rest of the
    # line has not arrived yet, there is nothing to tell an unknown method from garbage: 400
    conn = H1Connection()
    data = b"GEX / HTTP/1.1\r\nHost: x\r\n\r\n"
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    assert len(events) == 1 and isinstance(events[0], Reject) and events[0].status == 400
    assert reject_of(data).status == 501  # the same bytes in one piece


# -- LowerNamesConnection: the ASGI host's parser ------------------------------------------------


def described(events: list[object], lower: bool) -> list[object]:
    """The events as comparable values; with ``lower``, header names lowercased."""
    out: list[object] = []
    for e in events:
        if isinstance(e, RequestHead):
            names = [(n.lower() if lower else n, v) for n, v in e.headers]
            flags = (e.keep_alive, e.chunked, e.expect_continue, e.upgrade, e.has_body)
            out.append((e.method, e.target, e.version, names, e.content_length, flags))
        elif isinstance(e, Reject):
            out.append((e.status, e.reason))
        elif isinstance(e, Data):
            out.append(e.data)
        elif isinstance(e, Upgrade):
            out.append(("upgrade", e.trailing))
        else:
            out.append(e)
    return out


def same_as_plain(data: bytes, by_byte: bool = False, **limits: int) -> list[object]:
    """Feed ``data`` to both parsers: the same events, names lowercased; those events."""
    plain, lowering = H1Connection(**limits), h1.LowerNamesConnection(**limits)
    chunks = [data[i : i + 1] for i in range(len(data))] if by_byte else [data]
    got_plain: list[object] = []
    got_lower: list[object] = []
    for chunk in chunks:
        got_plain += plain.receive_data(chunk)
        got_lower += lowering.receive_data(chunk)
    for head in heads(got_lower):
        assert all(name == name.lower() for name, _ in head.headers)
    assert described(got_lower, lower=False) == described(got_plain, lower=True)
    return got_lower


@pytest.mark.parametrize(
    "data",
    [
        b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\nACCEPT: */*\r\nCookie: a=1\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHOST: x\r\nContent-LENGTH: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nTRANSFER-ENCODING: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nEXPECT: 100-continue\r\nContent-Length: 2\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUPGRADE: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00",
        b"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nCONTENT-LENGTH: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: nope\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHOST: y\r\n\r\n",
    ],
)
def test_the_lowering_parser_gives_the_same_events_and_limits(data: bytes) -> None:
    for by_byte in (False, True):
        same_as_plain(data, by_byte, max_header_size=96, max_header_count=4)


def test_the_lowering_parser_lowers_every_name() -> None:
    events = same_as_plain(b"GET / HTTP/1.1\r\nHost: x\r\nX-Mixed-CASE: V\r\n\r\n")
    assert heads(events)[0].headers == [(b"host", b"x"), (b"x-mixed-case", b"V")]


_names = st.sampled_from(
    [
        *(b"Host", b"HOST", b"Content-Length", b"content-length", b"Transfer-Encoding"),
        *(b"Expect", b"Upgrade", b"Accept", b"Cookie", b"X-A", b"Origin", b"Referer"),
        b"Connection",
    ]
)
_values = st.sampled_from([b"x", b"1", b"chunked", b"100-continue", b"websocket", b"close", b""])


@given(st.lists(st.tuples(_names, _values), max_size=8), st.booleans())
def test_the_lowering_parser_agrees_on_any_mix_of_the_names_it_reads(
    fields: list[tuple[bytes, bytes]], http10: bool
) -> None:
    head = b"".join(n + b": " + v + b"\r\n" for n, v in fields)
    version = b"1.0" if http10 else b"1.1"
    same_as_plain(b"POST / HTTP/" + version + b"\r\n" + head + b"\r\n1\r\n", max_header_count=6)
