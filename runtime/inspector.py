"""The inspector (workers.md section 12): commands to a running server, over HTTP or the control
socket, and ``vivace inspect``.

* :class:`Inspector` holds the commands: ``info`` (app info and the worker table), ``reload``
  (``zero_downtime``), ``scale`` (``replicas``), ``shutdown``, ``restart`` (``names``), plus every
  public method of a subclass named by ``app.config.INSPECTOR_CLASS``.
* :class:`InspectorService` serves them over HTTP on ``INSPECTOR_HOST:INSPECTOR_PORT`` when
  ``app.config.INSPECTOR`` is true: ``GET /`` is ``info``, ``POST /<command>`` runs a command with
  the JSON body as its arguments; every request needs ``Authorization: Bearer <INSPECTOR_API_KEY>``
  when a key is set; TLS with ``INSPECTOR_TLS_CERT`` / ``INSPECTOR_TLS_KEY``. Answers are
  ``{"meta": {"action": ...}, "result": ...}`` (or ``"error"`` with a 4xx/5xx status).
* :func:`main` is ``vivace inspect [reload [--zero-downtime] | scale N | shutdown | NAME]``: over
  the control socket when it finds this user's server, else over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import inspect
import json
import logging
import os
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from runtime.hosting import Hosted
from runtime.supervisor import attach

__all__ = ["Inspector", "InspectorService", "main", "with_inspector"]

logger = logging.getLogger("vivace.supervisor")

MAX_BODY = 1024 * 1024
MAX_HEAD = 16 * 1024


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class Inspector:
    """The inspector's commands for one running server (main process, main loop).

    Subclass it and set ``app.config.INSPECTOR_CLASS`` to add commands: every public method of
    the subclass is a command (``POST /<name>`` with the JSON body as keyword arguments, or
    ``vivace inspect NAME key=value``); it may be a coroutine function.
    """

    BUILTIN = ("info", "reload", "scale", "shutdown", "restart")

    def __init__(self, host: Hosted, control: Any) -> None:
        self.host = host
        self.control = control

    def info(self) -> dict[str, Any]:
        return {
            "info": {
                "app": self.host.name,
                "framework": self.host.framework,
                "pid": os.getpid(),
                "url": getattr(self.control, "url", None),
            },
            "workers": _json_safe(self.control.snapshot()),
        }

    async def reload(self, zero_downtime: bool = False) -> str:
        if zero_downtime:
            return str(await self.control.restart(zero_downtime=True))
        return str(await self.control.reload())

    async def scale(self, replicas: int) -> str:
        return str(await self.control.scale(replicas))

    async def shutdown(self) -> str:
        await self.control.stop()
        return "shutting down"

    async def restart(self, names: Sequence[str] = (), zero_downtime: bool = False) -> str:
        if isinstance(names, str):
            names = [names]
        return str(await self.control.restart(*names, zero_downtime=zero_downtime))

    def commands(self) -> list[str]:
        found = list(self.BUILTIN)
        for name in dir(type(self)):
            if name.startswith("_") or name in found or hasattr(Inspector, name):
                continue
            if callable(getattr(self, name, None)):
                found.append(name)
        return found

    async def run(self, action: str, args: dict[str, Any] | None = None) -> Any:
        """Run one command; ``LookupError`` for an unknown one, ``TypeError`` for bad arguments."""
        if action not in self.commands():
            raise LookupError(
                f"no inspector command {action!r}; commands: {', '.join(self.commands())}"
            )
        method: Callable[..., Any] = getattr(self, action)
        kwargs = dict(args or {})
        try:
            inspect.signature(method).bind(**kwargs)
        except TypeError as exc:
            raise TypeError(f"{action}: {exc}") from None
        result = method(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return _json_safe(result)


def inspector_for(host: Hosted, control: Any) -> Inspector:
    """The app's inspector: ``app.config.INSPECTOR_CLASS`` (a subclass) or :class:`Inspector`."""
    config = getattr(host, "config", None)
    cls = config.get("INSPECTOR_CLASS") if config is not None else None
    if cls is None:
        return Inspector(host, control)
    if not (isinstance(cls, type) and issubclass(cls, Inspector)):
        raise TypeError(
            f"INSPECTOR_CLASS must be a subclass of runtime.inspector.Inspector: {cls!r}"
        )
    return cls(host, control)


# --- the HTTP service -----------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class InspectorService:
    """``GET /`` and ``POST /<command>`` over HTTP/1.1 (one request per connection)."""

    def __init__(self, inspector: Inspector, *, api_key: str | None = None) -> None:
        self.inspector = inspector
        self.api_key = api_key or None
        self.server: asyncio.AbstractServer | None = None

    async def start(
        self, host: str, port: int, context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._handle, host, port, ssl=context)
        address = self.server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            status, body = await asyncio.wait_for(self._answer(reader, peer), 60)
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            return
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()

    async def _answer(self, reader: asyncio.StreamReader, peer: Any) -> tuple[int, Any]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return 413, {"meta": {"action": None}, "error": "request head too large"}
        if len(head) > MAX_HEAD:
            return 413, {"meta": {"action": None}, "error": "request head too large"}
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ")
        except ValueError:
            return 400, {"meta": {"action": None}, "error": "malformed request line"}
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if self.api_key is not None:  # before the body is read or parsed
            given = headers.get("authorization", "")
            expected = f"Bearer {self.api_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                logger.warning(
                    "Inspector: refused %s %s from %s (bad or no token)", method, target, peer
                )
                return 401, {
                    "meta": {"action": None},
                    "error": "unauthorized: a bearer token is required",
                }
        action = target.split("?", 1)[0].strip("/") or "info"
        meta = {"action": action}
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return 400, {"meta": meta, "error": "bad content-length"}
        if length > MAX_BODY:
            return 413, {"meta": meta, "error": f"body over {MAX_BODY} bytes"}
        raw = await reader.readexactly(length) if length else b""
        if method == "GET" and action != "info":
            return 405, {"meta": meta, "error": f"use POST /{action}"}
        if method not in ("GET", "POST"):
            return 405, {"meta": meta, "error": "use GET / or POST /<command>"}
        args: Any = {}
        if raw.strip():
            try:
                args = json.loads(raw)
            except ValueError as exc:
                return 400, {"meta": meta, "error": f"the body is not JSON: {exc}"}
            if not isinstance(args, dict):
                return 400, {"meta": meta, "error": "the body must be a JSON object"}
        try:
            result = await self.inspector.run(action, args)
        except LookupError as exc:
            return 404, {"meta": meta, "error": str(exc)}
        except (TypeError, ValueError) as exc:
            return 400, {"meta": meta, "error": str(exc)}
        except Exception as exc:
            return 500, {"meta": meta, "error": f"{type(exc).__name__}: {exc}"}
        return 200, {"meta": meta, "result": result}


Hook = Callable[..., Awaitable[int | None]]


def _context(config: Any) -> ssl.SSLContext | None:
    cert, key = config.get("INSPECTOR_TLS_CERT"), config.get("INSPECTOR_TLS_KEY")
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError("the inspector needs both INSPECTOR_TLS_CERT and INSPECTOR_TLS_KEY")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def with_inspector(console: Hook | None, config: Any) -> Hook:
    """A main-process hook that serves the inspector, then runs ``console`` (if any)."""

    async def hook(host: Hosted, control: Any = None, **kwargs: Any) -> int | None:
        service = InspectorService(
            inspector_for(host, control), api_key=config.get("INSPECTOR_API_KEY") or None
        )
        context = _context(config)
        try:
            where = await service.start(
                str(config.get("INSPECTOR_HOST") or "localhost"),
                int(config.get("INSPECTOR_PORT") or 0),
                context,
            )
        except OSError as exc:
            logger.error("Inspector: cannot listen: %s", exc)
        else:
            scheme = "https" if context is not None else "http"
            logger.info("Inspector @ %s://%s:%d", scheme, where[0], where[1])
        try:
            if console is None:
                await asyncio.Event().wait()
                return None
            return await console(host, control, **kwargs)
        finally:
            await service.close()

    return hook


# --- vivace inspect -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vivace inspect",
        description="Commands to a running vivace server: over its control socket when this "
        "user's server is found, else over the HTTP inspector.",
    )
    parser.add_argument("action", nargs="?", default="info", help="reload, scale, shutdown, NAME")
    parser.add_argument("args", nargs="*", help="scale: N; NAME: key=value (JSON values)")
    parser.add_argument("--zero-downtime", action="store_true", help="reload: start-first")
    where = parser.add_argument_group("which server")
    where.add_argument("--socket", help="the control socket's path")
    where.add_argument("--pid", type=int, help="the server's main process id")
    where.add_argument("--host", help="the HTTP inspector's host (default localhost)")
    where.add_argument("--port", type=int, help="the HTTP inspector's port (default 6457)")
    where.add_argument("--api-key", help="the bearer token (default: $VIVACE_INSPECTOR_API_KEY)")
    where.add_argument("--tls-ca", help="the HTTPS inspector: CA file to verify its certificate")
    where.add_argument("--json", action="store_true", help="print the answer as JSON")
    return parser


def _arguments(action: str, values: list[str], zero_downtime: bool) -> dict[str, Any]:
    if action == "info":
        return {}
    if action == "reload":
        return {"zero_downtime": True} if zero_downtime else {}
    if action == "scale":
        if len(values) != 1 or not values[0].isdigit():
            raise ValueError("usage: vivace inspect scale N (N >= 1)")
        return {"replicas": int(values[0])}
    if action == "restart":
        return {"names": values, "zero_downtime": zero_downtime}
    args: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r}: custom commands take key=value arguments")
        try:
            args[key] = json.loads(text)
        except ValueError:
            args[key] = text
    return args


async def _over_socket(path: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
    conn, _welcome = await attach.connect_unix(path, "command")
    try:
        answer = await asyncio.wait_for(
            conn.request({"type": "command", "action": action, "args": args}), 120
        )
    finally:
        conn.close()
    if answer.get("ok"):
        return {"meta": {"action": action}, "result": answer.get("result")}
    return {"meta": {"action": action}, "error": answer.get("error")}


async def _over_http(
    host: str,
    port: int,
    api_key: str | None,
    action: str,
    args: dict[str, Any],
    tls_ca: str | None = None,
) -> tuple[int, dict[str, Any]]:
    context = None
    if tls_ca:  # INSPECTOR_TLS_CERT/KEY: HTTPS, verified against this CA
        context = ssl.create_default_context(cafile=tls_ca)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), 5)
    except (OSError, asyncio.TimeoutError) as exc:
        raise attach.AttachError(
            f"no vivace server of this user found, and no inspector at {host}:{port} ({exc})"
        ) from None
    body = json.dumps(args).encode()
    method, target = ("GET", "/") if action == "info" else ("POST", f"/{action}")
    head = (
        f"{method} {target} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
    )
    head += f"content-length: {len(body)}\r\nconnection: close\r\n"
    if api_key:
        head += f"authorization: Bearer {api_key}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    try:
        data = await asyncio.wait_for(reader.read(), 120)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    status = int(status_line.split()[1])
    payload = rest.partition(b"\r\n\r\n")[2]
    return status, json.loads(payload)


def _show(answer: dict[str, Any]) -> str:
    result = answer.get("result")
    if isinstance(result, dict) and "workers" in result and "info" in result:
        info = result["info"]
        lines = [
            f"{info.get('app')} ({info.get('framework')}), pid {info.get('pid')}, {info.get('url')}"
        ]
        lines.append(f"{'name':<26} {'state':<12} {'pid':>7}  server")
        for name, row in result["workers"].items():
            lines.append(
                f"{name:<26} {row.get('state', 'IDLE'):<12} {row.get('pid') or '-':>7}  "
                f"{'yes' if row.get('server') else 'no'}"
            )
        return "\n".join(lines)
    if isinstance(result, str):
        return result
    return json.dumps(result, indent=2)


def main(argv: Sequence[str]) -> int:
    """``vivace inspect ...``; returns the exit code."""
    parser = _parser()
    try:
        opts = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    try:
        args = _arguments(opts.action, opts.args, opts.zero_downtime)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    http = opts.host is not None or opts.port is not None or opts.tls_ca is not None
    try:
        path: str | None = opts.socket
        if opts.pid is not None:
            path = str(attach.socket_path(opts.pid))
        if path is None and not http:
            found = attach.live_servers()
            if len(found) > 1:
                listing = ", ".join(str(pid) for pid, _ in found)
                print(
                    f"Error: several vivace servers of this user run (pids {listing}): "
                    "choose one with --pid PID",
                    file=sys.stderr,
                )
                return 1
            if found:
                path = str(found[0][1])
        if path is not None:
            answer = asyncio.run(_over_socket(path, opts.action, args))
            status = 200 if "error" not in answer else 400
        else:
            api_key = opts.api_key or os.environ.get("VIVACE_INSPECTOR_API_KEY")
            status, answer = asyncio.run(
                _over_http(
                    opts.host or "localhost",
                    opts.port or 6457,
                    api_key,
                    opts.action,
                    args,
                    opts.tls_ca,
                )
            )
    except attach.AttachError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps(answer))
    elif "error" in answer:
        print(f"Error: {answer['error']}", file=sys.stderr)
    else:
        print(_show(answer))
    return 0 if status == 200 and "error" not in answer else 1
