"""The terminal around the console: is it ours, its saved modes, and waiting for ENTER.

``inin_background(stream)`` tells whether another process group owns the terminal (reading it or
changing its modes would stop vivace); ``no_job_control_stops()`` makes such a read fail instead;
``TerminalModes`` saves the modes and restores them on every way out; ``wait_for_enter(stream)``
returns when an empty line is typed (``--dev``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import termios
import threading
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["TerminalModes", "in_background", "isatty", "no_job_control_stops", "wait_for_enter"]


def isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):
        return False


def in_background(stream: Any) -> bool:
    """True when ``stream`` is a terminal whose foreground process group is not ours.

    Reading such a terminal (SIGTTIN) or changing its modes (SIGTTOU) would stop this process.
    """
    try:
        return os.tcgetpgrp(stream.fileno()) != os.getpgrp()
    except (AttributeError, ValueError, OSError):  # not a real terminal: nothing to protect
        return False


@contextlib.contextmanager
def no_job_control_stops() -> Iterator[None]:
    """Ignore SIGTTIN/SIGTTOU meanwhile: a terminal read from the background fails (EIO)
    instead of stopping vivace, which would then never see SIGTERM (ignored in a child of it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTTIN, signal.SIGTTOU)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class TerminalModes:
    """Save the terminal's modes now; ``restore()`` puts them back (also at interpreter exit)."""

    def __init__(self, stream: TextIO) -> None:
        self.fd: int | None = None
        self.saved: list[Any] | None = None
        try:
            fd = stream.fileno()
            if os.isatty(fd):
                self.saved = termios.tcgetattr(fd)
                self.fd = fd
        except (ValueError, OSError, termios.error):
            pass
        if self.saved is not None:
            atexit.register(self.restore)

    def restore(self) -> None:
        if self.fd is None or self.saved is None:
            return
        if in_background(self):  # the terminal belongs to another process group now: leave it
            return
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def fileno(self) -> int:
        if self.fd is None:
            raise ValueError("no terminal")
        return self.fd

    def close(self) -> None:
        self.restore()
        atexit.unregister(self.restore)


async def wait_for_enter(stream: TextIO) -> None:
    """Return when an empty line is typed; other lines are ignored (the console stays available)."""
    loop = asyncio.get_running_loop()
    fd = stream.fileno()
    done: asyncio.Future[None] = loop.create_future()
    pending = bytearray()

    def listen_again() -> None:
        if not done.done():
            loop.add_reader(fd, readable)

    def readable() -> None:
        if in_background(stream):  # sent to the background (Ctrl+Z, bg): the shell owns input
            loop.remove_reader(fd)
            loop.call_later(0.5, listen_again)
            return
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # Ctrl+D with the console closed, or a hang-up: pause, then listen again
            loop.remove_reader(fd)
            loop.call_later(0.5, listen_again)
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if not line.strip() and not done.done():
                done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
