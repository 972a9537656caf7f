"""Scripted ``--json``: one JSON object per statement on stdout, nothing else (real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repl.scripted14 import scripted


@pytest.mark.slow
def test_one_object_per_statement_and_nothing_else_on_stdout(tmp_path: Path) -> None:
    run = scripted(
        tmp_path,
        'client.get("/").status_code',
        'print("to stdout"); x = 41',
        "x + 1",
        "1 / 0",
        "import sys; print('err', file=sys.stderr)",
    )
    assert run.code == 1, run.stderr  # a statement raised
    statements = [r["statement"] for r in run.records]
    assert statements == [
        'client.get("/").status_code',
        'print("to stdout")',
        "x = 41",
        "x + 1",
        "1 / 0",
        "import sys",
        "print('err', file=sys.stderr)",
    ]
    first = run.records[0]
    assert set(first) == {"statement", "ok", "value", "stdout", "error", "elapsed_ms"}
    assert first["ok"] is True and first["value"] == "200" and first["error"] is None
    assert isinstance(first["elapsed_ms"], float) and first["elapsed_ms"] > 0
    assert run.record('print("to stdout")')["stdout"] == "to stdout\n"
    assert run.record('print("to stdout")')["value"] is None
    assert run.record("x + 1")["value"] == "42"
    failed = run.record("1 / 0")
    assert failed["ok"] is False and failed["value"] is None
    assert failed["error"]["type"] == "ZeroDivisionError"
    assert failed["error"]["message"] == "division by zero"
    assert failed["error"]["traceback"].startswith("Traceback (most recent call last):")
    # the server's and the workers' log lines went to stderr, not between the JSON lines
    assert "Starting worker" in run.stderr
    assert "Starting worker" not in run.stdout
    assert "err\n" in run.stderr


@pytest.mark.slow
def test_statements_from_stdin_and_exit_code(tmp_path: Path) -> None:
    run = scripted(tmp_path, stdin="a = 2\nfor i in range(2):\n    print(i)\n\nexit(3)\n")
    assert run.code == 3
    assert [r["statement"] for r in run.records] == [
        "a = 2",
        "for i in range(2):\n    print(i)",
        "exit(3)",
    ]
    assert run.records[1]["stdout"] == "0\n1\n"
    assert run.records[2]["exit_code"] == 3


@pytest.mark.slow
def test_a_syntax_error_is_one_object(tmp_path: Path) -> None:
    run = scripted(tmp_path, "1 +")
    assert run.code == 1
    assert len(run.records) == 1
    assert run.records[0]["error"]["type"] == "SyntaxError"


def test_json_without_a_script_says_what_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    from repl.session import console_for
    from runtime.cli import parse_command

    options = parse_command(["tests.repl.console14_app:app", "--dev", "--json"])
    assert options.repl_json and options.repl == "enter"
    assert console_for(options) is None
    captured = capsys.readouterr()
    assert "--json applies to the scripted console: add --repl-command CODE" in captured.err
    assert captured.out == ""
