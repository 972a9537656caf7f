"""The reloader process body (reloader_main) run for real in a subprocess with a recording send."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from reload_helpers import ReloaderProcess


def test_start_listener_runs_in_the_reloader_and_module_files_are_watched(
    project: Path, reloader: ReloaderProcess
) -> None:
    start = next(r for r in reloader.lines if r["event"] == "reload_process_start")
    watching = next(r for r in reloader.lines if r["event"] == "watching")
    assert start["pid"] == reloader.proc.pid
    files = set(watching["files"])
    assert str(project / "app.py") in files
    assert str(project / "helpers.py") in files
    # neither the standard library nor site-packages nor vivace itself
    assert not any("site-packages" in f or "/lib/python3" in f for f in files)
    assert not any(
        f.startswith(str(Path(__file__).resolve().parents[2] / "runtime")) for f in files
    )


def test_saving_the_app_module_sends_one_request_between_the_trigger_listeners(
    project: Path, reloader: ReloaderProcess
) -> None:
    app_py = project / "app.py"
    app_py.write_text(app_py.read_text().replace("VERSION = 1", "VERSION = 2"))
    before = reloader.wait_for("before_reload_trigger")
    request = reloader.wait_for("request")
    after = reloader.wait_for("after_reload_trigger")
    assert before["pid"] == request["pid"] == after["pid"] == reloader.proc.pid
    assert request["changed"] == [str(app_py)]
    assert request["all_workers"] is True and request["names"] == []
    assert after["changed"] == [str(app_py)]
    # the order in which they were printed is the order in which they ran
    order = [r["event"] for r in reloader.lines if r["event"] != "text"]
    assert order.index("before_reload_trigger") < order.index("request")
    assert order.index("request") < order.index("after_reload_trigger")


def test_an_imported_module_of_the_app_triggers(project: Path, reloader: ReloaderProcess) -> None:
    (project / "helpers.py").write_text("VALUE = 2\n")
    assert reloader.wait_for("after_reload_trigger")["changed"] == [str(project / "helpers.py")]


def test_created_modified_and_deleted_files_in_a_reload_dir(
    project: Path, reloader: ReloaderProcess
) -> None:
    templates = project / "templates"

    def under_templates() -> set[str]:
        return {str(p) for p in templates.rglob("*")} | {str(templates / "new.html")}

    new = templates / "new.html"
    new.write_text("new\n")
    assert set(reloader.wait_for_change(str(new))) <= under_templates()
    (templates / "index.html").write_text("<p>changed</p>\n")
    assert set(reloader.wait_for_change(str(templates / "index.html"))) <= under_templates()
    new.unlink()
    assert set(reloader.wait_for_change(str(new))) <= under_templates()
    nested = templates / "partials"
    nested.mkdir()
    reloader.wait_for_change(str(nested))  # the new directory itself
    (nested / "row.html").write_text("row\n")
    reloader.wait_for_change(str(nested / "row.html"))


def test_bytecode_and_editor_temporaries_are_ignored(
    project: Path, reloader: ReloaderProcess
) -> None:
    cache = project / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "app.cpython-311.pyc").write_bytes(b"\0" * 16)
    (project / ".app.py.swp").write_bytes(b"swap")
    (project / "app.py~").write_text("backup")
    (project / "templates" / "4913").write_text("")
    (project / "templates" / ".#index.html").write_text("lock")
    (project / "notes.txt").write_text("not a module, not in a reload dir")
    assert [r for r in reloader.collect(0.6) if r["event"] == "request"] == []


def test_sigterm_stops_within_half_a_second_and_runs_the_stop_listener(
    reloader: ReloaderProcess,
) -> None:
    sent = time.monotonic()
    reloader.proc.send_signal(signal.SIGTERM)
    stop = reloader.wait_for("reload_process_stop", timeout=2)
    code = reloader.proc.wait(2)
    elapsed = time.monotonic() - sent
    assert stop["pid"] == reloader.proc.pid
    assert code == 0
    assert elapsed < 0.5, f"reloader took {elapsed:.3f}s to stop"


def test_sigint_during_a_burst_of_changes_is_clean(
    project: Path, reloader: ReloaderProcess
) -> None:
    app_py = project / "app.py"
    for i in range(5):
        app_py.write_text(app_py.read_text() + f"\n# edit {i}\n")
    reloader.proc.send_signal(signal.SIGINT)
    reloader.wait_for("reload_process_stop", timeout=2)
    assert reloader.proc.wait(2) == 0


def test_a_missing_reload_dir_is_tolerated(project: Path) -> None:
    proc = ReloaderProcess(project, [str(project / "nope"), str(project / "templates")])
    try:
        proc.wait_for("watching")
        (project / "templates" / "index.html").write_text("x\n")
        assert proc.wait_for("request")["changed"] == [str(project / "templates" / "index.html")]
        assert proc.stop() == 0
    finally:
        proc.close()


def test_the_reloader_exits_1_when_the_app_cannot_be_loaded(project: Path) -> None:
    (project / "app.py").write_text("raise RuntimeError('broken at import')\n")
    proc = ReloaderProcess(project, [])
    try:
        code = proc.proc.wait(10)
        assert code != 0
        err = proc.stderr()
        assert "The reloader could not load the app" in err
        assert "broken at import" in err
    finally:
        proc.close()


def test_a_failing_before_reload_trigger_is_logged_and_the_reload_still_happens(
    project: Path,
) -> None:
    app_py = project / "app.py"
    app_py.write_text(
        app_py.read_text()
        + "\n@app.before_reload_trigger\ndef broken(app):\n    raise RuntimeError('listener bug')\n"
    )
    proc = ReloaderProcess(project, [])
    try:
        proc.wait_for("watching")
        (project / "helpers.py").write_text("VALUE = 3\n")
        assert proc.wait_for("request")["changed"] == [str(project / "helpers.py")]
        proc.wait_for("after_reload_trigger")
        assert proc.stop() == 0
        err = proc.stderr()
        assert "A before_reload_trigger listener failed; reloading anyway" in err
        assert "RuntimeError: listener bug" in err
    finally:
        proc.close()


def test_an_app_run_script_is_watched(project: Path) -> None:
    script = project / "site.py"
    script.write_text(
        (project / "app.py").read_text()
        + "\nif __name__ == '__main__':\n    raise SystemExit('must not run in the reloader')\n"
    )
    proc = ReloaderProcess(project, [], script=str(script))
    try:
        watching = proc.wait_for("watching")
        assert str(script) in watching["files"]
        script.write_text(script.read_text() + "\n# saved\n")
        assert proc.wait_for("after_reload_trigger")["changed"] == [str(script)]
        assert proc.stop() == 0
    finally:
        proc.close()


def test_the_reloader_stops_when_the_manager_is_gone(project: Path) -> None:
    proc = ReloaderProcess(project, [], env={"RELOAD_TEST_SEND_FAILS": "1"})
    try:
        proc.wait_for("watching")
        (project / "helpers.py").write_text("VALUE = 4\n")
        proc.wait_for("reload_process_stop")
        assert proc.proc.wait(5) == 1
        assert "Cannot reach the worker manager" in proc.stderr()
    finally:
        proc.close()
