"""``vivace mcp``: the console of a running server as MCP tools for coding agents (stdio).

It attaches like ``vivace attach`` (the same control socket, the same uid check or TCP token) and
opens one console session in the server's main process; every tool runs a statement there:

* ``request(method, path, json, headers, params)``: ``client.request(...)`` to the live server;
* ``eval(code, worker)``: Python in the main process's console, or ``workers[worker].eval(code)``;
* ``workers()``, ``restart(names, zero_downtime)``, ``reload()``, ``scale(n)``,
  ``logs(name, n)``, ``routes()``: the console's names of the same meaning.

A tool's text is what the statement printed (and worker lines meanwhile), then the value's repr;
a statement that raised is a tool error with its traceback. ``stop()`` asks for a confirmation,
which this session always declines: an agent cannot stop the server. Needs the official MCP SDK
(``pip install 'vivace[mcp]'``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from repl.attach import Gone, RemoteConsole, _parser, connect
from runtime.supervisor import attach as wire

__all__ = ["Tools", "main"]

INSTRUCTIONS = (
    "Tools for a running vivace web server: send HTTP requests to it, evaluate Python in its main "
    "process's console (names: app, client, do, routes, workers, logs) or inside a worker, list, "
    "restart, reload and scale its workers, read their recent output."
)


class ToolFailed(Exception):
    """A statement raised: its traceback is the tool's error text."""


class Tools:
    """The tools' logic over one remote console session (no MCP types here)."""

    def __init__(self, remote: RemoteConsole) -> None:
        self.remote = remote
        self._lock = asyncio.Lock()
        self._output: list[str] = []
        remote.on_output = self._output.append
        # remote.on_ask stays RemoteConsole's default: every question (stop()) is declined

    async def statement(self, source: str) -> str:
        async with self._lock:
            self._output.clear()
            try:
                frame = await self.remote.run(source)
            except Gone:
                raise ToolFailed(f"the server (pid {self.remote.pid}) exited") from None
            printed = "".join(self._output)
            self._output.clear()
            for key in ("error", "cancelled"):
                if key in frame:
                    raise ToolFailed(printed + str(frame[key]))
            if frame.get("exit"):
                return printed + "(exit() ignored: the server keeps running)"
            value = str(frame.get("value", "")) if "value" in frame else ""
            text = printed + value
            return text if text else "(no value)"

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> str:
        extra = ""
        if json is not None:
            extra += f", json={json!r}"
        if headers:
            extra += f", headers={dict(headers)!r}"
        if params:
            extra += f", params={dict(params)!r}"
        return await self.statement(f"client.request({method.upper()!r}, {path!r}{extra})")

    async def eval(self, code: str, worker: str | None = None) -> str:
        if worker:
            return await self.statement(f"workers[{worker!r}].eval({code!r})")
        return await self.statement(code)

    async def workers(self) -> str:
        return await self.statement("workers")

    async def restart(self, names: Sequence[str] = (), zero_downtime: bool = False) -> str:
        listed = ", ".join(repr(str(name)) for name in names)
        sep = ", " if listed else ""
        return await self.statement(f"restart({listed}{sep}zero_downtime={bool(zero_downtime)})")

    async def reload(self) -> str:
        return await self.statement("reload()")

    async def scale(self, n: int) -> str:
        return await self.statement(f"scale({int(n)})")

    async def logs(self, name: str | None = None, n: int = 50) -> str:
        return await self.statement(f"logs.tail({name!r}, {int(n)})")

    async def routes(self) -> str:
        return await self.statement("routes")


def build_server(tools: Tools) -> Any:
    """The MCP server (the SDK's ``MCPServer``) with the console's tools."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("vivace", instructions=INSTRUCTIONS)

    async def run(call: Any) -> str:
        try:
            return str(await call)
        except ToolFailed as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def request(
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> str:
        """Send an HTTP request to the live server (through the console's client); returns the
        status line, headers, body and time."""
        return await run(tools.request(method, path, json, headers, params))

    @server.tool()
    async def eval(code: str, worker: str | None = None) -> str:
        """Run Python in the server's main-process console (statements or an expression; the
        names stay between calls), or evaluate an expression inside the named worker process
        (e.g. worker="Vivace-Server-0-0", code="app.ctx")."""
        return await run(tools.eval(code, worker))

    @server.tool()
    async def workers() -> str:
        """The table of the server's processes: name, kind, pid, state, starts, uptime."""
        return await run(tools.workers())

    @server.tool()
    async def restart(names: list[str] | None = None, zero_downtime: bool = False) -> str:
        """Restart the named processes (every server worker when none is named)."""
        return await run(tools.restart(names or (), zero_downtime))

    @server.tool()
    async def reload() -> str:
        """The global restart an auto-reload does: new workers with the current code."""
        return await run(tools.reload())

    @server.tool()
    async def scale(n: int) -> str:
        """Set the number of server workers."""
        return await run(tools.scale(n))

    @server.tool()
    async def logs(name: str | None = None, n: int = 50) -> str:
        """The last n output lines of one process, or of every process."""
        return await run(tools.logs(name, n))

    @server.tool()
    async def routes() -> str:
        """Method, path, name and handler of every route of the app."""
        return await run(tools.routes())

    return server


def main(argv: Sequence[str]) -> int:
    """``vivace mcp [--pid PID | --socket PATH | --tcp HOST:PORT --token-file F]``."""
    parser = _parser()
    parser.prog = "vivace mcp"
    parser.description = "Serve a running vivace server's console as MCP tools over stdio."
    try:
        opts = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError:
        print(
            "vivace mcp needs the MCP SDK: pip install 'vivace[mcp]'", file=sys.stderr, flush=True
        )
        return 1
    return asyncio.run(_serve(opts))


async def _serve(opts: Any) -> int:
    try:
        conn, welcome = await connect(opts, "console")
    except wire.AttachError as exc:
        print(f"vivace mcp: {exc}", file=sys.stderr, flush=True)
        return 1
    remote = RemoteConsole(conn, welcome)
    try:
        await remote.start()
    except (Gone, wire.ProtocolError):
        print(f"vivace mcp: the server (pid {remote.pid}) closed the connection", file=sys.stderr)
        return 1
    try:
        await build_server(Tools(remote)).run_stdio_async()
    finally:
        await remote.detach()
    return 0
