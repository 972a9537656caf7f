"""The watch set, the ignore filter and batching, with real files and real watchfiles."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from runtime.supervisor.watch import (
    Batcher,
    ChangeStream,
    WatchSet,
    build_watch_set,
    compile_globs,
    excluded_roots,
    is_ignored,
    module_source_files,
)


def _module(name: str, file: str | None) -> ModuleType:
    module = ModuleType(name)
    if file is not None:
        module.__file__ = file
    return module


@pytest.mark.parametrize(
    "path",
    [
        "/p/__pycache__/app.cpython-311.pyc",
        "/p/app.pyc",
        "/p/.git/index",
        "/p/.git/objects/ab/cdef",
        "/p/node_modules/x/index.js",
        "/p/.app.py.swp",
        "/p/.app.py.swx",
        "/p/app.py~",
        "/p/.#app.py",
        "/p/#app.py#",
        "/p/4913",
        "/p/app.py.___jb_tmp___",
        "/p/.mypy_cache/3.11/app.meta.json",
    ],
)
def test_runtime_vcs_and_editor_files_are_ignored(path: str) -> None:
    assert is_ignored(path)


@pytest.mark.parametrize(
    "path", ["/p/app.py", "/p/templates/index.html", "/p/static/site.css", "/p/a#b.py"]
)
def test_ordinary_files_are_not_ignored(path: str) -> None:
    assert not is_ignored(path)


def test_module_files_under_the_roots_only(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "views.py").write_text("")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    cached = tmp_path / "pkg" / "__pycache__" / "views.cpython-311.pyc"
    cached.write_bytes(b"")
    modules = {
        "pkg": _module("pkg", str(tmp_path / "pkg" / "__init__.py")),
        "pkg.views": _module("pkg.views", str(cached)),  # a .pyc maps back to its source
        "os": os,  # standard library
        "pytest": pytest,  # site-packages
        "builtin": _module("builtin", None),
        "gone": _module("gone", str(tmp_path / "pkg" / "deleted.py")),
    }
    files = module_source_files(modules, [str(tmp_path)], excluded_roots())
    assert files == {str(tmp_path / "pkg" / "__init__.py"), str(tmp_path / "pkg" / "views.py")}


def test_stdlib_and_site_packages_are_excluded_even_under_a_root() -> None:
    # a root that contains everything (/) still yields no stdlib or site-packages module
    files = module_source_files(sys.modules, ["/"], excluded_roots())
    assert os.__file__ not in files
    assert not any("site-packages" in f for f in files)
    assert not any(f.startswith(os.path.dirname(os.__file__) + os.sep) for f in files)


def test_a_module_inside_a_zip_maps_to_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK")
    module = _module("zipped", str(archive / "zipped" / "mod.py"))
    assert module_source_files({"zipped": module}, [str(tmp_path)], []) == {str(archive)}


def test_missing_reload_dir_is_logged_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "templates").mkdir()
    with caplog.at_level(logging.WARNING, logger="vivace.reload"):
        ws = build_watch_set(
            roots=[str(tmp_path)],
            reload_dirs=[str(tmp_path / "templates"), str(tmp_path / "nope")],
            modules={},
        )
    assert f"Directory {tmp_path / 'nope'} could not be located" in caplog.messages
    assert ws.reload_dirs == (str(tmp_path / "templates"),)
    assert ws.missing_dirs == (str(tmp_path / "nope"),)


def test_watch_set_accepts_module_files_new_sibling_modules_and_reload_dir_contents(
    tmp_path: Path,
) -> None:
    ws = WatchSet(frozenset({f"{tmp_path}/app.py"}), (f"{tmp_path}/templates",))
    assert ws.accepts(f"{tmp_path}/app.py")
    assert ws.accepts(f"{tmp_path}/new_module.py")
    assert ws.accepts(f"{tmp_path}/templates/deep/er/page.html")
    assert not ws.accepts(f"{tmp_path}/notes.txt")
    assert not ws.accepts(f"{tmp_path}/__pycache__/app.cpython-311.pyc")
    assert not ws.accepts(f"{tmp_path}/templates/.index.html.swp")
    assert not ws.accepts(f"{tmp_path}/templatesX/page.html")


def test_nested_roots_are_watched_once(tmp_path: Path) -> None:
    ws = WatchSet(
        frozenset({f"{tmp_path}/site/app.py", f"{tmp_path}/lib/util.py"}),
        (f"{tmp_path}/site", f"{tmp_path}/site/templates"),
    )
    assert ws.recursive_roots() == (f"{tmp_path}/site",)
    assert ws.flat_roots() == (f"{tmp_path}/lib",)


# --- Batcher: the timing rule, with explicit times -----------------------------------------------


def test_a_lone_change_is_released_at_once() -> None:
    b = Batcher(quiet=0.05, cooldown=0.3)
    b.add({"/a.py"}, now=10.0)
    assert b.pop_due(10.0) == {"/a.py"}
    assert b.pop_due(10.0) == frozenset()


def test_changes_right_after_a_release_wait_for_quiet_and_go_together() -> None:
    b = Batcher(quiet=0.05, cooldown=0.3)
    b.add({"/a.py"}, now=10.0)
    assert b.pop_due(10.0) == {"/a.py"}
    b.add({"/a.py"}, now=10.1)
    b.add({"/b.py"}, now=10.14)
    assert b.pop_due(10.16) == frozenset()  # still within 50 ms of the last change
    assert b.deadline() == pytest.approx(10.19)
    assert b.pop_due(10.2) == {"/a.py", "/b.py"}


def test_a_continuous_stream_is_still_released_after_max_hold() -> None:
    b = Batcher(quiet=0.05, cooldown=0.3, max_hold=1.0)
    b.add({"/x"}, now=0.0)
    b.pop_due(0.0)
    t = 0.01
    released = []
    while t < 2.5:
        b.add({"/x"}, now=t)
        if b.pop_due(t):
            released.append(round(t, 2))
        t += 0.02
    assert 1 <= len(released) <= 3


def test_twenty_saves_in_200_ms_make_one_or_two_batches_by_the_rule() -> None:
    b = Batcher()
    batches = 0
    for i in range(20):
        now = i * 0.01
        b.add({"/app.py"}, now)
        batches += bool(b.pop_due(now))
    batches += bool(b.pop_due(10.0))
    assert batches in (1, 2)


def test_batcher_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="quiet"):
        Batcher(quiet=0)


# --- ChangeStream: real watchfiles ---------------------------------------------------------------


class Stream:
    """A ChangeStream consumed by a thread, batches collected with their arrival time."""

    def __init__(self, ws: WatchSet) -> None:
        self.stop = threading.Event()
        self.stream = ChangeStream(ws, self.stop)
        self.batches: list[tuple[float, frozenset[str]]] = []
        self.cond = threading.Condition()
        self.stream.start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.stream:
            with self.cond:
                self.batches.append((time.monotonic(), batch))
                self.cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[frozenset[str]]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.batches) >= count, timeout)
            return [b for _, b in self.batches]

    def wait_for(self, path: Path, timeout: float = 5.0) -> int:
        """How many batches had arrived once one of them reported ``path``."""
        with self.cond:
            found = self.cond.wait_for(
                lambda: any(str(path) in b for _, b in self.batches), timeout
            )
            assert found, f"no batch with {path} within {timeout}s: {self.batches}"
            return len(self.batches)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.stream.close()
        assert not self.thread.is_alive()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Stream]]:
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "templates").mkdir()
    ws = WatchSet(frozenset({str(tmp_path / "app.py")}), (str(tmp_path / "templates"),))
    stream = Stream(ws)
    try:
        yield tmp_path, stream
    finally:
        stream.close()


def test_stream_reports_a_module_save(tree: tuple[Path, Stream]) -> None:
    root, stream = tree
    (root / "app.py").write_text("x = 2\n")
    assert stream.wait(1) == [{str(root / "app.py")}]


def test_stream_reports_a_save_by_rename(tree: tuple[Path, Stream]) -> None:
    root, stream = tree
    tmp = root / ".app.py.tmp"
    tmp.write_text("x = 3\n")
    os.replace(tmp, root / "app.py")
    batches = stream.wait(1)
    assert str(root / "app.py") in batches[0]
    (root / "app.py").write_text("x = 4\n")  # and the new inode is still watched
    assert str(root / "app.py") in stream.wait(2)[1]


def test_twenty_saves_within_200_ms_cause_one_or_two_batches(tree: tuple[Path, Stream]) -> None:
    root, stream = tree
    start = time.monotonic()
    for i in range(20):
        (root / "app.py").write_text(f"x = {i}\n")
        time.sleep(0.008)
    assert time.monotonic() - start < 0.4
    stream.wait(1)
    # everything is released at most quiet (100 ms) after the last save; wait well past that
    extra = stream.wait(3, timeout=0.5)
    assert 1 <= len(extra) <= 2, extra
    assert set().union(*extra) == {str(root / "app.py")}


def test_stream_stops_promptly(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    stream = Stream(WatchSet(frozenset({str(tmp_path / "app.py")})))
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.5


# --- the project's .py files, imported or not ---------------------------------------------------


@pytest.fixture
def project_tree(tmp_path: Path) -> Path:
    root = tmp_path.resolve()
    for name in [
        "app.py",
        "services/pricing.py",
        "notes/views/pages.py",
        "env/bin/tool.py",  # a virtualenv: it has a pyvenv.cfg
        "env/lib/python3.11/site-packages/dep.py",
        "vendor/site-packages/other.py",
        ".hidden/tool.py",
        "node_modules/pkg/x.py",
        "build/gen.py",
        "services/notes.txt",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def test_every_py_file_of_the_project_counts_but_not_virtualenvs_or_hidden_dirs(
    project_tree: Path,
) -> None:
    root = project_tree
    ws = build_watch_set(
        roots=[str(root)],
        modules={},
        exclude=[],
        exclude_globs=compile_globs(["build"], str(root), "--reload-exclude"),
    )
    assert ws.project_roots == (str(root),)
    for name in ["app.py", "services/pricing.py", "notes/views/pages.py", "services/new.py"]:
        assert ws.accepts(str(root / name)), name
    for name in [
        "env/bin/tool.py",
        "env/lib/python3.11/site-packages/dep.py",
        "vendor/site-packages/other.py",
        ".hidden/tool.py",
        "node_modules/pkg/x.py",
        "build/gen.py",
        "services/notes.txt",
        "services/__pycache__/pricing.cpython-311.pyc",
    ]:
        assert not ws.accepts(str(root / name)), name
    assert not ws.accepts(str(root.parent / "elsewhere.py"))
    dirs, cut = ws.walk_project(ws.project_roots, limit=100)
    assert not cut
    assert sorted(dirs) == [
        str(root / d) for d in ["", "notes", "notes/views", "services", "vendor"]
    ]
    assert ws.walk_project(ws.project_roots, limit=2) == ([str(root), str(root / "notes")], True)


def test_installed_roots_under_the_project_are_not_part_of_it(project_tree: Path) -> None:
    root = project_tree
    ws = build_watch_set(roots=[str(root)], modules={}, exclude=[str(root / "services")])
    assert not ws.accepts(str(root / "services" / "pricing.py"))
    assert ws.accepts(str(root / "notes" / "views" / "pages.py"))


def test_a_package_created_during_the_session_is_watched(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "app.py").write_text("")
    stream = Stream(build_watch_set(roots=[str(root)], modules={}, exclude=[]))
    try:
        users = root / "routers" / "deep" / "users.py"
        users.parent.mkdir(parents=True)  # two levels at once: the inner one is found by a walk
        users.write_text("v = 1\n")
        seen = stream.wait_for(users)
        users.write_text("v = 2\n")  # and its edits from then on
        assert str(users) in stream.wait(seen + 1)[-1]
    finally:
        stream.close()


def test_deleting_a_project_directory_does_not_report_the_other_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path.resolve()
    (root / "app.py").write_text("")
    (root / "lib.py").write_text("")
    (root / "uploads").mkdir()
    (root / "uploads" / "a.bin").write_text("")
    stream = Stream(build_watch_set(roots=[str(root)], modules={}, exclude=[]))
    try:
        with caplog.at_level(logging.DEBUG, logger="vivace.reload"):
            shutil.rmtree(root / "uploads")
            deadline = time.monotonic() + 5
            while "Watched directories changed" not in caplog.text:
                assert time.monotonic() < deadline, "the watchers never changed over"
                time.sleep(0.02)
        (root / "app.py").write_text("x = 1\n")
        batches = stream.wait(1)
        assert str(root / "app.py") in batches[0]
        assert all(str(root / "lib.py") not in b for b in stream.wait(2, timeout=0.5))
    finally:
        stream.close()
