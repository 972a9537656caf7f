"""The control socket: where ``vivace attach``, ``vivace inspect`` and ``vivace mcp`` reach a
running server's main process.

Rules of the socket:

1. The unix socket lives in the user's runtime directory (``$XDG_RUNTIME_DIR/vivace``, else
   ``<tempdir>/vivace-<uid>``, both mode 0700 and owned by the user), is named ``<pid>.sock`` and
   has mode 0600.
2. A connection is accepted as a raw socket and its peer's uid is checked (``SO_PEERCRED``) before
   a single byte is read from it; another user's connection is closed and the refusal logged.
3. The opt-in TCP listener reads exactly one line first, ``VIVACE <token>`` (at most 128 bytes,
   compared in constant time) before anything else is read; a wrong or missing token closes the
   connection and the refusal is logged. TLS wraps it when a certificate and key are given.
4. After that, both sides exchange frames: a 4-byte big-endian length and a JSON object with a
   string ``type`` (at most ``MAX_FRAME`` bytes). Nothing from a peer is unpickled or evaluated as
   part of the protocol; source text is evaluated only in a console session, after rule 2 or 3.
5. The first frame is ``hello`` with ``mode``: ``console`` (a console session: ``on_session``),
   or ``command`` (one inspector command: ``on_command``, answered with ``result``).
6. A socket file whose server is gone is stale: it is removed by the next server or client that
   finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import ssl
import stat
import struct
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_FRAME",
    "AttachError",
    "Connection",
    "ControlServer",
    "ProtocolError",
    "connect_tcp",
    "connect_unix",
    "live_servers",
    "peer_uid",
    "runtime_dir",
    "socket_path",
]

logger = logging.getLogger("vivace.supervisor")

PROTOCOL = 1
MAX_FRAME = 8 * 1024 * 1024
TOKEN_LINE_MAX = 128
_HEADER = struct.Struct("!I")


class AttachError(Exception):
    """A control-socket connection could not be made or was refused (one line for the user)."""


class ProtocolError(AttachError):
    """The peer sent something that is not a frame of this protocol."""


# --- where the sockets are ------------------------------------------------------------------------


def runtime_dir(create: bool = True) -> Path:
    """The user's directory for control sockets (mode 0700, owned by the user)."""
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base) and os.stat(base).st_uid == uid:
        path = Path(base) / "vivace"
    else:
        path = Path(tempfile.gettempdir()) / f"vivace-{uid}"
    if create:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
        raise AttachError(f"{path} is not a directory of this user: remove it and start again")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def socket_path(pid: int) -> Path:
    return runtime_dir() / f"{pid}.sock"


def token_path(pid: int) -> Path:
    return runtime_dir() / f"{pid}.token"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(path: Path) -> bool:
    """Does a server accept connections on this unix socket?"""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def remove_stale(path: Path) -> bool:
    """Remove ``path`` (and its token file) when its server is gone; True if removed."""
    try:
        pid = int(path.stem)
    except ValueError:
        pid = -1
    if pid > 0 and pid_alive(pid) and _answers(path):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError):
        path.with_suffix(".token").unlink()
    return True


def live_servers() -> list[tuple[int, Path]]:
    """``(pid, socket path)`` of this user's running servers; stale socket files are removed."""
    directory = runtime_dir(create=False)
    found: list[tuple[int, Path]] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.sock")):
        try:
            pid = int(path.stem)
        except ValueError:
            continue
        if remove_stale(path):
            continue
        found.append((pid, path))
    return found


# --- frames ---------------------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), default=repr).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(body)} bytes is over the limit of {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON frame: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a frame must be a JSON object with a string 'type'")
    return message


class Connection:
    """Frames over one stream (either side)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = peer

    async def recv(self) -> dict[str, Any]:
        """The next frame; ``EOFError`` when the peer closed the connection."""
        try:
            header = await self.reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > MAX_FRAME:
                raise ProtocolError(f"a frame of {size} bytes is over the limit of {MAX_FRAME}")
            body = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the connection was closed") from exc
        return decode(body)

    def send(self, message: dict[str, Any]) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(encode(message))

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def buffered(self) -> int:
        """Bytes written but not yet sent (a slow peer)."""
        return self.writer.transport.get_write_buffer_size()

    @property
    def closed(self) -> bool:
        return self.writer.is_closing()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        await self.drain()
        return await self.recv()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _streams(
    sock: socket.socket, context: ssl.SSLContext | None = None, *, server_side: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    protocol = asyncio.StreamReaderProtocol(reader)
    if server_side:
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=context)
    else:
        transport, _ = await loop.create_connection(
            lambda: protocol,
            sock=sock,
            ssl=context,
            server_hostname="" if context is not None else None,
        )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket (``SO_PEERCRED``)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[0])


# --- the client side ------------------------------------------------------------------------------


async def _hello(conn: Connection, mode: str, extra: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = await asyncio.wait_for(
            conn.request({**extra, "type": "hello", "version": PROTOCOL, "mode": mode}), 10
        )
    except EOFError:
        conn.close()
        raise AttachError(f"the server at {conn.peer} closed the connection (refused)") from None
    except asyncio.TimeoutError:
        conn.close()
        raise AttachError(f"the server at {conn.peer} did not answer within 10 s") from None
    if answer.get("type") == "refused":
        conn.close()
        raise AttachError(str(answer.get("reason") or "refused by the server"))
    return answer


async def connect_unix(
    path: str | Path, mode: str, **extra: Any
) -> tuple[Connection, dict[str, Any]]:
    """Connect to a server's control socket and say hello; returns the connection and the
    server's welcome frame. Raises :class:`AttachError` with one line for the user."""
    path = Path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, str(path)), 5)
    except FileNotFoundError:
        sock.close()
        try:
            pid = int(path.stem)
        except ValueError:
            pid = 0
        if pid > 0 and pid_alive(pid):
            raise AttachError(
                f"process {pid} has no control socket at {path} (a vivace server listens on one "
                "when started with --dev or --attach)"
            ) from None
        raise AttachError(f"no control socket at {path} (is the server running?)") from None
    except ConnectionRefusedError:
        sock.close()
        removed = remove_stale(path)
        note = " (a stale socket file, removed)" if removed else ""
        raise AttachError(f"no server listens on {path}{note}") from None
    except PermissionError:
        sock.close()
        raise AttachError(f"permission denied on {path} (another user's server?)") from None
    except (OSError, asyncio.TimeoutError) as exc:
        sock.close()
        raise AttachError(f"cannot connect to {path}: {exc}") from None
    reader, writer = await _streams(sock, server_side=False)
    conn = Connection(reader, writer, str(path))
    return conn, await _hello(conn, mode, extra)


async def connect_tcp(
    host: str,
    port: int,
    token: str,
    mode: str,
    *,
    context: ssl.SSLContext | None = None,
    **extra: Any,
) -> tuple[Connection, dict[str, Any]]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), 5)
        except BaseException:
            sock.close()
            raise
        reader, writer = await _streams(sock, context, server_side=False)
    except (OSError, asyncio.TimeoutError) as exc:
        raise AttachError(f"cannot connect to {host}:{port}: {exc}") from None
    writer.write(f"VIVACE {token}\n".encode())
    conn = Connection(reader, writer, f"{host}:{port}")
    return conn, await _hello(conn, mode, extra)


# --- the server side ------------------------------------------------------------------------------

SessionHandler = Callable[[Connection, dict[str, Any]], Awaitable[None]]
CommandHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlServer:
    """The main process's control socket (unix, and TCP with a token when asked)."""

    def __init__(
        self,
        *,
        on_session: SessionHandler | None,
        on_command: CommandHandler,
        welcome: Callable[[], dict[str, Any]],
    ) -> None:
        self.on_session = on_session
        self.on_command = on_command
        self.welcome = welcome
        self.path: Path | None = None
        self.token: str | None = None
        self.token_file: Path | None = None
        self.tcp_address: tuple[str, int] | None = None
        self._listeners: list[socket.socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._uid = os.getuid()
        self._tls: ssl.SSLContext | None = None

    # starting and stopping -------------------------------------------------------------------

    def start_unix(self, path: Path | None = None) -> Path:
        path = path or socket_path(os.getpid())
        if path.exists() or path.is_symlink():
            if not remove_stale(path):
                raise AttachError(f"{path} is in use by another running server")
            logger.info("Removed a stale control socket: %s", path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: never a moment when others may connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
        self.path = path
        self._serve(sock, self._accept_unix)
        return path

    def start_tcp(
        self, host: str, port: int, *, context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        self.token = secrets.token_urlsafe(32)
        self.token_file = token_path(os.getpid())
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        sock = socket.create_server((host, port), reuse_port=False)
        sock.setblocking(False)
        address = sock.getsockname()
        self.tcp_address = (str(address[0]), int(address[1]))
        self._tls = context
        self._serve(sock, self._accept_tcp)
        return self.tcp_address

    def _serve(
        self,
        sock: socket.socket,
        accept: Callable[[socket.socket], Awaitable[None]],
    ) -> None:
        self._listeners.append(sock)
        loop = asyncio.get_running_loop()

        async def accept_loop() -> None:
            while True:
                try:
                    conn, _ = await loop.sock_accept(sock)
                except OSError:
                    if sock.fileno() < 0:
                        return
                    await asyncio.sleep(0.1)
                    continue
                self._spawn(accept(conn))

        self._spawn(accept_loop())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for sock in self._listeners:
            sock.close()
        self._listeners.clear()
        self.unlink()  # first: the loop may not run much longer
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def unlink(self) -> None:
        for path in (self.path, self.token_file):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()

    # one connection ----------------------------------------------------------------------------

    async def _accept_unix(self, sock: socket.socket) -> None:
        try:
            uid = peer_uid(sock)
            pid = peer_pid(sock)
        except (OSError, AttributeError) as exc:  # AttributeError: no SO_PEERCRED (not Linux)
            sock.close()
            logger.warning("Control socket: refused a connection (no peer credentials: %s)", exc)
            return
        if uid != self._uid:  # rule 2: closed before a byte is read
            sock.close()
            logger.warning(
                "Control socket: refused a connection from uid %d (pid %d); only uid %d may attach",
                uid,
                pid,
                self._uid,
            )
            return
        reader, writer = await _streams(sock)
        await self._converse(Connection(reader, writer, f"pid {pid}"))

    async def _accept_tcp(self, sock: socket.socket) -> None:
        try:
            peer = "{}:{}".format(*sock.getpeername()[:2])
        except OSError:
            peer = "?"
        try:
            reader, writer = await asyncio.wait_for(_streams(sock, self._tls), 10)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            sock.close()
            logger.warning("Control socket: refused %s (TLS handshake failed: %s)", peer, exc)
            return
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            line = b""
        except (OSError, ValueError):
            line = b""
        expected = f"VIVACE {self.token}\n".encode()
        if len(line) > TOKEN_LINE_MAX or not hmac.compare_digest(line, expected):
            writer.close()
            logger.warning("Control socket: refused %s (wrong or missing token)", peer)
            return
        await self._converse(Connection(reader, writer, peer))

    async def _converse(self, conn: Connection) -> None:
        try:
            hello = await asyncio.wait_for(conn.recv(), 30)
            if hello.get("type") != "hello":
                raise ProtocolError("the first frame must be 'hello'")
            mode = hello.get("mode")
            if mode == "console" and self.on_session is not None:
                conn.send({"type": "welcome", **self.welcome()})
                await conn.drain()
                await self.on_session(conn, hello)
            elif mode == "command":
                conn.send({"type": "welcome", **self.welcome()})
                await conn.drain()
                while True:
                    frame = await conn.recv()
                    if frame.get("type") != "command":
                        raise ProtocolError("expected a 'command' frame")
                    try:
                        result = await self.on_command(frame)
                        conn.send({"type": "result", "ok": True, "result": result})
                    except Exception as exc:
                        text = f"{type(exc).__name__}: {exc}"
                        conn.send({"type": "result", "ok": False, "error": text})
                    await conn.drain()
            else:
                conn.send({"type": "refused", "reason": f"this server has no {mode!r} mode"})
                await conn.drain()
        except (EOFError, asyncio.TimeoutError, ConnectionError):
            pass
        except ProtocolError as exc:
            logger.warning("Control socket: closed %s: %s", conn.peer, exc)
        finally:
            conn.close()
