"""``client``: an HTTP client bound to the running server, for typing in the console.

Requests run on worker threads, each with its own ``httpx.Client``, so a call never blocks the loop
that supervises the workers. Called from the console thread, ``client.get("/")`` waits for the
response and returns it (``client.get("/").json()`` works); ``await client.get("/")`` works too.
Called on a loop that must keep serving (``--single-process``), the call returns at once with a
response that is still on its way; the console awaits it before showing it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from repl.history import Exchange, History

if TYPE_CHECKING:
    import ssl

    import httpx

    from repl.streams import Stream
    from repl.wsclient import ConsoleWebSocket

BODY_LIMIT = 2000


class LiveResponse:
    """An ``httpx.Response`` (every attribute is forwarded) with a readable repr and ``await``."""

    def __init__(
        self,
        future: concurrent.futures.Future[tuple[httpx.Response, float]],
        on_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._future = future
        self._on_loop = on_loop
        self.unix_socket: str | None = None  # the server's, for .curl()

    def __await__(self) -> Generator[Any, None, LiveResponse]:
        if not self._future.done():
            yield from asyncio.wrap_future(self._future).__await__()
        self._future.result()  # raise the request's error here
        return self

    @property
    def done(self) -> bool:
        return self._future.done()

    def _result(self) -> tuple[httpx.Response, float]:
        if not self._future.done() and _running_loop() is self._on_loop is not None:
            raise RuntimeError(
                "the response is still on its way, and waiting here would stop this loop from "
                "serving it: write `await client.get(...)` (or use the value in the next line)"
            )
        return self._future.result()

    @property
    def response(self) -> httpx.Response:
        return self._result()[0]

    @property
    def elapsed_ms(self) -> float:
        return self._result()[1] * 1000

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._result()[0], name)

    def curl(self) -> str:
        """The ``curl`` command line that sends this request again."""
        return curl_of(self.response, self.unix_socket)

    def __repr__(self) -> str:
        if not self._future.done():
            return "<response on its way: await it>"
        try:
            response, elapsed = self._future.result()
        except Exception as exc:
            return f"<request failed: {exc!r}>"
        return render(response, elapsed)


def render(response: httpx.Response, elapsed: float, limit: int = BODY_LIMIT) -> str:
    """Status line, headers, body (JSON pretty-printed, long bodies cut), and elapsed time."""
    reason = response.reason_phrase or ""
    lines = [f"{response.http_version} {response.status_code} {reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    lines.append("")
    body = _body_text(response)
    if len(body) > limit:
        rest = len(body) - limit
        body = body[:limit] + f"\n... ({rest} more characters; .text has all of it)"
    if body:
        lines.append(body)
    lines.append(f"({elapsed * 1000:.1f} ms)")
    return "\n".join(lines)


def _body_text(response: httpx.Response) -> str:
    content = response.content
    if not content:
        return ""
    ctype = response.headers.get("content-type", "")
    if "json" in ctype:
        try:
            return json.dumps(response.json(), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    if ctype.startswith("text/") or "json" in ctype or "xml" in ctype or not ctype:
        try:
            return content.decode(response.encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            pass
    return f"<{len(content)} bytes of {ctype or 'binary data'}>"


def curl_of(response: httpx.Response, unix_socket: str | None = None) -> str:
    """``curl`` for the request behind an ``httpx.Response``."""
    from repl.history import curl_command

    request = response.request
    return curl_command(
        request.method,
        str(request.url),
        list(request.headers.items()),
        request.content,
        unix_socket=unix_socket,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


WaitReady = Callable[[float], bool]


class LiveClient:
    """``client.get/post/put/patch/delete/head/options/request`` against the live server."""

    def __init__(
        self,
        base_url: str,
        *,
        uds: str | None = None,
        wait_ready: WaitReady | None = None,
        protected_loop: asyncio.AbstractEventLoop | None = None,
        timeout: float = 30.0,
        ready_timeout: float = 10.0,
        threads: int = 4,
        history: History | None = None,
    ) -> None:
        self.base_url = base_url
        #: every request made through this client (``history`` in the console)
        self.history = history if history is not None else History()
        self._uds = uds
        self._wait_ready = wait_ready
        self._protected_loop = protected_loop
        self._timeout = timeout
        self._ready_timeout = ready_timeout
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "vivace-client")
        self._pending: set[LiveResponse] = set()
        self._websockets: list[ConsoleWebSocket] = []
        #: an ``httpx.AsyncClient`` per loop that read a stream (kept: making one costs ~20 ms)
        self._async: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        for name in ("httpx", "httpcore"):  # one line per request would bury the console's output
            quiet = logging.getLogger(name)
            if quiet.level == logging.NOTSET:
                quiet.setLevel(logging.WARNING)

    def __repr__(self) -> str:
        return f"<client for {self.base_url}: client.get('/'), await client.post('/x', json=...)>"

    def _verify(self) -> ssl.SSLContext | bool:
        """For an HTTPS server: the system's CAs plus the ``--auto-tls`` CA (issue 15), so that
        the console trusts the certificate ``--auto-tls`` made."""
        if not self.base_url.startswith("https:"):
            return True
        from runtime.tls import client_context

        return client_context()

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            import httpx  # here: the console's prompt does not wait for it

            verify = self._verify()
            transport = httpx.HTTPTransport(uds=self._uds, verify=verify) if self._uds else None
            client = httpx.Client(
                base_url=self.base_url, transport=transport, timeout=self._timeout, verify=verify
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        try:
            response, elapsed = self._send_ready(method, url, kwargs)
        except Exception as exc:
            self._record(method, url, kwargs, None, time.perf_counter() - started, exc)
            raise
        self._record(method, url, kwargs, response, elapsed, None)
        return response, elapsed

    def _record(
        self,
        method: str,
        url: str,
        kwargs: dict[str, Any],
        response: httpx.Response | None,
        elapsed: float,
        error: Exception | None,
    ) -> None:
        request = response.request if response is not None else None
        shown = url
        if request is not None and "://" not in url:
            target = request.url
            shown = target.raw_path.decode("ascii", "replace")
        self.history.add(
            Exchange(
                via="client",
                method=method,
                url=shown,
                status=response.status_code if response is not None else None,
                size=len(response.content) if response is not None else 0,
                elapsed_ms=elapsed * 1000,
                request=request,
                response=response,
                headers=list(request.headers.items()) if request is not None else [],
                body=request.content if request is not None else b"",
                call={"url": url, **kwargs},
                error=None if error is None else f"{type(error).__name__}: {error}",
                base_url=self.base_url,
                unix_socket=self._uds,
            )
        )

    def _send_ready(
        self, method: str, url: str, kwargs: dict[str, Any]
    ) -> tuple[httpx.Response, float]:
        import httpx

        deadline = time.monotonic() + self._ready_timeout
        if self._wait_ready is not None and not self._wait_ready(self._ready_timeout):
            raise TimeoutError(
                f"no server worker became ready within {self._ready_timeout:.0f} s; "
                "see `workers` and `logs.tail()`"
            )
        http = self._http()
        while True:
            started = time.perf_counter()
            try:
                response = http.request(method, url, **kwargs)
            except httpx.ConnectError:
                # the socket is not accepting yet (a restart in progress): retry, bounded
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
                continue
            return response, time.perf_counter() - started

    def request(self, method: str, url: str = "/", **kwargs: Any) -> LiveResponse:
        future = self._pool.submit(self._send, method.upper(), url, kwargs)
        loop = _running_loop()
        if loop is not None and loop is self._protected_loop:
            live = LiveResponse(future, on_loop=loop)
            live.unix_socket = self._uds
            self._pending.add(live)
            return live
        future.result()  # raise connection errors where the call was typed
        live = LiveResponse(future)
        live.unix_socket = self._uds
        return live

    def get(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str = "/", **kwargs: Any) -> LiveResponse:
        return self.request("OPTIONS", url, **kwargs)

    async def websocket(
        self,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
        timeout: float = 10.0,
    ) -> ConsoleWebSocket:
        """``ws = await client.websocket("/ws")``: a websocket to the live server
        (``repl.wsclient``)."""
        from repl.wsclient import connect

        if self._wait_ready is not None:
            ready = await asyncio.get_running_loop().run_in_executor(
                None, self._wait_ready, self._ready_timeout
            )
            if not ready:
                raise TimeoutError(f"no server worker became ready within {self._ready_timeout} s")
        ws, elapsed = await connect(
            self.base_url,
            path,
            unix_socket=self._uds,
            headers=headers,
            subprotocols=subprotocols,
            timeout=timeout,
        )
        self._websockets = [w for w in self._websockets if not w.closed] + [ws]
        sent = [("Connection", "Upgrade"), ("Upgrade", "websocket"), *(headers or {}).items()]
        self.history.add(
            Exchange(
                via="ws",
                method="GET",
                url=path,
                status=101,
                size=0,
                elapsed_ms=elapsed * 1000,
                request=None,
                response=ws,
                headers=sent,
                call={"url": path, "headers": headers},
                base_url=self.base_url,
                unix_socket=self._uds,
            )
        )
        return ws

    async def stream(
        self, path: str, method: str = "GET", *, timeout: float | None = None, **kwargs: Any
    ) -> Stream:
        """Print a streamed (or server-sent events) response as it arrives (``repl.streams``);
        Ctrl+C ends the stream only."""
        from repl.streams import stream

        if self._wait_ready is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, self._wait_ready, self._ready_timeout
            )
        summary = await stream(self._async_http(), path, method=method, timeout=timeout, **kwargs)
        self.history.add(
            Exchange(
                via="stream",
                method=method.upper(),
                url=path,
                status=summary.status,
                size=summary.size,
                elapsed_ms=summary.elapsed_ms,
                request=None,
                response=summary,
                call={"url": path, **kwargs},
                base_url=self.base_url,
                unix_socket=self._uds,
            )
        )
        return summary

    async def settle(self) -> None:
        """Await the responses started on a protected loop (run after every console statement)."""
        while self._pending:
            live = self._pending.pop()
            try:
                await live
            except Exception:
                pass  # shown when the response is used

    def _async_http(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            verify = self._verify()
            transport = (
                httpx.AsyncHTTPTransport(uds=self._uds, verify=verify) if self._uds else None
            )
            client = httpx.AsyncClient(
                base_url=self.base_url, transport=transport, trust_env=False, verify=verify
            )
            self._async[loop] = client
        return client

    def close_websockets(self, timeout: float = 2.0) -> None:
        """Close the websockets still open and the streams' clients (from any thread but their
        loop's, before it stops)."""
        websockets, self._websockets = self._websockets, []
        for ws in websockets:
            ws.close_from_outside(timeout)
        clients, self._async = self._async, {}
        for loop, client in clients.items():
            if loop.is_closed() or not loop.is_running() or _running_loop() is loop:
                continue
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout)

    def close(self) -> None:
        self.close_websockets()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
