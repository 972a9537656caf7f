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
