"""The first prompt, drawn before the editor exists: ``--repl`` opens at once.

Importing and building the editor (ptpython, prompt_toolkit, pygments, jedi) takes a few hundred
milliseconds, most of the time from launch to prompt. ``QuickPrompt`` needs nothing but the
standard library: the console shows its banner and ``>>> `` as soon as the workers serve, while
the editor is built in a thread. Until it is ready, keys are read in raw mode, printable ones
echoed (Backspace too), and everything typed is kept; then the line is cleared, the editor draws
its own prompt on it, and the keys are handed to it as if typed there (Enter, Ctrl+C, Ctrl+D and
arrows included), so nothing typed is lost or applied twice. Meanwhile ``sys.stdout`` (where the
workers' output is written, looked up at each write) prints whole lines above the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from typing import Any, TextIO

__all__ = ["PROMPT", "QuickPrompt", "real_stdout"]

PROMPT = ">>> "


def real_stdout() -> TextIO:
    """``sys.stdout``, or the terminal's stream behind the quick prompt's while it is shown
    (the editor, built meanwhile, writes to the terminal itself)."""
    out = sys.stdout
    return out.real if isinstance(out, _Above) else out


class _Above(io.TextIOBase):
    """``sys.stdout`` while the quick prompt is shown: whole lines go above it."""

    def __init__(self, quick: QuickPrompt, real: TextIO) -> None:
        self._quick = quick
        self.real = real
        self._partial = ""

    def write(self, text: str) -> int:
        text = self._partial + text
        whole, newline, self._partial = text.rpartition("\n")
        if newline:
            self._quick.print_above(whole + "\n")
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def end(self) -> None:
        if self._partial:
            self._quick.print_above(self._partial)
            self._partial = ""


class QuickPrompt:
    """``start()`` prints the prompt and collects keys; ``stop()`` returns them (bytes)."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._fd = self._stdin.fileno()
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.typed = bytearray()
        self._echoed: list[str] = []
        self._echo = True  # until a key the line cannot show (arrows, Enter): then kept only
        self._above: _Above | None = None

    def _write(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()

    def start(self) -> None:
        import termios
        import tty

        try:
            self._saved = termios.tcgetattr(self._fd)
            tty.setraw(self._fd, termios.TCSANOW)
            mode = termios.tcgetattr(self._fd)
            mode[1] |= termios.OPOST  # "\n" still moves to the start of the next line
            termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        except (termios.error, OSError):
            self._saved = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._on_input)
        self._write(PROMPT)
        if sys.stdout is self._stdout:
            self._above = _Above(self, self._stdout)
            sys.stdout = self._above

    def _on_input(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            return
        if not data:
            return
        self.typed += data
        if not self._echo:
            return
        for char in data.decode("utf-8", "replace"):
            if char == "\x7f" or char == "\x08":
                if self._echoed:
                    self._echoed.pop()
                    self._write("\b \b")
            elif char.isprintable():
                self._echoed.append(char)
                self._write(char)
            else:
                self._echo = False  # the editor shows the rest once it is there
                return

    def print_above(self, text: str) -> None:
        """Print ``text`` above the prompt and draw the prompt and what was echoed again."""
        self._write("\r\x1b[K" + text.rstrip("\n") + "\n" + PROMPT + "".join(self._echoed))

    def stop(self) -> bytes:
        """Stop reading, restore the terminal (but for ISIG), clear the line; the keys typed
        meanwhile."""
        above, self._above = self._above, None
        if above is not None:
            if sys.stdout is above:
                sys.stdout = above.real
            above.end()
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            self._loop = None
        if self._saved is not None:
            import termios

            # the modes saved at start(), but with ISIG still off: the editor takes the terminal
            # next, and a Ctrl+C typed before it does must stay a key it reads, not a SIGINT
            # that stops the server (a race seen under load). The console's TerminalModes puts
            # the modes it saved back when the console ends.
            mode = list(self._saved)
            mode[3] &= ~termios.ISIG
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSANOW, mode)
            self._saved = None
        self._write("\r\x1b[K")  # the editor draws its prompt and the typed text here
        return bytes(self.typed)
