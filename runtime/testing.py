"""Test an app in process: httpx clients whose transport calls ``app.handle`` directly.

No socket is opened. Each httpx request becomes a :class:`runtime.request.Request` whose body is
fed through its ``BodyChannel`` (streamed uploads included), and the app's response comes back as
an ``httpx.Response`` (streamed responses are streamed: ``client.stream(...)`` reads chunks as the
app writes them).

``AsyncTestClient`` is an async context manager that runs the ``before_server_start`` and
``after_server_start`` listeners on enter and ``before_server_stop`` / ``after_server_stop`` on
exit, so resources your listeners put on ``app.ctx`` exist during the test::

    async with AsyncTestClient(app) as client:
        response = await client.get("/")

``TestClient`` is the same for synchronous code: it runs an event loop in a background thread
(like Starlette's) and runs the listeners when used as a context manager::

    with TestClient(app) as client:
        assert client.get("/").json() == {"hello": "world"}

The vivace ``Request`` and response behind an ``httpx.Response`` are in
``response.extensions["vivace.request"]`` and ``["vivace.response"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from concurrent.futures import Future
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

import httpx

from runtime.app import App
from runtime.datastructures import ConnInfo, Headers
from runtime.lifecycle import ListenerEvent, run_listeners
from runtime.log import error_logger
from runtime.request import Request
from runtime.response import BaseHTTPResponse
from runtime.signals import Event

__all__ = [
    "BASE_URL",
    "AppTransport",
    "AsyncTestClient",
    "SyncAppTransport",
    "TestClient",
    "reset_app_registry",
]

BASE_URL = "http://vivace.test"
T = TypeVar("T")

_EOF = object()


def reset_app_registry() -> None:
    """Forget every ``App`` of this process, so names can be used again (for tests)."""
    App._registry.clear()


def _ensure_finalized(app: App) -> None:
    if not app._finalized:
        app.finalize()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _emit(app: App, event: Event, context: dict[str, Any]) -> None:
    """Dispatch a server-side built-in event as the server would; handler errors are logged."""
    try:
        await app.dispatch(event, context=context, inline=True, fail_not_found=False)
    except Exception:
        error_logger.exception("Error in a %s signal handler", event.value)


def _response_head(response: BaseHTTPResponse, extra: list[tuple[bytes, bytes]]) -> bytes:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {response.status} {phrase}".encode()]
    lines += [name + b": " + value for name, value in [*response.header_items(), *extra]]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _StreamedBody(httpx.AsyncByteStream):
    """Chunks written by a streaming response, read as the app produces them."""

    def __init__(
        self, app: App, response: BaseHTTPResponse, head_only: bool, conn_info: ConnInfo
    ) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
        self._task: asyncio.Task[None] | None = None
        self._app = app
        self._response = response
        self._head_only = head_only
        self._conn_info = conn_info

    async def _write(self, chunk: bytes) -> None:
        if self._app.signal_router.guards.HTTP_LIFECYCLE_SEND:  # type: ignore[attr-defined]
            await _emit(self._app, Event.HTTP_LIFECYCLE_SEND, {"data": chunk})
        await self._queue.put(chunk)

    async def _produce(self) -> None:
        queue = self._queue
        guards: Any = self._app.signal_router.guards
        try:
            if guards.HTTP_LIFECYCLE_SEND:
                head = _response_head(self._response, [(b"transfer-encoding", b"chunked")])
                await _emit(self._app, Event.HTTP_LIFECYCLE_SEND, {"data": head})
            if not self._head_only:
                await self._response.stream_body(self._write)  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await queue.put(_Failure(exc))
            return
        finally:
            if guards.HTTP_LIFECYCLE_COMPLETE:
                await _emit(
                    self._app, Event.HTTP_LIFECYCLE_COMPLETE, {"conn_info": self._conn_info}
                )
        await queue.put(_EOF)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())
        while True:
            item = await self._queue.get()
            if item is _EOF:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class AppTransport(httpx.AsyncBaseTransport):
    """An httpx transport that answers requests with ``app.handle`` in the running loop."""

    def __init__(
        self,
        app: App,
        *,
        client: tuple[str, int] = ("127.0.0.1", 51234),
        server: tuple[str, int] = ("127.0.0.1", 80),
    ) -> None:
        self.app = app
        self.client = client
        self.server = server

    def build_request(self, request: httpx.Request) -> Request:
        """The vivace ``Request`` for an httpx request (its body is not fed yet)."""
        url = request.url
        raw_headers = [(name, value) for name, value in request.headers.raw]
        headers = Headers.from_raw(raw_headers)
        conn_info = ConnInfo(
            self.client[0],
            self.client[1],
            self.server[0],
            url.port or self.server[1],
            scheme=url.scheme or "http",
            ssl=url.scheme == "https",
        )
        return Request(self.app, request.method, url.raw_path, headers, "1.1", conn_info=conn_info)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One request, one "connection": the server-side ``http.lifecycle.begin``,
        ``read_head``, ``send`` and ``complete`` signals fire around ``app.handle`` too."""
        app = self.app
        _ensure_finalized(app)
        guards: Any = app.signal_router.guards
        vivace_request = self.build_request(request)
        conn_info = vivace_request.conn_info
        assert conn_info is not None
        if guards.HTTP_LIFECYCLE_BEGIN:
            await _emit(app, Event.HTTP_LIFECYCLE_BEGIN, {"conn_info": conn_info})
        if guards.HTTP_LIFECYCLE_READ_HEAD:
            request_head = b"\r\n".join(
                [
                    request.method.encode() + b" " + request.url.raw_path + b" HTTP/1.1",
                    *(name + b": " + value for name, value in request.headers.raw),
                ]
            )
            await _emit(app, Event.HTTP_LIFECYCLE_READ_HEAD, {"head": request_head + b"\r\n\r\n"})
        channel = vivace_request.body_channel

        async def feed() -> None:
            try:
                async for chunk in request.stream:  # type: ignore[union-attr]
                    if chunk:
                        channel.feed(chunk)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the upload failed: the app sees a broken body
                channel.feed_error(exc)
                return
            channel.feed_eof()

        feeder = asyncio.get_running_loop().create_task(feed())
        try:
            response = await app.handle(vivace_request)
        finally:
            if not feeder.done():
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeder
        head_only = request.method == "HEAD" or response.status in (204, 304)
        head = response.header_items()
        extensions = {"vivace.request": vivace_request, "vivace.response": response}
        if response.is_streaming:
            return httpx.Response(
                response.status,
                headers=head,
                stream=_StreamedBody(app, response, head_only, conn_info),
                extensions=extensions,
                request=request,
            )
        body: bytes = b"" if head_only else response.body  # type: ignore[attr-defined]
        if not head_only and not any(name.lower() == b"content-length" for name, _ in head):
            head.append((b"content-length", str(len(body)).encode()))
        if guards.HTTP_LIFECYCLE_SEND:
            data = _response_head(response, head[len(response.header_items()) :]) + body
            await _emit(app, Event.HTTP_LIFECYCLE_SEND, {"data": data})
        if guards.HTTP_LIFECYCLE_COMPLETE:
            await _emit(app, Event.HTTP_LIFECYCLE_COMPLETE, {"conn_info": conn_info})
        return httpx.Response(
            response.status, headers=head, content=body, extensions=extensions, request=request
        )


class AsyncTestClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` bound to ``app`` in process (see the module docstring)."""

    def __init__(
        self,
        app: App,
        *,
        base_url: str = BASE_URL,
        client_addr: tuple[str, int] = ("127.0.0.1", 51234),
        **kwargs: Any,
    ) -> None:
        self.app = app
        super().__init__(
            transport=AppTransport(app, client=client_addr), base_url=base_url, **kwargs
        )

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        try:
            await start_app(self.app)
        except BaseException:
            await super().__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            await stop_app(self.app)
        finally:
            await super().__aexit__(exc_type, exc, tb)


async def start_app(app: App) -> None:
    """What a server does before serving: finalize, then the two start-up listener events."""
    app.finalize()
    await run_listeners(app, ListenerEvent.BEFORE_SERVER_START)
    await run_listeners(app, ListenerEvent.AFTER_SERVER_START)


async def stop_app(app: App, *, task_timeout: float = 5.0) -> None:
    """What a server does at shutdown: the two stop events, then background tasks cancelled."""
    try:
        await run_listeners(app, ListenerEvent.BEFORE_SERVER_STOP)
        await run_listeners(app, ListenerEvent.AFTER_SERVER_STOP)
    finally:
        await app.shutdown_tasks(timeout=task_timeout)


class _LoopThread:
    """An event loop running in a daemon thread; ``run(coro)`` waits for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="vivace-testclient", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            self.run(drain(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class _SyncStreamedBody(httpx.SyncByteStream):
    def __init__(self, portal: _LoopThread, stream: httpx.AsyncByteStream) -> None:
        self._portal = portal
        self._stream = stream
        self._iterator: AsyncIterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._stream.__aiter__()
        self._iterator = iterator

        async def next_chunk() -> bytes | None:
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                return None

        while True:
            chunk = self._portal.run(next_chunk())
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._portal.run(self._stream.aclose())


class SyncAppTransport(httpx.BaseTransport):
    """The synchronous face of :class:`AppTransport`, through a loop in another thread."""

    def __init__(self, app: App, portal: _LoopThread, **kwargs: Any) -> None:
        self._async = AppTransport(app, **kwargs)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        async_request = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )
        response = self._portal.run(self._async.handle_async_request(async_request))
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=_SyncStreamedBody(self._portal, stream),
            extensions=response.extensions,
            request=request,
        )


class TestClient(httpx.Client):
    """An ``httpx.Client`` bound to ``app`` in process, for synchronous tests and scripts."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: App,
        *,
        base_url: str = BASE_URL,
        client_addr: tuple[str, int] = ("127.0.0.1", 51234),
        **kwargs: Any,
    ) -> None:
        self.app = app
        self._portal = _LoopThread()
        self._started = False
        super().__init__(
            transport=SyncAppTransport(app, self._portal, client=client_addr),
            base_url=base_url,
            **kwargs,
        )

    def run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``awaitable`` on the client's loop (the loop the app's listeners ran on)."""

        async def wrapper() -> T:
            return await awaitable

        return self._portal.run(wrapper(), timeout)

    def __enter__(self) -> TestClient:
        super().__enter__()
        try:
            self._portal.run(start_app(self.app))
            self._started = True
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            if self._started:
                self._started = False
                self._portal.run(stop_app(self.app))
        finally:
            super().__exit__(exc_type, exc, tb)
            self._portal.close()

    def close(self) -> None:
        super().close()
        self._portal.close()
