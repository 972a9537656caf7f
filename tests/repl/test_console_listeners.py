"""``do()`` on a vivace app runs its server listeners once in the console's process (real
processes): ``app.ctx`` resources exist for ``do()``, the teardown runs when the process stops,
and the serving process of ``--single-process`` does not run them twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.repl.scripted14 import scripted

pytestmark = pytest.mark.slow


def _marks(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(pid), event) for pid, event in (line.split() for line in lines)]


def test_listeners_run_once_before_the_first_do_and_stop_at_the_end(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    run = scripted(
        tmp_path,
        "import os; main = os.getpid()",
        "hasattr(app.ctx, 'hits')",
        "(await do('/stats')).response.body",
        "await app.ctx.queue.get()",  # the queue was made on the statements' loop
        "app.ctx.hits",
        "main",
        env={"CONSOLE14_MARKS": str(marks)},
    )
    assert run.code == 0, run.stdout + run.stderr
    assert run.records[2]["value"] == "False"  # nothing ran before the first do()
    assert '"hits":1' in run.records[3]["value"]
    assert run.records[4]["value"] == "1"
    assert run.record("app.ctx.hits")["value"] == "1"
    main = int(run.record("main")["value"])
    events = _marks(marks)
    in_main = [event for pid, event in events if pid == main]
    assert in_main == [
        "before_server_start",
        "after_server_start",
        "before_server_stop",
        "after_server_stop",
    ]
    workers = Counter(event for pid, event in events if pid != main)
    assert workers["before_server_start"] == 1 and workers["after_server_stop"] == 1


def test_the_ctx_and_the_queue_live_on_the_statements_loop(tmp_path: Path) -> None:
    run = scripted(
        tmp_path,
        'r1 = await do("/stats")',
        'r2 = await do("/hello")',
        "r2.response.status",
        'r3 = await do("/stats")',
        "app.ctx.hits, app.ctx.queue.qsize()",
        "await app.ctx.queue.get() + await app.ctx.queue.get()",
    )
    assert run.code == 0, run.stdout + run.stderr
    assert run.record("r2.response.status")["value"] == "404"
    assert run.record("app.ctx.hits, app.ctx.queue.qsize()")["value"] == "(2, 2)"
    assert run.records[-1]["value"] == "3"


def test_a_failing_start_up_listener_is_one_clear_error(tmp_path: Path) -> None:
    run = scripted(
        tmp_path,
        "app.before_server_start(lambda app: 1 / 0)",
        'await do("/")',
    )
    assert run.code == 1
    error = run.records[-1]["error"]
    assert error["type"] == "ListenersFailed"
    assert "before_server_start of Console14 failed in the console's process" in error["message"]
    assert "ZeroDivisionError" in error["message"]


def test_single_process_does_not_run_them_twice(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    run = scripted(
        tmp_path,
        "import os; main = os.getpid()",
        '(await do("/stats")).response.status',
        "main",
        args=("--single-process",),
        env={"CONSOLE14_MARKS": str(marks)},
    )
    assert run.code == 0, run.stdout + run.stderr
    main = int(run.record("main")["value"])
    in_main = Counter(event for pid, event in _marks(marks) if pid == main)
    assert in_main["before_server_start"] == 1 and in_main["after_server_stop"] == 1
