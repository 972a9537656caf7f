"""Which files are the user's: a worker forked from the main process imports those again, and
re-runs a user's ``__main__`` script (``app.run()``), but never the library or an entry point."""

from __future__ import annotations

import os
import sys
import sysconfig
import types
from pathlib import Path

import pytest

import runtime
from runtime.supervisor import worker


def test_library_entry_points_and_vivace_are_not_user_files(tmp_path: Path) -> None:
    console_script = os.path.join(sysconfig.get_paths()["scripts"], "vivace")
    assert not worker._is_user_file(console_script)
    assert not worker._is_user_file(os.__file__)
    assert not worker._is_user_file(pytest.__file__)
    assert not worker._is_user_file(runtime.__file__)
    app = tmp_path / "app.py"
    app.write_text("")
    assert worker._is_user_file(str(app))


def test_a_library_beside_an_installed_vivace_is_not_a_user_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # vivace installed in site-packages (not from a source tree): FastAPI & co. sit beside it,
    # and workers forked from the main process must keep them (a heavy app re-imported them all)
    purelib = sysconfig.get_paths()["purelib"]
    monkeypatch.setattr(
        worker,
        "_VIVACE_PACKAGES",
        tuple(os.path.join(purelib, name, "") for name in ("runtime", "repl")),
    )
    monkeypatch.setattr(worker.vlog, "__file__", os.path.join(purelib, "runtime", "log.py"))
    worker._library_prefixes.cache_clear()
    try:
        assert not worker._is_user_file(os.path.join(purelib, "fastapi", "__init__.py"))
        assert not worker._is_user_file(os.path.join(purelib, "runtime", "app.py"))
    finally:
        worker._library_prefixes.cache_clear()


def test_the_vivace_console_script_is_not_rerun_in_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    main = types.ModuleType("__main__")
    main.__file__ = os.path.join(sysconfig.get_paths()["scripts"], "vivace")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert worker.user_main_ref() is None
    script = tmp_path / "serve.py"
    script.write_text("")
    main.__file__ = str(script)
    assert worker.user_main_ref() == ("path", str(script))
