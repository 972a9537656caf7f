"""Child output: read from each child's pipe, written line by line with the process name in front.

The main process owns one :class:`OutputHub`. Each child gets the write end of a socket pair as its
stdout and stderr; :meth:`OutputHub.attach` reads the other end on the main loop. Whole lines are
written in one batch per read with ``sys.stdout.write`` looked up at write time (the console
replaces ``sys.stdout`` to print above its prompt), so lines of one process keep their order and
are never torn. The hub keeps the recent lines of every process (``tail``) and can mute processes.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import deque
from collections.abc import Callable

from runtime.log import use_colour

_PALETTE = ("36", "35", "33", "32", "34", "96", "95", "93", "92", "94")
RING_SIZE = 1000

LineListener = Callable[[str, str], None]


class OutputGate:
    """Holds the lines of a replacement process until it takes over (:meth:`open`: the held
    lines are written, then the rest as it comes) or is abandoned (:meth:`drop`: nothing of it is
    written). A reload whose new code fails in every replacement thus prints one traceback."""

    def __init__(self) -> None:
        self.state = "hold"
        self._held: list[str] = []
        self._sink: Callable[[list[str]], None] | None = None

    def feed(self, lines: list[str]) -> None:
        if self.state == "open" and self._sink is not None:
            self._sink(lines)
        elif self.state == "hold":
            self._held.extend(lines)

    def open(self) -> None:
        if self.state != "hold":
            return
        self.state = "open"
        held, self._held = self._held, []
        if held and self._sink is not None:
            self._sink(held)

    def drop(self) -> None:
        if self.state == "hold":
            self.state = "drop"
            self._held = []


class OutputHub:
    """Prefixed, ordered output of every child plus a ring buffer of recent lines per process."""

    def __init__(self, ring_size: int = RING_SIZE) -> None:
        self._ring_size = ring_size
        self._rings: dict[str, deque[str]] = {}
        self._all: deque[tuple[str, str]] = deque(maxlen=ring_size)
        self._muted: set[str] = set()
        self._mute_all = False
        self._only: str | None = None
        self._colours: dict[str, str] = {}
        self._listeners: list[LineListener] = []
        self._width = 0

    # --- the console's API ------------------------------------------------------------------

    def tail(self, name: str | None = None, n: int = 50) -> list[str]:
        """The last ``n`` lines of one process, or of all (prefixed with the name) when no name."""
        if n <= 0:
            return []
        if name is None:
            return [f"{proc} | {line}" for proc, line in list(self._all)[-n:]]
        return list(self._rings.get(name, ()))[-n:]

    def mute(self, name: str | None = None) -> None:
        """Stop writing the lines of ``name`` (every process when no name); they are still kept."""
        if name is None:
            self._mute_all = True
            self._only = None
        else:
            self._muted.add(name)

    def unmute(self, name: str | None = None) -> None:
        if name is None:
            self._mute_all = False
            self._muted.clear()
            self._only = None
        else:
            self._muted.discard(name)
            if self._mute_all:
                self._mute_all = False
                self._only = name

    def only(self, name: str) -> None:
        """Write only the lines of ``name``."""
        self._mute_all = False
        self._muted.clear()
        self._only = name

    def names(self) -> list[str]:
        return list(self._rings)

    def add_listener(self, listener: LineListener) -> Callable[[], None]:
        """Call ``listener(name, line)`` for every line; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def is_shown(self, name: str) -> bool:
        if self._mute_all or name in self._muted:
            return False
        return self._only is None or self._only == name

    # --- feeding ----------------------------------------------------------------------------

    def feed_lines(self, name: str, lines: list[str]) -> None:
        """Record and (unless muted) write whole lines of one process, in one write call."""
        if not lines:
            return
        ring = self._rings.get(name)
        if ring is None:
            ring = self._rings[name] = deque(maxlen=self._ring_size)
        for line in lines:
            ring.append(line)
            self._all.append((name, line))
            for listener in list(self._listeners):
                listener(name, line)
        if not self.is_shown(name):
            return
        out = sys.stdout  # looked up now: the console may have replaced it
        prefix = self._prefix(name, use_colour(out))
        try:
            out.write("".join(f"{prefix}{line}\n" for line in lines))
            out.flush()
        except (OSError, ValueError):  # stdout closed: keep serving
            pass

    def _prefix(self, name: str, colour: bool) -> str:
        self._width = max(self._width, len(name))
        label = name.ljust(self._width)
        if not colour:
            return f"{label} | "
        code = self._colours.get(name)
        if code is None:
            code = self._colours[name] = _PALETTE[len(self._colours) % len(_PALETTE)]
        return f"\033[{code}m{label}\033[0m | "

    def attach(
        self,
        name: str,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        gate: OutputGate | None = None,
    ) -> asyncio.Future[None]:
        """Read ``sock`` on ``loop`` until EOF; the returned future completes at EOF. With a
        ``gate``, lines go through it (held until it opens)."""
        sock.setblocking(False)
        feed: Callable[[str, list[str]], None] = self.feed_lines
        if gate is not None:
            gate._sink = lambda lines: self.feed_lines(name, lines)
            feed = lambda _, lines: gate.feed(lines)  # noqa: E731
        done: asyncio.Future[None] = loop.create_future()
        pending = bytearray()
        fd = sock.fileno()

        def finish() -> None:
            loop.remove_reader(fd)
            if pending:
                feed(name, [pending.decode("utf-8", "replace").rstrip("\r")])
                pending.clear()
            sock.close()
            if not done.done():
                done.set_result(None)

        def on_readable() -> None:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                finish()
                return
            if not data:
                finish()
                return
            pending.extend(data)
            cut = pending.rfind(b"\n")
            if cut < 0:
                if len(pending) > 65536:  # a very long line without newline: write it anyway
                    cut = len(pending) - 1
                    chunk = bytes(pending)
                    pending.clear()
                    feed(name, [chunk.decode("utf-8", "replace")])
                return
            chunk = bytes(pending[:cut])
            del pending[: cut + 1]
            text = chunk.decode("utf-8", "replace")
            feed(name, [line.rstrip("\r") for line in text.split("\n")])

        loop.add_reader(fd, on_readable)
        return done
