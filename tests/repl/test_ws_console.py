"""Websockets and streams typed in the console, against a real server: in scripted mode (the
values), and in a real terminal (messages printed above the prompt, Ctrl+C ending a stream only).
The same for an app served through ASGI (Starlette)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from repl.streams import SSEParser
from tests.repl.scripted14 import scripted
from tests.repl.test_repl_terminal import Term


def test_sse_parser_follows_the_event_stream_format() -> None:
    parser = SSEParser()
    text = ": keep-alive\nevent: tick\nid: 7\ndata: a\ndata: b\n\ndata: c\r\n\r\nretry: 50\ndat"
    events = list(parser.feed(text))
    shown = [(e.event, e.id, e.data) for e in events]
    assert shown == [("tick", "7", "a\nb"), ("message", "7", "c")]
    assert [(e.data, e.retry) for e in parser.feed("a: x\n\n")] == [("x", 50)]  # "dat" + "a: x"
    assert list(parser.feed("data: y\r")) == []  # a CRLF split between two chunks
    assert [e.data for e in parser.feed("\n\r\n")] == ["y"]


@pytest.mark.slow
def test_websocket_and_streams_in_scripted_mode(tmp_path: Path) -> None:
    run = scripted(
        tmp_path,
        'ws = await client.websocket("/ws")',
        'await ws.send("hi")',
        "await ws.recv()",
        'await ws.send({"a": 1})',
        "await ws.recv()",
        "ws.follow()",
        'await ws.send("followed")',
        "while ws.received < 3: await __import__('asyncio').sleep(0.01)",  # the echo printed
        "await ws.close()",
        "ws.closed, ws.sent, ws.received",
        's = await client.stream("/events?n=3")',
        '[e.json()["n"] for e in s.events], s.status',
        "c = await client.stream('/chunks')",
        "c.chunks >= 1, c.size",
        "print(history)",
    )
    assert run.code == 0, run.stdout + run.stderr
    assert run.record("await ws.recv()")["value"] == "'echo: hi'"
    assert run.records[4]["value"] == """'echo: {"a": 1}'"""
    assert "<- echo: followed" in "".join(r["stdout"] for r in run.records[6:10])
    assert run.record("ws.closed, ws.sent, ws.received")["value"] == "(True, 3, 3)"
    sse = run.record('s = await client.stream("/events?n=3")')["stdout"].splitlines()
    assert sse[0] == "HTTP/1.1 200 OK"
    assert sse[1:] == [f'event: tick  id: {i}  data: {{"n": {i}}}' for i in range(3)]
    assert run.record('[e.json()["n"] for e in s.events], s.status')["value"] == "([0, 1, 2], 200)"
    chunks = run.record("c = await client.stream('/chunks')")["stdout"]
    assert "chunk 0" in chunks and "chunk 2" in chunks
    assert run.record("c.chunks >= 1, c.size")["value"] == "(True, 24)"
    table = run.record("print(history)")["stdout"]
    assert "ws     GET     /ws" in table and "stream GET     /events?n=3" in table


STARLETTE_APP = """
import asyncio
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute


async def events(request):
    async def produce():
        for i in range(2):
            yield f"data: {i}\\n\\n"
            await asyncio.sleep(0.01)
    return StreamingResponse(produce(), media_type="text/event-stream")


async def echo(ws):
    await ws.accept()
    while True:
        await ws.send_text("star: " + await ws.receive_text())


app = Starlette(routes=[Route("/events", events), WebSocketRoute("/ws", echo)])
"""


@pytest.mark.slow
def test_follow_and_a_stream_cancelled_by_ctrl_c_in_a_terminal(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    t = term("--repl", "-w", "1", target="console14_app:app")
    t.wait("vivace console for Console14", 30)
    t.wait_prompt()
    t.run('ws = await client.websocket("/ws")', ">>>")  # runs once the workers serve
    pids = sorted(p.pid for p in psutil.Process(t.child.pid).children(recursive=True))
    t.run("ws.follow()", "printing incoming messages")
    t.run('await ws.send("one")', "<- echo: one")
    mark = len(t.text)
    t.send("s = await client.stream('/forever')\r")
    t.wait(lambda: "data: 3" in t.text[mark:], 20)
    t.send("\x03")  # ends the stream only
    t.wait_prompt()
    t.run("s", "ended by Ctrl+C")
    t.run('await ws.send("two")', "<- echo: two")  # the websocket is still there
    t.run("await ws.close()", "closed (1000)")
    t.run('client.get("/").status_code', "200")
    assert sorted(p.pid for p in psutil.Process(t.child.pid).children(recursive=True)) == pids
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


@pytest.mark.slow
def test_websocket_and_stream_with_an_asgi_app(tmp_path: Path) -> None:
    (tmp_path / "star.py").write_text(textwrap.dedent(STARLETTE_APP))
    from tests.repl import scripted14

    run = scripted14.scripted(
        tmp_path,
        'ws = await client.websocket("/ws")',
        'await ws.send("x")',
        "await ws.recv()",
        "s = await client.stream('/events')",
        "[e.data for e in s.events]",
        app="star:app",
    )
    assert run.code == 0, run.stdout + run.stderr
    assert run.record("await ws.recv()")["value"] == "'star: x'"
    assert run.record("[e.data for e in s.events]")["value"] == "['0', '1']"
