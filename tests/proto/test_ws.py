"""The websocket core without I/O, over the websockets library's ServerProtocol."""

from __future__ import annotations

import base64
import os
import struct

import pytest

from runtime.proto.ws import Closed, Message, Pong, WSConnection

KEY = base64.b64encode(os.urandom(16))


def handshake_headers(protocols: bytes | None = None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"Host", b"x"),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", KEY),
        (b"Sec-WebSocket-Version", b"13"),
    ]
    if protocols:
        headers.append((b"Sec-WebSocket-Protocol", protocols))
    return headers


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + mask + masked


def opened(**kwargs: object) -> WSConnection:
    conn = WSConnection(**kwargs)  # type: ignore[arg-type]
    reply = conn.handshake("GET", b"/ws", handshake_headers())
    assert reply.startswith(b"HTTP/1.1 101 ")
    return conn


def test_handshake_chooses_the_servers_preferred_subprotocol() -> None:
    conn = WSConnection(subprotocols=["b", "a"])
    reply = conn.handshake("GET", b"/ws", handshake_headers(b"a, b"))
    assert conn.accepted and conn.subprotocol == "b"
    assert b"Sec-WebSocket-Protocol: b" in reply
    none = WSConnection(subprotocols=["b"])
    none.handshake("GET", b"/ws", handshake_headers())
    assert none.accepted and none.subprotocol is None


def test_bad_handshake_is_rejected() -> None:
    conn = WSConnection()
    reply = conn.handshake("GET", b"/ws", [(b"Host", b"x")])
    assert not conn.accepted and reply.startswith(b"HTTP/1.1 426 ")


def test_messages_fragments_and_pings() -> None:
    conn = opened()
    events = conn.receive_data(
        frame(1, b"hi") + frame(2, b"\x00") + frame(1, b"fr", fin=False) + frame(0, b"ag")
    )
    assert [e.data for e in events if isinstance(e, Message)] == ["hi", b"\x00", "frag"]
    assert conn.receive_data(frame(9, b"p")) == []
    assert conn.data_to_send() == b"\x8a\x01p"  # the pong
    assert isinstance(conn.receive_data(frame(10, b"q"))[0], Pong)


def test_close_from_the_peer_is_reported_once() -> None:
    conn = opened()
    events = conn.receive_data(frame(8, struct.pack("!H", 4000) + b"bye"))
    assert [(e.code, e.reason) for e in events if isinstance(e, Closed)] == [(4000, "bye")]
    assert conn.should_close and conn.closed
    assert conn.data_to_send().startswith(b"\x88")  # close acknowledged


def test_oversized_message_fails_with_1009() -> None:
    conn = opened(max_size=4)
    events = conn.receive_data(frame(1, b"12345"))
    assert conn.should_close
    assert any(isinstance(e, Closed) and e.code == 1009 for e in events)
    assert conn.data_to_send()[2:4] == struct.pack("!H", 1009)


def test_send_ping_and_close() -> None:
    conn = opened()
    assert conn.send("hé") == b"\x81\x03" + "hé".encode()
    assert conn.send(b"\x01") == b"\x82\x01\x01"
    assert conn.ping(b"x") == b"\x89\x01x"
    assert conn.close(1001, "away") == b"\x88\x06" + struct.pack("!H", 1001) + b"away"
    assert conn.close() == b""  # only once


def test_deferred_handshake_takes_the_callers_subprotocol_and_headers() -> None:
    conn = WSConnection()
    assert conn.check_handshake("GET", b"/ws", handshake_headers(b"a, b")) is None
    assert conn.offered == ["a", "b"]
    assert conn.data_to_send() == b""  # nothing is answered until accept()
    reply = conn.accept("b", [("x-extra", "1"), ("set-cookie", "a=1"), ("set-cookie", "b=2")])
    assert reply.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Protocol: b\r\n" in reply
    assert b"\r\nx-extra: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n" in reply
    assert (conn.accepted, conn.open, conn.subprotocol) == (True, True, "b")
    assert conn.send("hi") == b"\x81\x02hi"
    assert [e.data for e in conn.receive_data(frame(1, b"yo")) if isinstance(e, Message)] == ["yo"]


def test_deferred_handshake_without_subprotocol() -> None:
    conn = WSConnection()
    assert conn.check_handshake("GET", b"/ws", handshake_headers()) is None
    assert conn.offered == []
    reply = conn.accept()
    assert b"Sec-WebSocket-Protocol" not in reply and conn.subprotocol is None


def test_deferred_handshake_rejects_a_bad_request_at_once() -> None:
    conn = WSConnection()
    reply = conn.check_handshake("GET", b"/ws", [(b"Host", b"x")])
    assert reply is not None and reply.startswith(b"HTTP/1.1 426 ")
    assert not conn.accepted
    post = WSConnection()
    reply = post.check_handshake("POST", b"/ws", handshake_headers())
    assert reply is not None and not post.accepted


def test_accept_needs_a_checked_handshake() -> None:
    conn = WSConnection()
    with pytest.raises(RuntimeError):
        conn.accept()
    assert conn.check_handshake("GET", b"/ws", handshake_headers()) is None
    conn.accept()
    with pytest.raises(RuntimeError):
        conn.accept()  # once only


def closed_with(conn: WSConnection, data: bytes) -> int:
    """The close code the server sends after ``data`` (it must send a close frame, and close)."""
    events = conn.receive_data(data)
    assert isinstance(events[-1], Closed), events
    sent = conn.data_to_send()
    assert sent[:1] == b"\x88", sent  # a close frame, not a dropped connection
    assert conn.should_close
    code = int(struct.unpack("!H", sent[2:4])[0])
    assert events[-1].code == code
    return code


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("invalid UTF-8, one frame", frame(1, b"\xff\xfe"), 1007),
        ("surrogate in one frame", frame(1, b"a\xed\xa0\x80"), 1007),
        ("truncated sequence, one frame", frame(1, b"\xce"), 1007),
        (
            "invalid UTF-8 in the last fragment",
            frame(1, b"ab", fin=False) + frame(0, b"\xff"),
            1007,
        ),
        # fail fast: the first fragment is already wrong, the rest never comes (Autobahn 6.4.x)
        ("invalid UTF-8 in the first fragment", frame(1, b"\xce\xba\xed\xa0\x80", fin=False), 1007),
        (
            "invalid UTF-8 in a middle fragment",
            frame(1, b"ok", fin=False) + frame(0, b"\xf4\x90\x80\x80", fin=False),
            1007,
        ),
        ("fragments end mid-sequence", frame(1, b"a\xce", fin=False) + frame(0, b""), 1007),
        ("ping payload over 125 bytes", b"\x89\xfe\x00\x7e" + b"\x00" * 4 + b"p" * 126, 1002),
        ("fragmented ping", frame(9, b"p", fin=False), 1002),
        ("close code 999", frame(8, struct.pack("!H", 999)), 1002),
        ("close code 1005 (reserved)", frame(8, struct.pack("!H", 1005)), 1002),
        ("close code 1016 (unassigned)", frame(8, struct.pack("!H", 1016)), 1002),
        ("close code 5000", frame(8, struct.pack("!H", 5000)), 1002),
        ("close with a one-byte payload", frame(8, b"\x03"), 1002),
        ("close reason not UTF-8", frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
        ("continuation without start", frame(0, b"x"), 1002),
        ("new message inside a fragmented one", frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
        ("reserved opcode 3", frame(3, b""), 1002),
        ("reserved opcode 11", frame(11, b""), 1002),
        ("RSV1 without an extension", b"\xc1\x80" + b"\x00" * 4, 1002),
        ("unmasked client frame", b"\x81\x02hi", 1002),
    ],
)
def test_protocol_violations_close_with_the_right_code(name: str, data: bytes, code: int) -> None:
    assert closed_with(opened(), data) == code


def test_valid_utf8_split_anywhere_across_fragments_is_one_message() -> None:
    text = "κόσμε 𝄞 ok"
    raw = text.encode()
    for cut in range(1, len(raw)):
        conn = opened()
        events = conn.receive_data(frame(1, raw[:cut], fin=False) + frame(0, raw[cut:]))
        assert [e.data for e in events if isinstance(e, Message)] == [text]


def test_control_frames_inside_a_fragmented_message_are_fine() -> None:
    conn = opened()
    events = conn.receive_data(
        frame(1, b"he", fin=False) + frame(9, b"p") + frame(0, b"l", fin=False) + frame(0, b"lo")
    )
    assert [e.data for e in events if isinstance(e, Message)] == ["hello"]
    assert conn.data_to_send() == b"\x8a\x01p"


def test_frames_after_an_invalid_one_in_the_same_read_are_dropped() -> None:
    conn = opened()
    events = conn.receive_data(frame(1, b"\xff") + frame(1, b"after"))
    assert [type(e) for e in events] == [Closed] and events[0].code == 1007
