"""Names, banner, help() and the user's app.repl_ctx entries."""

from __future__ import annotations

import pytest

from repl.namespace import BUILTIN_NAMES, Help, banner, check_user_entries, describe, user_entries
from runtime.app import App, ReplContext, ReplEntry


def test_the_apps_repl_context_is_the_one_registry() -> None:
    ctx = ReplContext()

    def helper() -> None:
        """Does a helpful thing for the console user, and then some more words here."""

    ctx.add(helper)
    ctx.add(42, name="answer", desc="the answer")
    entries = {e.name: e for e in ctx}
    assert entries["helper"].obj is helper and isinstance(entries["helper"], ReplEntry)
    assert entries["helper"].desc == "Does a helpful thing for the console use"
    assert entries["answer"].desc == "the answer"
    with pytest.raises(ValueError, match="taken by the console"):
        ctx.add(1, name="client")
    with pytest.raises(ValueError, match="identifier"):
        ctx.add(3, name="not valid")


def test_entries_are_read_from_the_app() -> None:
    app = App("Demo")
    app.repl_ctx.add(len, desc="length")
    app.repl_ctx.token = "abc"
    assert [tuple(e) for e in user_entries(app)] == [("len", len, "length"), ("token", "abc", "")]
    with pytest.raises(ValueError):
        app.repl_ctx.add(1, name="workers")


def test_every_console_name_is_a_builtin_name() -> None:
    names = describe(has_client=True, has_control=True, single_process=False, can_refresh=True)
    assert {n.name for n in names} <= set(BUILTIN_NAMES)
    assert "routes" in BUILTIN_NAMES


def test_collisions_with_built_ins_raise_with_a_fix() -> None:
    entries = [ReplEntry("do", 1, "")]
    with pytest.raises(ValueError, match="name='my_do'"):
        check_user_entries(entries, set())


def test_banner_lists_every_name_and_user_entries(capsys: pytest.CaptureFixture[str]) -> None:
    names = describe(has_client=True, has_control=True, single_process=False, can_refresh=True)
    ctx = ReplContext()
    ctx.add(1, name="db", desc="the database")
    text = banner("Demo", names, list(ctx), url="http://x", exit_hint="stop the server")
    for name in ("app", "runtime", "client", "do", "workers", "restart", "reload", "scale"):
        assert f"  {name} " in text
    for name in ("manage", "stop", "logs", "refresh", "routes"):
        assert f"  {name} " in text
    assert "From app.repl_ctx:" in text and "the database" in text
    assert "Ctrl+D or exit() stop the server" in text
    Help(lambda: text)()
    assert capsys.readouterr().out.strip() == text.strip()


def test_single_process_banner_has_no_worker_commands() -> None:
    names = [
        n.name
        for n in describe(
            has_client=True, has_control=False, single_process=True, can_refresh=False
        )
    ]
    assert "workers" not in names and "restart" not in names and "app.ctx" in names
