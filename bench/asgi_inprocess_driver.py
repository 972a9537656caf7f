"""The measuring side of ``asgi_inprocess.py``, run by each server's own interpreter:

    python asgi_inprocess_driver.py SERVER APP REQUESTS RUNS

SERVER is ``vivace``, ``uvicorn`` or ``null``; APP is ``raw`` or ``fastapi``. Prints the least CPU
time per request (microseconds) of RUNS runs of REQUESTS requests.
"""

import asyncio
import sys
import time

import uvloop

server, which, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
if which == "fastapi":
    from fastapi_hello import app
else:
    from throughput.apps import bare as app


class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.waiter = None
        self.closing = False

    def get_extra_info(self, name, default=None):
        names = {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}
        return names.get(name, default)

    def write(self, data):
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def writelines(self, data):
        self.write(b"".join(data))

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    abort = close

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_write_buffer_size(self):
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        pass


def null_protocol(loop):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "server": None,
        "client": None,
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080")],
    }

    class Null(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            transport = self.transport

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):
                if message["type"] == "http.response.body":
                    transport.write(message.get("body", b""))

            loop.create_task(app(dict(scope), receive, send))

    return Null()


async def main():
    loop = asyncio.get_running_loop()
    if server == "vivace":
        from runtime.foreign import host_foreign
        from runtime.server.asgi_http import host_asgi
        from runtime.server.state import ServerState

        host = host_foreign(app, None, name="bench")
        state = ServerState(host, access_log=False)
        host_asgi(state, host)
        state.start(loop)
        protocol = state.protocol_factory()
    elif server == "uvicorn":
        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        config = Config(app, http="httptools", loop="uvloop", lifespan="off", access_log=False)
        config.load()
        protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    else:
        protocol = null_protocol(loop)
    transport = Transport()
    protocol.connection_made(transport)

    async def one():
        transport.waiter = loop.create_future()
        protocol.data_received(REQUEST)
        return await transport.waiter

    answer = await one()
    assert answer.endswith(b'{"hello":"world"}') or b" 200 " in answer, answer
    for _ in range(2000):
        await one()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            await one()
        best = min(best, (time.process_time() - start) / n)
    print(best * 1e6)


uvloop.run(main()) if hasattr(uvloop, "run") else asyncio.run(main())
