"""WebSocket server side, sans-I/O, over the ``websockets`` library's ``ServerProtocol``.

The handshake and the framing are the library's; this module adds what the server needs around
them:

1. :meth:`WSConnection.handshake` takes the request head the HTTP parser already read (method,
   target, header pairs) and returns the bytes of the answer: ``101 Switching Protocols`` with the
   chosen subprotocol, or a 4xx rejection (then :attr:`WSConnection.accepted` is false and the
   caller closes after sending).
2. :meth:`WSConnection.receive_data` returns complete messages (fragments reassembled) as
   :class:`Message`, pongs as :class:`Pong` and, once, :class:`Closed` with the close code.
   Pings are answered and close frames acknowledged by the library; their bytes come out of
   :meth:`WSConnection.data_to_send` like everything else.
   Text is checked here, not by the library (its sans-I/O core frames bytes and leaves UTF-8 to
   the layer that decodes): invalid UTF-8 in a text message, whole or fragmented, fails the
   connection with 1007 and a close frame. Fragments are decoded as they come, so a bad byte in
   the first fragment closes at once, before the rest of the message arrives (Autobahn 6.4).
   Frames parsed after it in the same read are dropped.
3. After every call, the caller writes :meth:`data_to_send` and, when :attr:`should_close` is true,
   closes the transport once the bytes are flushed.
4. A deferred handshake, for a server where the application decides (ASGI): :meth:`check_handshake`
   validates the request and returns ``None`` (or the bytes of a 4xx rejection); the subprotocols
   the client offers are then in :attr:`WSConnection.offered`. Later, :meth:`accept` returns the
   ``101`` with the subprotocol and extra headers the application chose; or the caller answers
   with an HTTP response of its own and closes (the connection is then never opened).
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterable, Sequence

from websockets.exceptions import InvalidHeader, InvalidState
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.headers import parse_subprotocol
from websockets.http11 import Request as WSRequest
from websockets.http11 import Response as WSResponse
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

__all__ = ["Closed", "Message", "Pong", "WSConnection", "WSEvent"]

# the library logs every opened connection at INFO; keep that to debug runs
_ws_logger = logging.getLogger("vivace.websocket")
_ws_logger.setLevel(logging.WARNING)

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Message:
    """A complete data message: ``str`` for text frames, ``bytes`` for binary."""

    __slots__ = ("data",)

    def __init__(self, data: str | bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Message({self.data!r})"


class Pong:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Closed:
    """The connection is closed (or closing): ``code`` and ``reason`` of the close frame."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Closed({self.code}, {self.reason!r})"


WSEvent = Message | Pong | Closed


class WSConnection:
    """One server-side websocket connection (see the module docstring)."""

    def __init__(self, *, max_size: int | None = 2**20, subprotocols: Sequence[str] = ()) -> None:
        offered = [Subprotocol(s) for s in subprotocols]

        def select(_: ServerProtocol, client: Sequence[Subprotocol]) -> Subprotocol | None:
            # the server's preference among what the client offers; none offered is fine
            return next((s for s in offered if s in client), None)

        self._protocol = ServerProtocol(
            subprotocols=offered or None,
            select_subprotocol=select,
            max_size=max_size,
            logger=_ws_logger,
        )
        self._fragments: list[bytes] = []  # a binary message in progress
        self._text: list[str] = []  # a text message in progress, decoded so far
        self._decoder: codecs.IncrementalDecoder | None = None  # set while a text one is
        self._closed_reported = False
        self.accepted = False
        self.subprotocol: str | None = None
        #: the subprotocols the client offers, in its order (set by :meth:`check_handshake`)
        self.offered: list[str] = []
        self._pending: WSResponse | None = None  # a checked handshake's 101, not sent yet

    # -- handshake -------------------------------------------------------------------------------

    def _request(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> WSRequest | None:
        lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target)]
        lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
        lines.append(b"\r\n")
        protocol = self._protocol
        protocol.receive_data(b"".join(lines))
        requests = [e for e in protocol.events_received() if isinstance(e, WSRequest)]
        return requests[0] if requests else None  # none: the library queued its own rejection

    def handshake(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Answer the opening handshake of a request already parsed by the HTTP parser."""
        protocol = self._protocol
        request = self._request(method, target, headers)
        if request is None:
            return self.data_to_send()
        response = protocol.accept(request)
        protocol.send_response(response)
        self.accepted = response.status_code == 101
        if self.accepted:
            self.subprotocol = response.headers.get("Sec-WebSocket-Protocol")
        return self.data_to_send()

    def check_handshake(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> bytes | None:
        """Check an opening handshake without answering it (rule 4).

        ``None`` when the request is a valid websocket opening: answer it later with
        :meth:`accept`. Otherwise the bytes of the rejection (a 4xx response; close after it).
        """
        protocol = self._protocol
        request = self._request(method, target, headers)
        if request is None:
            return self.data_to_send()
        response = protocol.accept(request)  # the connection's own subprotocol choice is none
        if response.status_code != 101:
            protocol.send_response(response)
            return self.data_to_send()
        try:
            self.offered = [
                str(s)
                for value in request.headers.get_all("Sec-WebSocket-Protocol")
                for s in parse_subprotocol(value)
            ]
        except InvalidHeader:  # pragma: no cover - accept() already parsed the same header
            self.offered = []
        self._pending = response
        return None

    def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> bytes:
        """The ``101`` for a handshake :meth:`check_handshake` passed, with the caller's choices.

        ``subprotocol`` becomes ``Sec-WebSocket-Protocol``; ``headers`` are added as they are
        (the caller leaves out those of the handshake itself).
        """
        response = self._pending
        if response is None:
            raise RuntimeError("accept() needs a handshake that check_handshake() passed")
        self._pending = None
        for name, value in headers:
            response.headers[name] = value
        if subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        self._protocol.send_response(response)
        self.accepted = True
        self.subprotocol = subprotocol or None
        return self.data_to_send()

    # -- frames ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[WSEvent]:
        protocol = self._protocol
        protocol.receive_data(data)
        return self._collect()

    def receive_eof(self) -> list[WSEvent]:
        try:
            self._protocol.receive_eof()
        except (EOFError, InvalidState):
            pass
        return self._collect()

    def _collect(self) -> list[WSEvent]:
        events: list[WSEvent] = []
        try:
            for frame in self._protocol.events_received():
                if isinstance(frame, Frame):
                    self._frame(frame, events)
        except UnicodeDecodeError:
            self._text = []
            self._decoder = None
            if self._protocol.state is State.OPEN:
                self._protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
        if self._protocol.state is not State.OPEN:
            self._report_closed(events)
        return events

    def _frame(self, frame: Frame, events: list[WSEvent]) -> None:
        # the library has checked the sequence (no continuation without a start, no new
        # message inside one); this reassembles and decodes
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            if frame.fin:
                events.append(Message(bytes(frame.data).decode()))
            else:
                first: codecs.IncrementalDecoder = _utf8_decoder()
                self._decoder = first
                self._text = [first.decode(frame.data)]
        elif opcode is Opcode.BINARY:
            if frame.fin:
                events.append(Message(bytes(frame.data)))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            decoder = self._decoder
            if decoder is not None:
                self._text.append(decoder.decode(frame.data, final=frame.fin))
                if frame.fin:
                    events.append(Message("".join(self._text)))
                    self._text = []
                    self._decoder = None
            else:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    events.append(Message(b"".join(self._fragments)))
                    self._fragments = []
        elif opcode is Opcode.PONG:
            events.append(Pong(bytes(frame.data)))

    def _report_closed(self, events: list[WSEvent]) -> None:
        if self._closed_reported:
            return
        self._closed_reported = True
        rcvd = self._protocol.close_rcvd
        sent = self._protocol.close_sent
        close: Close | None = rcvd or sent
        if close is None:
            events.append(Closed(CloseCode.ABNORMAL_CLOSURE, ""))
        else:
            events.append(Closed(close.code, close.reason))

    @property
    def closed(self) -> bool:
        return self._closed_reported or self._protocol.state is State.CLOSED

    @property
    def open(self) -> bool:
        return self._protocol.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        return self._protocol.close_code

    @property
    def should_close(self) -> bool:
        """True when the transport should be closed after the pending bytes are written."""
        return self._protocol.close_expected() or self._protocol.state is State.CLOSED

    def send(self, data: str | bytes) -> bytes:
        if isinstance(data, str):
            self._protocol.send_text(data.encode())
        else:
            self._protocol.send_binary(data)
        return self.data_to_send()

    def ping(self, data: bytes) -> bytes:
        self._protocol.send_ping(data)
        return self.data_to_send()

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code, reason)
        return self.data_to_send()

    def fail(self, code: int, reason: str = "") -> bytes:
        """Close at once with ``code`` (protocol errors, too large messages)."""
        if self._protocol.state is State.OPEN:
            self._protocol.fail(code, reason)
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        return b"".join(self._protocol.data_to_send())
