"""workers / restart / scale / logs / eval through the Control contract, from the console thread."""

from __future__ import annotations

import asyncio
import io
import operator
from typing import Any

import pytest
from conftest import FakeControl

from repl.session import Console, run_scripted
from runtime.app import App
from runtime.loader import AppRef
from runtime.options import RunOptions


def _options() -> RunOptions:
    return RunOptions(target=AppRef(module="demo_app", attr="app"))


async def _console(control: Any) -> Console:
    app = App("Demo")
    app.repl_ctx.add(7, name="seven", desc="a user name")
    return Console(app, control, _options(), exit_hint="stop the server")


async def test_namespace_commands_run_on_the_main_loop_from_the_console_thread() -> None:
    control = FakeControl(asyncio.get_running_loop())
    console = await _console(control)
    try:

        async def value(source: str) -> Any:
            outcome = await console.run(source)
            assert outcome.ok, outcome.format_error()
            return outcome.value

        table = repr(await value("workers"))
        assert "Vivace-Server-0-0" in table and "ACKED" in table and "1/1 server workers" in table
        assert "Vivace-Main" not in table
        assert await value("workers['Vivace-Server-0-0'].pid") == 101
        assert await value("workers[0].name") == "Vivace-Server-0-0"
        summary = await value("restart()")
        assert summary == "restart: Vivace-Server-0-0 ready in 1 ms"
        again = await value("await restart('Vivace-Server-0-0')")
        assert again.startswith("restart")
        assert await value("workers[0].pid") == 201
        assert await value("scale(3)") == "scale -> 3"
        assert await value("len([w for w in workers if w.row.kind == 'server'])") == 3
        await value("scale(1)")
        assert await value("workers['Vivace-Server-0-0'].eval('name')") == "Vivace-Server-0-0"
        console.namespace["add"] = operator.add
        assert await value("await workers[0].call(add, 2, 3)") == 5
        assert await value("workers[0].call(add, 2, 3)") == 5  # made where no loop runs
        await value("pending = workers[0].call(add, 1, 1)")
        assert await value("await pending") == 2
        assert "Vivace-Server-0-0 | b" in await value("logs.tail()")
        await value("logs.mute('x')")
        assert control.logs.muted == ["x"]
        assert await value("seven") == 7
        await value("manage('Job', print, {'x': 1}, transient=True)")
        assert control.calls == [("manage", ("Job", print, {"x": 1}, {"transient": True}))]
        assert "custom" in repr(await value("workers"))
        await value("stop()")
        assert control.stopped
    finally:
        console.close()


async def test_repl_ctx_names_the_console_needs_are_skipped_with_a_note() -> None:
    from runtime.app import ReplEntry

    app = App("SkipDemo")
    with pytest.raises(ValueError, match="taken by the console"):
        app.repl_ctx.add(print, name="help", desc="mine")
    # the console still guards itself against a repl_ctx that holds one of its names anyway
    app.repl_ctx._entries["help"] = ReplEntry("help", print, "mine")
    app.repl_ctx.add(3, name="three")
    console = Console(app, None, _options(), exit_hint="stop")
    try:
        assert console.namespace["three"] == 3
        assert console.namespace["help"] is not print
        text = console.banner()
        assert "Not added from app.repl_ctx (the console uses these names): help" in text
        assert "  three" in text and "mine" not in text
    finally:
        console.close()
        from runtime.testing import reset_app_registry

        reset_app_registry()


async def test_bad_names_and_values_say_what_to_do() -> None:
    control = FakeControl(asyncio.get_running_loop())
    console = await _console(control)
    try:
        outcome = await console.run("workers['nope']")
        assert isinstance(outcome.error, KeyError) and "running: Vivace-Server-0-0" in str(
            outcome.error
        )
        outcome = await console.run("scale(0)")
        assert isinstance(outcome.error, ValueError) and ">= 1" in str(outcome.error)
        outcome = await console.run("restart('Vivace-Nope-0')")
        assert isinstance(outcome.error, LookupError)
    finally:
        console.close()


@pytest.mark.parametrize(
    ("statement", "line"),
    [
        (
            "restart('Vivace-Server-9-0')",
            "LookupError: no process named 'Vivace-Server-9-0'; running: Vivace-Server-0-0\n",
        ),
        (
            "scale(0)",
            "ValueError: scale(n) needs a whole number of server workers >= 1, not 0\n",
        ),
        (
            "workers['nope']",
            "KeyError: no process named 'nope'; running: Vivace-Server-0-0\n",
        ),
        ("workers[3]", "IndexError: workers[3]: there is 1 server worker (workers[0])\n"),
        ("again = lambda: scale(-1)\nagain()", "ValueError: scale(n) needs a whole number"),
    ],
)
async def test_a_refused_console_command_is_one_line(statement: str, line: str) -> None:
    control = FakeControl(asyncio.get_running_loop())
    console = await _console(control)
    try:
        outcome = await console.run(statement)
        assert outcome.format_error().startswith(line)
        assert outcome.format_error().count("\n") == 1
    finally:
        console.close()


async def test_user_code_errors_keep_the_statement_frames_only() -> None:
    control = FakeControl(asyncio.get_running_loop())
    console = await _console(control)
    try:
        await console.run("def check():\n    return {}['missing']\n")
        text = (await console.run("check()")).format_error()
        assert text.startswith("Traceback (most recent call last):\n")
        assert text.endswith("KeyError: 'missing'\n")
        assert 'File "<console>", line 1, in <module>' in text and "in check" in text
        await console.run("def inner():\n    return 1 / 0\n")
        call = "workers.control.call_in('Vivace-Server-0-0', inner)"
        await console.run(f"def outer():\n    return workers.bridge.wait({call})\n")
        text = (await console.run("outer()")).format_error()
        assert "ZeroDivisionError" in text and "in outer" in text and "in inner" in text
        for internal in ("repl/workers.py", "repl/evaluate.py", "concurrent", "asyncio"):
            assert internal not in text, text
    finally:
        console.close()


async def test_toolbar_shows_app_url_ready_and_progress() -> None:
    control = FakeControl(asyncio.get_running_loop())
    console = await _console(control)
    try:
        text = "".join(part[1] for part in console.toolbar())
        assert "Demo" in text and control.url in text and "1/1 ready" in text

        class Progress:
            def __init__(self, text: str | None) -> None:
                self.text = text

        control.table["Vivace-Server-0-0"]["state"] = "RESTARTING"
        for cb in control.listeners:
            cb(Progress("reloading: app.py"))
        text = "".join(part[1] for part in console.toolbar())
        assert "0/1 ready" in text and "reloading: app.py" in text
        # "workers run newer code: refresh()" only once new workers run changed code
        # (test_console_code_state.py); this app's module is not a file that changed
        assert "refresh()" not in text
    finally:
        console.close()


@pytest.mark.parametrize(
    ("commands", "code", "out", "err"),
    [
        (["1 + 1", "x = 5; x * 2", "workers[0].pid"], 0, "2\n10\n101\n", ""),
        (["1/0", "'still runs'"], 1, "'still runs'\n", "ZeroDivisionError"),
        (["exit(4)", "'not reached'"], 4, "", ""),
        (["1 +"], 1, "", "SyntaxError"),
    ],
)
async def test_scripted_mode_prints_plain_results_and_exit_codes(
    commands: list[str], code: int, out: str, err: str
) -> None:
    control = FakeControl(asyncio.get_running_loop())
    stdout, stderr = io.StringIO(), io.StringIO()
    result = await run_scripted(
        App("Demo"), control, _options(), commands=commands, stdout=stdout, stderr=stderr
    )
    assert result == code
    assert stdout.getvalue() == out
    assert err in stderr.getvalue()
    assert "\x1b" not in stdout.getvalue() + stderr.getvalue()


async def test_scripted_mode_reads_statements_from_a_stream() -> None:
    stdout = io.StringIO()
    source = io.StringIO(
        "def f(x):\n    return x * 3\n\nf(2)\nimport asyncio\nawait asyncio.sleep(0, 'a')\n"
    )
    code = await run_scripted(App("Demo"), None, _options(), stdin=source, stdout=stdout)
    assert code == 0
    assert stdout.getvalue() == "6\n'a'\n"


async def test_refresh_reimports_the_app_and_keeps_user_names(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "refresh_demo.py"
    source = 'from runtime.app import App\napp = App("RefreshDemo")\nVERSION = {v}\n'
    module.write_text(source.format(v=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    first = importlib.import_module("refresh_demo").app
    options = RunOptions(target=AppRef(module="refresh_demo", attr="app", cwd=str(tmp_path)))
    console = Console(first, None, options, exit_hint="stop")
    try:
        console.stale = True
        await console.run("mine = 'kept'")
        module.write_text(source.format(v=2))
        outcome = await console.run("refresh()")
        assert outcome.ok, outcome.format_error()
        assert outcome.value == "app re-imported from refresh_demo"
        assert console.namespace["app"] is not first and console.app is console.namespace["app"]
        assert sys.modules["refresh_demo"].VERSION == 2
        assert console.namespace["mine"] == "kept" and not console.stale
        module.write_text("def broken(:\n")
        outcome = await console.run("refresh()")
        assert outcome.error is not None  # the error is shown; the console keeps the last app
        assert sys.modules["refresh_demo"].VERSION == 2
    finally:
        console.close()
        sys.modules.pop("refresh_demo", None)
        from runtime.testing import reset_app_registry

        reset_app_registry()


def test_uptime_counts_for_live_processes_only() -> None:
    import datetime as dt
    import time

    from repl.workers import rows, table

    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=90)
    snapshot = {
        "Vivace-Server-0-0": {"server": True, "state": "ACKED", "start_at": started},
        "Vivace-Job-0": {"state": "COMPLETED", "start_at": started},
        "Vivace-Failed-0": {"state": "FAILED", "start_at": started, "stopped_at": time.time()},
    }
    found = {row.name: row for row in rows(snapshot)}
    assert found["Vivace-Server-0-0"].uptime is not None
    assert 89 < found["Vivace-Server-0-0"].uptime < 120
    assert found["Vivace-Job-0"].uptime is None  # ended, end time unknown
    failed = found["Vivace-Failed-0"].uptime  # ended: its run time until the exit
    assert failed is not None and 89 < failed < 120
    text = table(list(found.values()))
    shown = [line.split()[5] for line in text.splitlines()[2:]]
    assert shown[1] == "-" and shown[0].startswith("1m3") and shown[2].startswith("1m3"), shown
