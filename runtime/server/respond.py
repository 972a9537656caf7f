"""Writing responses on a connection: every head, and the body of a file with ``sendfile``.

The connection (``runtime.server.http.HttpProtocol``) decides what to write and when; this module
turns responses into bytes and moves a file's bytes to the socket. It never reaches back into the
connection: it is given the transport, the flow control and a ``write`` function.

Rules:

1. The server owns ``Content-Length``, ``Transfer-Encoding``, ``Date`` and ``Connection``: a
   response's own are dropped (a streaming response's ``Content-Length`` is kept as its framing).
2. A file is opened and ``fstat``-ed when its response is written, so its head describes the
   bytes sent; a file gone by then is a 404. Its answer (200, 206, 304, 412, 416) is the one the
   handler's ``FileResponse.prepare`` decided when the file is still the one it saw (same size
   and modification time), else ``FileResponse.answer`` for this request (``runtime.files``);
   ``HEAD`` gets the head only.
3. Up to ``SMALL_FILE`` bytes go out with the head in one write (one ``pread``); more go with
   ``os.sendfile`` on the connection's socket, zero copy, once what is buffered before them has
   been written. Where the transport has no socket or encrypts (TLS), the file is read in chunks
   and written with the connection's flow control. ``uvloop`` has no ``loop.sendfile``, so the
   socket is used directly: a duplicate descriptor is watched for writability (the loop refuses
   to watch the transport's own), and is closed whatever happens (cancellation included).
4. While the socket does not take more, the connection's flow control says writing is paused, so
   the response timeout applies to a client that stops reading a file, as to a stream.
5. A body of ``LANE_FROM`` (1 MiB) or more is sent by the worker's one sender thread
   (``_Lane``); a smaller one on the loop, where a thread hop would cost more than it saves (a
   256 KiB file lost a third of its requests per second through the lane). The lane streams one
   body at a time while its client keeps taking it: it waits up to ``_PATIENCE`` for the socket
   to take more, then hands the body back to the loop (which waits for writability there, rule
   4) and takes the next one; a turn ends after ``_SENDFILE_MAX`` bytes, so a large download
   does not hold the lane from the others. Streaming one connection at a time rather than a
   slice of each in turn measured about twice the throughput at the same CPU
   (``bench/static.py``, 10 MiB files, 8 clients): the kernel's work per byte is what is left of
   a zero-copy send. The lane works on duplicates of the socket and the file; a cancelled send
   stops at the lane's next step, and the duplicates are closed once the lane let go of them (a
   descriptor number closed under it could be reused by another file).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from runtime.proto import h1
from runtime.proto.h1 import RequestHead
from runtime.server.flow import FlowControl

__all__ = [
    "OWN_HEADERS",
    "SMALL_FILE",
    "FileBody",
    "StreamHead",
    "bind_response_class",
    "complete",
    "file_head",
    "header_fields",
    "send_file",
    "stream_head",
]

OWN_HEADERS: Final = frozenset((b"content-length", b"transfer-encoding", b"date", b"connection"))
_OWN_LENGTHS: Final = frozenset(len(h) for h in OWN_HEADERS)
#: files up to this size are read and written with their head in one write
SMALL_FILE: Final = 65536
_SENDFILE_MAX: Final = 1 << 24  # bytes per turn of the sender lane (rule 5)
_PATIENCE: Final = 10  # ms the sender lane waits for a socket that took all it could (rule 5)
#: bodies from this size on are sent by the sender lane, smaller ones on the loop (rule 5)
LANE_FROM: Final = 1 << 20
_base_header_items: Any = None  # BaseHTTPResponse.header_items, set by bind_response_class


def own_header_items(response: Any) -> list[tuple[bytes, bytes]]:
    """A response's own headers (``BaseHTTPResponse.header_items``, without what a file
    response's ``prepare`` added)."""
    items: list[tuple[bytes, bytes]] = _base_header_items(response)
    return items


def bind_response_class(base: Any) -> None:
    """The app model's ``BaseHTTPResponse``: its ``header_items`` is the fast path's marker."""
    global _base_header_items
    _base_header_items = base.header_items


_CONTENT_TYPE_LINES: dict[str, bytes] = {}


def _content_type_line(content_type: str) -> bytes:
    line = _CONTENT_TYPE_LINES.get(content_type)
    if line is None:
        line = b"content-type: " + content_type.encode("latin-1") + b"\r\n"
        if len(_CONTENT_TYPE_LINES) < 64:  # the few types an app uses; never grows unbounded
            _CONTENT_TYPE_LINES[content_type] = line
    return line


def header_fields(response: Any) -> bytes:
    """The response's header lines, without the headers the server owns.

    A response with only a content type (the common case: no headers, no cookies, and
    ``header_items`` not overridden) costs one dict lookup.
    """
    if (
        response._headers is None
        and response._cookies is None
        and response.__class__.header_items is _base_header_items
    ):
        content_type = response.content_type
        return b"" if content_type is None else _content_type_line(content_type)
    headers = response.header_items()
    for name, _ in headers:
        if len(name) in _OWN_LENGTHS and name.lower() in OWN_HEADERS:
            headers = [(n, v) for n, v in headers if n.lower() not in OWN_HEADERS]
            break
    return b"".join([name + b": " + value + b"\r\n" for name, value in headers])


def complete(response: Any, head: RequestHead, keep_alive: bool) -> bytes:
    """A whole non-streaming response, head and body, as one bytes object."""
    return h1.complete_response(
        response.status,
        header_fields(response),
        response.body or b"",
        keep_alive=keep_alive,
        send_body=head.method != "HEAD",
    )


class StreamHead(NamedTuple):
    data: bytes
    keep_alive: bool
    chunked: bool  # the body is framed in chunks (else by its length or by the close)
    bodyless: bool  # HEAD, 1xx, 204, 304: nothing follows the head


def stream_head(response: Any, head: RequestHead, keep_alive: bool) -> StreamHead:
    """The head of a streaming response: chunked unless it has a Content-Length (or HTTP/1.0,
    whose body ends with the connection)."""
    status = response.status
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    for name, value in response.header_items():
        if len(name) in _OWN_LENGTHS and name.lower() in OWN_HEADERS:
            if name.lower() == b"content-length":
                length = int(value)
            continue
        headers.append((name, value))
    bodyless = head.method == "HEAD" or not h1.status_has_body(status)
    raw = length is None and head.version == "1.0"  # no chunked framing for HTTP/1.0
    if raw:
        keep_alive = False
    data = h1.response_head(
        status, headers, content_length=length, keep_alive=keep_alive, chunked=not raw
    )
    return StreamHead(data, keep_alive, length is None and not raw, bodyless)


class FileBody(NamedTuple):
    """An opened file's answer: the head to write, then ``length`` bytes from ``offset``."""

    head: bytes
    fd: int  # -1 when nothing follows the head
    offset: int
    length: int
    status: int


def file_head(
    response: Any, head: RequestHead, request_headers: Any, keep_alive: bool
) -> FileBody | None:
    """Open ``response.path`` and decide the answer (rule 2); ``None`` when the file is gone.
    The caller closes ``fd`` (when it is not -1) once the body is sent."""
    try:
        fd = os.open(response.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        stat = os.fstat(fd)
        own = response.prepared == (stat.st_size, stat.st_mtime_ns)
        if own:  # decided by the handler (prepare) for this very file
            status, offset, length = response.status, response.offset, response.length
            headers = response.header_items()
        else:
            status, added, offset, length = response.answer(
                head.method, request_headers, stat.st_size, stat.st_mtime_ns
            )
            headers = own_header_items(response)
            headers.extend(added)
        headers = [
            (name, value)
            for name, value in headers
            if not (len(name) in _OWN_LENGTHS and name.lower() in OWN_HEADERS)
            and not (status in (304, 412) and name.lower() == b"content-type")
        ]
        data = h1.response_head(
            status, headers, content_length=length, keep_alive=keep_alive, chunked=False
        )
        if head.method == "HEAD" or length == 0:
            os.close(fd)
            return FileBody(data, -1, 0, 0, status)
        return FileBody(data, fd, offset, length, status)
    except BaseException:
        os.close(fd)
        raise


def _socket_fd(transport: asyncio.Transport) -> int | None:
    if transport.get_extra_info("sslcontext") is not None:
        return None
    if transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        fileno = sock.fileno()
    except (OSError, AttributeError):
        return None
    return fileno if isinstance(fileno, int) and fileno >= 0 else None


async def _flushed(transport: asyncio.Transport, flow: FlowControl) -> None:
    """Wait until the transport has written everything buffered (the head, earlier responses)."""
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)  # pause until empty, resume when empty
    try:
        await flow.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int, flow: FlowControl) -> None:
    waiter = loop.create_future()

    def ready() -> None:
        if not waiter.done():
            waiter.set_result(None)

    loop.add_writer(fd, ready)
    flow.pause_writing()  # rule 4: the response timeout counts while the client does not read
    try:
        await waiter
    finally:
        flow.resume_writing()
        loop.remove_writer(fd)


async def send_file(
    transport: asyncio.Transport,
    flow: FlowControl,
    body: FileBody,
    *,
    chunk_size: int,
    write: Callable[[bytes], None],
) -> None:
    """Send ``body.length`` bytes of ``body.fd`` from ``body.offset`` (rule 3). Raises
    ``ConnectionResetError`` when the client goes away or the file ends early (its
    ``Content-Length`` cannot be kept: the caller drops the connection)."""
    loop = asyncio.get_running_loop()
    offset, remaining = body.offset, body.length
    sock_fd = _socket_fd(transport)
    if sock_fd is None:
        await _read_and_write(transport, flow, body, chunk_size, write)
        return
    await _flushed(transport, flow)
    if transport.is_closing():
        raise ConnectionResetError("the client closed the connection")
    out = os.dup(sock_fd)
    if remaining < LANE_FROM:  # a thread hop would cost more than it saves (rule 5)
        try:
            await _send_here(loop, flow, out, body.fd, offset, remaining)
        finally:
            os.close(out)
        return
    try:
        src = os.dup(body.fd)  # the lane's own: the caller closes body.fd when this returns
    except OSError:
        os.close(out)
        raise
    turn: concurrent.futures.Future[int] | None = None
    stop = threading.Event()
    try:
        while remaining > 0:
            turn = _Lane.get().submit(_turn, out, src, offset, remaining, stop)
            try:
                sent = await asyncio.wrap_future(turn)
            except OSError as exc:
                raise ConnectionResetError(f"sending a file failed: {exc}") from exc
            if sent < 0:
                raise ConnectionResetError("the file is shorter than when its head was sent")
            offset += sent
            remaining -= sent
            if remaining and not sent:  # the client took nothing for a while: wait here
                await _writable(loop, out, flow)
    finally:
        stop.set()
        if turn is not None and not turn.done():  # cancelled: the lane still holds both
            turn.add_done_callback(lambda _: _close(out, src))
        else:
            _close(out, src)


async def _send_here(
    loop: asyncio.AbstractEventLoop,
    flow: FlowControl,
    out: int,
    fd: int,
    offset: int,
    remaining: int,
) -> None:
    """``sendfile`` on the loop itself, for a file below ``LANE_FROM``."""
    while remaining > 0:
        try:
            sent = os.sendfile(out, fd, offset, remaining)
        except (BlockingIOError, InterruptedError):
            await _writable(loop, out, flow)
            continue
        except OSError as exc:
            raise ConnectionResetError(f"sending a file failed: {exc}") from exc
        if sent == 0:
            raise ConnectionResetError("the file is shorter than when its head was sent")
        offset += sent
        remaining -= sent


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class _Lane:
    """The worker's sender thread (rule 5), made on first use in the process that sends."""

    _executor: concurrent.futures.ThreadPoolExecutor | None = None
    _pid = 0

    @classmethod
    def get(cls) -> concurrent.futures.ThreadPoolExecutor:
        if cls._executor is None or cls._pid != os.getpid():  # a fork has no thread of its own
            cls._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="vivace-sendfile"
            )
            cls._pid = os.getpid()
        return cls._executor


def _turn(out: int, fd: int, offset: int, remaining: int, stop: threading.Event) -> int:
    """One turn on the sender lane: bytes sent (0: the client took nothing within
    ``_PATIENCE``; -1: the file ended early). Raises ``OSError`` when the client is gone."""
    budget = min(remaining, _SENDFILE_MAX)
    done = 0
    poller: select.poll | None = None
    while done < budget and not stop.is_set():
        try:
            sent = os.sendfile(out, fd, offset + done, budget - done)
        except (BlockingIOError, InterruptedError):
            if poller is None:
                poller = select.poll()
                poller.register(out, select.POLLOUT)
            if not poller.poll(_PATIENCE):
                break  # a slow client: back to the loop, the lane to the others
            continue
        if sent == 0:
            return done if done else -1
        done += sent
    return done


async def _read_and_write(
    transport: asyncio.Transport,
    flow: FlowControl,
    body: FileBody,
    chunk_size: int,
    write: Callable[[bytes], None],
) -> None:
    offset, remaining = body.offset, body.length
    size = max(chunk_size, 16384)
    while remaining > 0:
        data = os.pread(body.fd, min(size, remaining), offset)
        if not data:
            raise ConnectionResetError("the file is shorter than when its head was sent")
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        write(data)
        offset += len(data)
        remaining -= len(data)
        await flow.drain()
