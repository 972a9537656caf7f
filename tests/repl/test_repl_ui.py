"""The editor with scripted keys: prompt_toolkit pipe input and DummyOutput."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_input, create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from repl.evaluate import Outcome
from repl.ui import ConsoleUI, history_path, routed_output


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp:
        yield inp


def _ui(pipe: PipeInput, tmp_path: Path, ns: dict[str, Any] | None = None) -> ConsoleUI:
    namespace = ns if ns is not None else {}
    return ConsoleUI(
        lambda: namespace,
        toolbar=lambda: "toolbar",
        history_file=tmp_path / "history",
        input=pipe,
        output=DummyOutput(),
    )


async def test_read_returns_a_line_and_keeps_history(pipe: PipeInput, tmp_path: Path) -> None:
    ui = _ui(pipe, tmp_path)
    pipe.send_text("1 + 1\r")
    assert await asyncio.wait_for(ui.read(), 10) == "1 + 1"
    assert "+1 + 1" in (tmp_path / "history").read_text()


async def test_multi_line_input(pipe: PipeInput, tmp_path: Path) -> None:
    ui = _ui(pipe, tmp_path)
    pipe.send_text("for i in range(2):\rx = i\r\r")  # the editor indents
    text = await asyncio.wait_for(ui.read(), 10)
    assert text.splitlines() == ["for i in range(2):", "    x = i"]


async def test_ctrl_c_clears_the_line_and_ctrl_d_ends(pipe: PipeInput, tmp_path: Path) -> None:
    ui = _ui(pipe, tmp_path)
    pipe.send_text("abc\x03")
    pipe.send_text("2\r")
    assert await asyncio.wait_for(ui.read(), 10) == "2"
    pipe.send_text("\x04")
    with pytest.raises(EOFError):
        await asyncio.wait_for(ui.read(), 10)


async def test_keys_while_a_statement_runs(pipe: PipeInput, tmp_path: Path) -> None:
    ui = _ui(pipe, tmp_path)
    interrupted = asyncio.Event()
    with ui.interruptible(interrupted.set):
        pipe.send_text("ab")
        pipe.send_text("\x03")
        await asyncio.wait_for(interrupted.wait(), 10)
    pipe.send_text("c\r")  # typed ahead keys are kept for the next prompt
    assert await asyncio.wait_for(ui.read(), 10) == "abc"
    with ui.interruptible(interrupted.set):
        pipe.send_text("1 + 2\r")
        await asyncio.sleep(0.2)
    assert await asyncio.wait_for(ui.read(), 10) == "1 + 2"


async def test_show_values_errors_and_plain_types(pipe: PipeInput, tmp_path: Path) -> None:
    class Plain:
        def __repr__(self) -> str:
            return "plain\nrepr"

    written: list[str] = []
    ui = ConsoleUI(lambda: {}, input=pipe, output=DummyOutput(), plain_types=(Plain,))
    ui.output.write_raw = written.append  # type: ignore[method-assign,assignment]
    ui.show(Outcome(value=Plain(), has_value=True))
    assert written == ["plain\r\nrepr\r\n"]
    ui.show(Outcome(cancelled=True))
    assert "KeyboardInterrupt" in written[-1]
    ui.show(Outcome(value=[1, 2], has_value=True))
    ui.show(Outcome(error=ValueError("x")))


def test_history_path_is_per_project_with_an_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIVACE_HISTORY_FILE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    one = history_path(tmp_path / "a")
    two = history_path(tmp_path / "b")
    assert one != two and one.parent == tmp_path / "vivace" / "history"
    assert one.name.startswith("a-")
    monkeypatch.setenv("VIVACE_HISTORY_FILE", str(tmp_path / "h"))
    assert history_path(tmp_path / "a") == tmp_path / "h"


def test_routed_output_moves_terminal_logging_handlers_and_restores_them() -> None:
    import logging

    handler = logging.StreamHandler(sys.stdout)
    logger = logging.getLogger("vivace.test.routed")
    logger.addHandler(handler)
    try:
        before = sys.stdout
        with routed_output() as proxy:
            assert handler.stream is proxy and sys.stdout is proxy and sys.stderr is proxy
            print("through the proxy")
            assert proxy.drain(5)
        assert handler.stream is sys.stdout and sys.stdout is before
    finally:
        logger.removeHandler(handler)


async def test_lines_printed_above_the_prompt_leave_the_terminal_in_raw_mode(
    pipe: PipeInput, tmp_path: Path
) -> None:
    """A worker's line written while the prompt is shown: erased prompt, the line, the prompt
    again, and no switch to cooked mode (in which the terminal echoed a key typed that moment
    where the cursor stood: a Tab shifted the prompt eight columns)."""
    cooked: list[bool] = []
    real_cooked_mode = pipe.cooked_mode

    def cooked_mode() -> Any:
        cooked.append(True)
        return real_cooked_mode()

    pipe.cooked_mode = cooked_mode  # type: ignore[method-assign]
    screen = io.StringIO()
    output = Vt100_Output(screen, lambda: Size(rows=24, columns=80), term="xterm")
    ui = ConsoleUI(
        lambda: {},
        toolbar=lambda: "toolbar",
        history_file=tmp_path / "history",
        input=pipe,
        output=output,
    )
    with routed_output() as proxy:
        proxy._output = output  # the terminal's, which the proxy takes from the session
        reading = asyncio.ensure_future(ui.read())
        deadline = asyncio.get_running_loop().time() + 10
        while proxy._get_app_loop() is None:  # the prompt is up
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        pipe.send_text("1 +")
        await asyncio.sleep(0.1)
        print("a worker's line")
        assert await asyncio.to_thread(proxy.drain, 5)
        await asyncio.sleep(0.1)  # the loop writes it
        pipe.send_text(" 2\r")
        assert await asyncio.wait_for(reading, 10) == "1 + 2"
    written = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", screen.getvalue())
    assert "a worker's line" in written
    assert ">>> 1 +" in written.split("a worker's line", 1)[1]  # the prompt drawn again below
    assert cooked == []


async def test_the_terminal_stays_raw_between_prompts_of_a_session(tmp_path: Path) -> None:
    """Held for the session, raw mode outlives each prompt: right after a statement is entered
    (before anything else reads the keys) a key typed is not echoed by the terminal. Before, the
    editor put the terminal back in cooked mode there, and a key typed ahead was echoed where the
    cursor stood, shifting the prompt drawn next."""
    master, slave = os.openpty()
    stdin = os.fdopen(slave, "r", closefd=False)
    try:
        terminal = create_input(stdin)
        ui = ConsoleUI(
            lambda: {},
            toolbar=lambda: "toolbar",
            history_file=tmp_path / "history",
            input=terminal,
            output=DummyOutput(),
        )
        assert termios.tcgetattr(slave)[3] & termios.ECHO  # a terminal as a shell leaves it
        with ui.held_raw():
            os.write(master, b"1 + 1\r")
            assert await asyncio.wait_for(ui.read(), 10) == "1 + 1"
            assert not termios.tcgetattr(slave)[3] & (termios.ECHO | termios.ICANON)
        assert termios.tcgetattr(slave)[3] & termios.ECHO  # given back as it was
    finally:
        stdin.close()
        os.close(slave)
        os.close(master)
