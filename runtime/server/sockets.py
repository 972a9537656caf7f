"""Listening sockets: bind TCP or UNIX sockets with errors that say what to do.

``bind()`` raises :class:`BindError` (an ``OSError``) with a one-line message for the usual
mistakes: the port is taken, the port needs privileges, the host does not resolve.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

from runtime.exceptions import VivaceException

__all__ = ["BindError", "bind", "display_url", "remove_unix_socket", "unix_path"]


class BindError(VivaceException, OSError):
    """A listening socket could not be created; the message is meant for the user."""


def bind(
    host: str = "127.0.0.1",
    port: int = 8000,
    unix: str | None = None,
    backlog: int = 100,
    *,
    reuse_port: bool = False,
) -> socket.socket:
    """Create, bind and listen; the socket is non-blocking and inheritable by spawned workers."""
    if unix:
        return _bind_unix(unix, backlog)
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if not 0 <= port <= 65535:
        raise BindError(f"Cannot listen on {where}: the port must be between 0 and 65535")
    # An ASCII host goes as bytes: a str host would load the "idna" codec (~1 ms at every start)
    # only to encode what is already ASCII. Non-ASCII names still go through IDNA.
    name: str | bytes | None = (host.encode() if host.isascii() else host) if host else None
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(
            f"Cannot listen on {where}: the host {host!r} does not resolve ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(_explain(exc, where, port)) from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _explain(exc: OSError, where: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Cannot listen on {where}: the address is already in use "
            f"(another server is running there; choose another port with -p)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        hint = " (ports below 1024 need extra privileges)" if 0 < port < 1024 else ""
        return f"Cannot listen on {where}: permission denied{hint}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"Cannot listen on {where}: the address is not available on this machine"
    return f"Cannot listen on {where}: {exc.strerror or exc}"


def _bind_unix(path: str, backlog: int) -> socket.socket:
    if not hasattr(socket, "AF_UNIX"):
        raise BindError("UNIX sockets are not supported on this platform")
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise BindError(f"Cannot listen on {path}: the path exists and is not a socket")
        if _unix_in_use(path):
            raise BindError(f"Cannot listen on {path}: another server is listening there")
        os.unlink(path)  # a stale socket left by a crashed server
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(f"Cannot listen on {path}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _unix_in_use(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def unix_path(sock: socket.socket) -> str | None:
    """The file of a UNIX listening socket (None for TCP)."""
    if getattr(socket, "AF_UNIX", None) is not None and sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        return name if isinstance(name, str) and name else None
    return None


def remove_unix_socket(path: str | None) -> None:
    """Remove the file of a UNIX listening socket (at shutdown)."""
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def display_url(sock: socket.socket) -> str:
    """``http://127.0.0.1:8000`` (IPv6 in brackets), or ``http://unix:/path`` for UNIX sockets."""
    name = sock.getsockname()
    if isinstance(name, str):
        return f"http://unix:{name}"
    host, port = name[0], name[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
