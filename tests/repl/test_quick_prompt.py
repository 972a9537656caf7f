"""``--repl``: the prompt is drawn before the editor is built; what is typed at once is kept
(real terminal)."""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from repl.quickprompt import QuickPrompt
from tests.repl.test_repl_terminal import Term


async def test_keys_are_echoed_kept_and_the_terminal_restored() -> None:
    import termios

    main, secondary = os.openpty()
    with (
        open(secondary, closefd=False) as stdin,
        open(secondary, "w", closefd=False) as echo,
        open(main, "w", closefd=False) as out,
    ):
        before = termios.tcgetattr(secondary)
        quick = QuickPrompt(stdin=stdin, stdout=echo)
        quick.start()
        assert not termios.tcgetattr(secondary)[3] & termios.ICANON  # raw: key by key
        out.write("ab\x7fc")
        out.flush()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if quick.typed.endswith(b"c"):
                break
        quick.print_above("a worker's line\n")
        out.write("\x1b[Dd")
        out.flush()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if quick.typed.endswith(b"d"):
                break
        typed = quick.stop()
        assert typed == b"ab\x7fc\x1b[Dd"
        # the modes saved at start, but for ISIG: until the editor takes the terminal, a Ctrl+C
        # stays a key (a SIGINT would stop the server); the console restores ISIG when it ends
        after = termios.tcgetattr(secondary)
        assert not after[3] & termios.ISIG and before[3] & termios.ISIG
        after[3] |= termios.ISIG
        assert after == before
        shown = ""
        deadline = time.monotonic() + 5
        while not shown.endswith("\r\x1b[K") and time.monotonic() < deadline:
            if select.select([main], [], [], 0.1)[0]:
                shown += os.read(main, 1024).decode()
        # the prompt, a and b echoed, b rubbed out, c; a line printed above the prompt, which is
        # drawn again with what was typed; nothing after the arrow; the line cleared at the end
        assert shown == ">>> ab\b \bc\r\x1b[Ka worker's line\r\n>>> ac\r\x1b[K"
    os.close(main)
    os.close(secondary)


@pytest.mark.slow
def test_what_is_typed_at_the_first_prompt_runs_once(term: Callable[..., Term]) -> None:
    t = term("--repl", "-w", "1", target="console14_app:app")
    t.wait(">>> ", 30)
    t.send('"quick" + "-typed"\r')  # at once: the editor may not be there yet
    t.wait("'quick-typed'", 20)
    t.wait_prompt()
    screen = t.display()
    assert screen.count('>>> "quick" + "-typed"') == 1, screen
    assert screen.count("\n'quick-typed'") == 1, screen
    t.run('client.get("/").status_code', "200")
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


@pytest.mark.slow
def test_names_from_providers_come_above_the_first_prompt(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    """A vivace app's provider names are collected after the first prompt: the lines they add
    to the banner are printed above it, and the names are there for the first statement."""
    (tmp_path / "names.py").write_text(
        'def project(app):\n    return {"shared": "from the project", "app_name": app.name}\n\n\n'
        'def broken():\n    raise LookupError("the settings service is down")\n'
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vivace]\nconsole = ["names:project", "names:broken"]\n'
    )
    t = term("--repl", "-w", "1", target="console14_app:app")
    t.wait(">>> ", 30)
    t.send("shared, app_name\r")  # typed at once
    t.wait("('from the project', 'Console14')", 20)
    t.wait_prompt()
    text = t.text
    assert "shared" in text and "the settings service is down" in text
    assert text.index("Ctrl+C cancels the running statement") < text.index("the settings service")
    t.send("\x04")
    assert t.exit_code() == 0


SLOW_BOOT_APP = """
import os, time
from runtime.app import App
from runtime.response import text

app = App("SlowBoot")
MARK = os.environ["SLOW_BOOT_MARK"]


@app.before_server_start
async def boot(app, loop):
    time.sleep(float(os.environ.get("SLOW_BOOT_SECONDS", "3")))
    if os.environ.get("SLOW_BOOT_FAILS"):
        raise RuntimeError("the database is not there")
    open(MARK, "w").close()


@app.get("/")
async def index(request):
    return text("served")
"""


@pytest.mark.slow
def test_the_prompt_shows_while_the_workers_boot_and_statements_wait_for_them(
    term: Callable[..., Term], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--repl`` opens its console once the workers are started, not once they serve; the first
    statement waits until they do."""
    (tmp_path / "slow_boot.py").write_text(SLOW_BOOT_APP)
    mark = tmp_path / "booted"
    monkeypatch.setenv("SLOW_BOOT_MARK", str(mark))
    t = term("--repl", "-w", "1", target="slow_boot:app")
    t.wait(">>> ", 30)
    assert not mark.exists(), "the prompt waited for the worker's start-up"
    t.send("client.get('/').text\r")  # typed while the worker still boots
    t.wait("'served'", 30)
    assert mark.exists()
    t.wait_prompt()
    t.send("\x04")
    assert t.exit_code() == 0
    assert t.stty_unchanged()


@pytest.mark.slow
def test_a_start_up_that_fails_behind_the_early_prompt_restores_the_terminal(
    term: Callable[..., Term], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow_boot.py").write_text(SLOW_BOOT_APP)
    monkeypatch.setenv("SLOW_BOOT_MARK", str(tmp_path / "booted"))
    monkeypatch.setenv("SLOW_BOOT_SECONDS", "1")
    monkeypatch.setenv("SLOW_BOOT_FAILS", "1")
    t = term("--repl", "-w", "1", target="slow_boot:app")
    t.wait(">>> ", 30)
    assert t.exit_code() == 1
    assert "the database is not there" in t.text
    failed = t.text.index("Start-up failed")
    assert t.text.rindex(">>>") < failed  # the console closed before the error was shown
    assert t.stty_unchanged()
