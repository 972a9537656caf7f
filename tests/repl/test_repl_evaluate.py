"""The evaluator: console semantics, top-level await, errors, cancellation on both runners."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from repl.evaluate import (
    Evaluator,
    LoopRunner,
    SyncLane,
    ThreadRunner,
    is_complete,
    needs_loop,
    split_statements,
)


async def test_last_expression_is_the_value_and_underscore_keeps_it() -> None:
    ev = Evaluator({})
    outcome = await ev.run("x = 20\nx + 1")
    assert outcome.ok and outcome.has_value and outcome.value == 21
    assert ev.namespace["_"] == 21
    outcome = await ev.run("_ * 2")
    assert outcome.value == 42


async def test_statements_without_value_and_none_are_not_shown() -> None:
    ev = Evaluator({})
    assert not (await ev.run("y = 1")).has_value
    assert not (await ev.run("None")).has_value
    assert not (await ev.run("print")).error


async def test_top_level_await_and_awaitable_results_are_awaited() -> None:
    ev = Evaluator({})
    assert (await ev.run("import asyncio\nawait asyncio.sleep(0, result=5)")).value == 5
    await ev.run("async def f():\n    return 'awaited'\n")
    outcome = await ev.run("f()")  # a coroutine value is awaited before it is shown
    assert outcome.value == "awaited"
    outcome = await ev.run("asyncio.ensure_future(f())")
    assert outcome.value == "awaited"


async def test_multi_line_blocks_with_await_inside() -> None:
    ev = Evaluator({})
    source = (
        "import asyncio\ntotal = 0\nfor i in range(3):\n    total += await asyncio.sleep(0, i)\n"
    )
    await ev.run(source)
    assert ev.namespace["total"] == 3


async def test_exception_is_an_outcome_with_a_traceback_without_evaluator_frames() -> None:
    ev = Evaluator({})
    await ev.run("def boom():\n    raise KeyError('nope')\n")
    outcome = await ev.run("boom()")
    assert not outcome.ok and isinstance(outcome.error, KeyError)
    text = outcome.format_error()
    assert "KeyError: 'nope'" in text and "in boom" in text
    assert "evaluate.py" not in text


async def test_syntax_error_is_reported() -> None:
    outcome = await Evaluator({}).run("1 +")
    assert isinstance(outcome.error, SyntaxError)
    assert "SyntaxError" in outcome.format_error()


async def test_system_exit_becomes_an_exit_code() -> None:
    ev = Evaluator({})
    assert (await ev.run("raise SystemExit")).exit_code == 0
    assert (await ev.run("raise SystemExit(3)")).exit_code == 3
    assert (await ev.run("raise SystemExit('bye')")).exit_code == 1


async def test_after_statement_hooks_run() -> None:
    ev = Evaluator({})
    seen: list[int] = []

    async def hook() -> None:
        seen.append(1)

    ev.after_statement.append(hook)
    await ev.run("1")
    assert seen == [1]


def test_split_statements_and_is_complete() -> None:
    source = "x = 1; x + 1\n@staticmethod\ndef f():\n    return 1\n\nawait g()\n"
    assert split_statements(source) == [
        "x = 1",
        "x + 1",
        "@staticmethod\ndef f():\n    return 1",
        "await g()",
    ]
    assert is_complete("await g()")
    assert not is_complete("for i in x:")
    assert not is_complete("(1,")


async def test_loop_runner_cancel_stops_only_the_statement() -> None:
    runner = LoopRunner(Evaluator({}))
    task = asyncio.create_task(runner.run("import asyncio\nawait asyncio.sleep(30)"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    runner.cancel()
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.cancelled and time.monotonic() - started < 2
    assert (await runner.run("1 + 1")).value == 2


async def test_thread_runner_runs_off_the_calling_loop_and_cancels() -> None:
    runner = ThreadRunner(Evaluator({}))
    try:
        outcome = await runner.run("import threading\nthreading.current_thread().name")
        assert outcome.value == "vivace-console"
        task = asyncio.create_task(runner.run("import asyncio\nawait asyncio.sleep(30)"))
        await asyncio.sleep(0.1)
        runner.cancel()
        assert (await asyncio.wait_for(task, 5)).cancelled
        # blocking code: interrupted by an async exception a moment later
        task = asyncio.create_task(runner.run("import time\nfor _ in range(300): time.sleep(0.1)"))
        await asyncio.sleep(0.2)
        runner.cancel()
        assert (await asyncio.wait_for(task, 5)).cancelled
        assert (await runner.run("2 * 21")).value == 42
    finally:
        runner.close()
    assert not runner.thread.is_alive()


async def test_thread_runner_leaves_a_statement_stuck_in_c_behind() -> None:
    ns: dict[str, object] = {}
    runner = ThreadRunner(Evaluator(ns))
    first_thread = runner.thread
    try:
        await runner.run("import time; x = 1")
        task = asyncio.create_task(runner.run("time.sleep(3); later = 5"))  # C: no interrupt
        await asyncio.sleep(0.2)
        started = time.monotonic()
        runner.cancel()
        outcome = await asyncio.wait_for(task, 10)
        assert outcome.cancelled and outcome.detached
        assert "keeps running in the background" in outcome.format_error()
        assert time.monotonic() - started < runner.ABANDON_AFTER + 2
        assert runner.thread is not first_thread and first_thread.is_alive()
        assert (await runner.run("x + 1")).value == 2  # same namespace, new thread
        # the statement was not interrupted where it stood: it finishes, and its thread ends
        first_thread.join(10)
        assert not first_thread.is_alive() and ns["later"] == 5
    finally:
        runner.close()


@pytest.mark.parametrize("source", ["exit()", "quit(2)"])
async def test_console_exit_objects(source: str) -> None:
    from repl.namespace import ExitConsole

    ns = {"exit": ExitConsole("exit", "stop"), "quit": ExitConsole("quit", "stop")}
    outcome = await Evaluator(ns).run(source)
    assert outcome.exit_code == (0 if source == "exit()" else 2)
    assert repr(ns["exit"]) == "Use exit() or Ctrl+D to stop"


# --- plain statements on a thread with no event loop (ThreadRunner) ------------------------------


def test_needs_loop_is_a_top_level_await_only() -> None:
    ev = Evaluator({})
    assert not needs_loop(*ev.compile("x = 1\nx"))
    assert not needs_loop(*ev.compile("async def f():\n    await g()"))  # defines, never awaits
    assert needs_loop(*ev.compile("await g()"))
    assert needs_loop(*ev.compile("x = await g()\nx"))
    assert needs_loop(*ev.compile("async with g() as x:\n    pass"))
    assert needs_loop(*ev.compile("[x async for x in g()]"))


async def test_plain_statements_run_on_one_thread_without_a_loop_awaiting_ones_on_the_loop() -> (
    None
):
    ns: dict[str, Any] = {}
    runner = ThreadRunner(Evaluator(ns))

    async def value(source: str) -> Any:
        outcome = await runner.run(source)
        assert outcome.ok, outcome.format_error()
        return outcome.value

    try:
        await value("import asyncio, threading")
        plain = "threading.current_thread().name"
        assert await value(plain) == "vivace-console"
        assert await value(plain) == "vivace-console"  # the same thread, statement after statement
        assert await value("asyncio.get_running_loop") is not None
        assert (await runner.run("asyncio.get_running_loop()")).error is not None  # no loop here
        assert await value("asyncio.run(asyncio.sleep(0, 'ran'))") == "ran"  # as in a script
        on_loop = "await asyncio.sleep(0); threading.current_thread().name"
        assert await value(on_loop) == "vivace-console-loop"
        assert await value("asyncio.sleep(0, 'awaited')") == "awaited"  # an awaitable value
        assert await value("async def f():\n    return threading.current_thread().name") is None
        assert await value("f()") == "vivace-console-loop"
        error = (await runner.run("1 / 0")).format_error()  # the statement's frame only
        assert error.endswith(
            'File "<console>", line 1, in <module>\nZeroDivisionError: division by zero\n'
        )
        assert (await runner.run("raise SystemExit(3)")).exit_code == 3
        assert await value("_") == "vivace-console-loop"  # the last value shown
    finally:
        runner.close()
    assert not runner.thread.is_alive()


async def test_what_a_thread_holds_carries_from_one_plain_statement_to_the_next() -> None:
    """Django's connections are per thread, and an SQLite in-memory database is per connection
    (sqlite3 also refuses a connection from another thread): the sync lane keeps both."""
    runner = ThreadRunner(Evaluator({}))
    try:
        for statement in (
            "import sqlite3, threading; local = threading.local(); local.seen = 1",
            "db = sqlite3.connect(':memory:'); db.execute('create table t (x)')",
            "db.execute('insert into t values (42)')",
        ):
            outcome = await runner.run(statement)
            assert outcome.ok, outcome.format_error()
        outcome = await runner.run("db.execute('select x from t').fetchall(), local.seen")
        assert outcome.value == ([(42,)], 1)
        # a statement that awaits runs on the loop's thread: the connection refuses it there
        outcome = await runner.run("import asyncio\nawait asyncio.sleep(0)\ndb.execute('select 1')")
        assert outcome.error is not None and "thread" in str(outcome.error)
        # closed on its own thread (Python 3.13 warns about a connection left for the GC)
        assert (await runner.run("db.close()")).ok
    finally:
        runner.close()


async def test_ctrl_c_interrupts_a_plain_statement_at_once_and_keeps_its_thread() -> None:
    runner = ThreadRunner(Evaluator({}))
    thread = runner.thread
    try:
        task = asyncio.create_task(runner.run("n = 0\nwhile True:\n    n += 1"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        runner.cancel()
        outcome = await asyncio.wait_for(task, 5)
        assert outcome.cancelled and not outcome.detached
        assert time.monotonic() - started < runner.INTERRUPT_AFTER  # no wait for a timer
        assert runner.thread is thread
        assert (await runner.run("n > 0")).value is True
        runner.cancel()  # a Ctrl+C between statements changes nothing
        assert (await runner.run("n > 0")).value is True
    finally:
        runner.close()


def test_sync_lane_runs_calls_in_order_and_interrupts_only_a_running_call() -> None:
    lane = SyncLane("lane")
    try:
        assert not lane.interrupt()  # idle: nothing to interrupt, nothing pending afterwards
        seen: list[int] = []
        futures = [
            lane.submit(lambda i=i: seen.append(i) or threading.get_ident()) for i in range(5)
        ]
        endings = [f.result(5) for f in futures]
        assert seen == [0, 1, 2, 3, 4]
        assert {value for value, _ in endings} == {lane.thread.ident}
        started = threading.Event()

        def spin() -> None:
            started.set()
            while True:
                pass

        future = lane.submit(spin)
        assert started.wait(5)
        assert lane.busy and lane.interrupt()
        _, error = future.result(5)
        assert isinstance(error, KeyboardInterrupt) and not lane.busy
        assert lane.submit(lambda: "next").result(5) == ("next", None)
    finally:
        lane.stop()
        lane.thread.join(5)
    assert not lane.thread.is_alive()
