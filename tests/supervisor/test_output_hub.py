"""OutputHub: whole lines in one write, per-process order, partial lines, ring buffer, muting."""

from __future__ import annotations

import asyncio
import io
import socket
import sys

import pytest

from runtime.supervisor.output import OutputHub


class Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def _feed(hub: OutputHub, name: str, chunks: list[bytes]) -> None:
    ours, theirs = socket.socketpair()
    done = hub.attach(name, ours, asyncio.get_running_loop())
    for chunk in chunks:
        theirs.sendall(chunk)
        await asyncio.sleep(0.01)
    theirs.close()
    await asyncio.wait_for(done, 5)


async def test_lines_are_prefixed_joined_and_partial_lines_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Recorder()
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys, "stdout", out)  # looked up at write time, as the console needs
    hub = OutputHub()
    await _feed(hub, "Vivace-Server-0-0", [b"one\ntw", b"o\nthree\n", b"tail without newline"])
    assert out.getvalue().splitlines() == [
        "Vivace-Server-0-0 | one",
        "Vivace-Server-0-0 | two",
        "Vivace-Server-0-0 | three",
        "Vivace-Server-0-0 | tail without newline",
    ]
    assert all(w.endswith("\n") for w in out.writes)  # never a torn line
    assert hub.tail("Vivace-Server-0-0", 2) == ["three", "tail without newline"]
    assert hub.tail(n=1) == ["Vivace-Server-0-0 | tail without newline"]


async def test_mute_unmute_only_and_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    out = Recorder()
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys, "stdout", out)
    hub = OutputHub()
    seen: list[tuple[str, str]] = []
    remove = hub.add_listener(lambda name, line: seen.append((name, line)))
    hub.mute("A")
    hub.feed_lines("A", ["muted"])
    hub.feed_lines("B", ["shown"])
    hub.unmute("A")
    hub.only("A")
    hub.feed_lines("B", ["hidden by only"])
    hub.feed_lines("A", ["only A"])
    hub.mute()
    hub.feed_lines("A", ["all muted"])
    hub.unmute()
    hub.feed_lines("B", ["back"])
    remove()
    hub.feed_lines("B", ["after remove"])
    text = out.getvalue()
    assert "muted\n" not in text and "hidden by only" not in text and "all muted" not in text
    assert "A | only A" in text and "B | shown" in text and "B | back" in text
    assert hub.tail("A") == ["muted", "only A", "all muted"]  # kept even when muted
    assert ("B", "after remove") not in seen and ("A", "muted") in seen


def test_colour_prefix_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(Recorder):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", out)
    OutputHub().feed_lines("Vivace-Server-0-0", ["hello"])
    assert out.getvalue() == "\033[36mVivace-Server-0-0\033[0m | hello\n"
