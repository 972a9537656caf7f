"""``--reload-include`` / ``--reload-exclude`` globs, and watched directories deleted and created
again (issue 15).

Precedence, highest first: ``--reload-exclude`` > ``--reload-include`` > the built-in ignores >
module files and ``-R`` directories.
"""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import pytest

from runtime.supervisor.watch import Glob, GlobError, WatchSet, compile_globs
from tests.live_vivace import Vivace
from tests.support import free_port

CWD = "/project"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.html", "/project/index.html", True),
        ("*.html", "/project/a/b/c/page.html", True),  # no '/': a name at any depth
        ("*.html", "/project/page.htm", False),
        ("templates/**/*.html", "/project/templates/page.html", True),  # '**': none included
        ("templates/**/*.html", "/project/templates/a/b/page.html", True),
        ("templates/**/*.html", "/project/other/templates/page.html", False),  # anchored
        ("templates/*.html", "/project/templates/a/page.html", False),  # '*' is one segment
        (".env", "/project/.env", True),
        ("./.env", "/project/.env", True),
        ("./.env", "/project/sub/.env", False),
        ("config/*.toml", "/project/config/app.toml", True),
        ("build", "/project/build/lib/x.py", True),  # a directory matches what is inside
        ("drafts/**", "/project/drafts/a/b.md", True),
        ("page[0-9].html", "/project/x/page7.html", True),
        ("page[!0-9].html", "/project/x/page7.html", False),
        ("/etc/app/*.conf", "/etc/app/main.conf", True),
        ("*.html", "/elsewhere/page.html", True),
        ("templates/*.html", "/elsewhere/templates/page.html", False),
    ],
)
def test_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert Glob.compile(pattern, CWD).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "base", "recursive"),
    [
        ("*.html", "/project", True),
        ("templates/**/*.html", "/project/templates", True),
        ("config/*.toml", "/project/config", False),
        ("./.env", "/project", False),
        ("config/app.toml", "/project/config", False),
        ("*/settings.toml", "/project", True),
    ],
)
def test_what_a_glob_makes_the_reloader_watch(pattern: str, base: str, recursive: bool) -> None:
    glob = Glob.compile(pattern, CWD)
    assert (glob.base, glob.recursive) == (base, recursive)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "an empty pattern matches nothing"),
        ("templates/a**b", "'**' must be a whole path segment"),
        ("page[0-9.html", "'[' at position 4 is never closed"),
        ("../shared/*.py", "'..' is not allowed"),
        ("/", "matches every file"),
    ],
)
def test_an_invalid_glob_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(GlobError) as caught:
        compile_globs([pattern], CWD, "--reload-include")
    assert str(caught.value).startswith("--reload-include: ")
    assert reason in str(caught.value)


def test_precedence_exclude_include_ignores_modules() -> None:
    watch = WatchSet(
        frozenset({"/project/app.py"}),
        reload_dirs=("/project/assets",),
        include=compile_globs(["*.bak", "templates/**/*.html"], CWD, "--reload-include"),
        exclude=compile_globs(["app.py", "assets/cache/**", "templates/drafts/**"], CWD, "x"),
    )
    assert not watch.accepts("/project/app.py")  # exclude beats a module file
    assert not watch.accepts("/project/assets/cache/x.css")  # exclude beats a reload dir
    assert watch.accepts("/project/assets/site.css")
    assert watch.accepts("/project/notes.bak")  # include beats the built-in ignores
    assert not watch.accepts("/project/notes.swp")  # ignored
    assert watch.accepts("/project/templates/a/page.html")
    assert not watch.accepts("/project/templates/drafts/page.html")  # exclude beats include
    assert not watch.accepts("/project/other.txt")
    assert watch.recursive_roots() == ("/project",)  # it covers /project/assets
    assert watch.flat_roots() == ()  # and the module directory


# --- real processes ------------------------------------------------------------------------------

APP = textwrap.dedent(
    """
    import os
    from runtime import App, text

    app = App("Patterns")

    @app.get("/")
    async def index(request):
        return text(str(os.getpid()))

    @app.after_reload_trigger
    def after(app, changed):
        print("RELOADED", sorted(changed), flush=True)
    """
)


def reloads(server: Vivace) -> list[list[str]]:
    """Every batch the reloader sent, in order (the after_reload_trigger lines)."""
    found = []
    for line in server.output().splitlines():
        if "RELOADED [" in line:
            found.append(ast.literal_eval(line[line.index("[") :]))
    return found


def wait_reload_of(server: Vivace, path: Path, timeout: float = 15.0) -> list[list[str]]:
    def seen() -> list[list[str]] | None:
        batches = reloads(server)
        return batches if any(str(path) in batch for batch in batches) else None

    return server.wait_until(seen, f"a reload for {path}", timeout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path.resolve()
    (root / "app.py").write_text(APP)
    (root / "templates" / "a" / "b").mkdir(parents=True)
    (root / "templates" / "drafts").mkdir()
    (root / "assets").mkdir()
    return root


@pytest.mark.slow
def test_include_and_exclude_globs_with_nested_directories(project: Path) -> None:
    server = Vivace(
        project,
        "app:app",
        "-p",
        str(free_port()),
        "--reload-include",
        "templates/**/*.html",
        "--reload-include",
        "./settings.toml",
        "--reload-exclude",
        "templates/drafts/**",
    )
    try:
        out = server.wait_output("include: templates/**/*.html, ./settings.toml; ")
        assert "exclude: templates/drafts/** (exclude > include > built-in ignores" in out
        server.wait_output("Starting worker")
        nested = project / "templates" / "a" / "b" / "page.html"
        nested.write_text("<p>1</p>")
        wait_reload_of(server, nested)
        draft = project / "templates" / "drafts" / "wip.html"
        draft.write_text("<p>draft</p>")
        (project / "templates" / "a" / "notes.txt").write_text("not a template")
        settings = project / "settings.toml"
        settings.write_text("x = 1\n")
        batches = wait_reload_of(server, settings)
        changed = {path for batch in batches for path in batch}
        assert str(draft) not in changed
        assert str(project / "templates" / "a" / "notes.txt") not in changed
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_reload_dir_deleted_and_created_again_is_watched_again(project: Path) -> None:
    assets = project / "assets"
    (assets / "old.css").write_text("a {}")
    server = Vivace(project, "app:app", "-p", str(free_port()), "-R", "assets", "--debug")
    try:
        server.wait_output("Watching ")
        server.wait_output("Starting worker")
        # deleted and created again at once, before any check could see it gone
        shutil.rmtree(assets)
        assets.mkdir()
        fresh = assets / "site.css"
        fresh.write_text("b {}")
        wait_reload_of(server, fresh)  # reported when the new directory is found
        server.wait_output("Watched directories changed")  # a new native watcher is live
        later = assets / "later.css"
        later.write_text("c {}")
        wait_reload_of(server, later)
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_reload_dir_missing_at_start_is_watched_once_created(project: Path) -> None:
    server = Vivace(project, "app:app", "-p", str(free_port()), "-R", "later", "--debug")
    try:
        server.wait_output("Directory later could not be located")
        server.wait_output("Watching ")
        created = project / "later"
        created.mkdir()
        (created / "data.json").write_text("{}")
        wait_reload_of(server, created / "data.json")
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_an_invalid_glob_stops_vivace_with_the_reason(project: Path) -> None:
    server = Vivace(project, "app:app", "--reload-exclude", "cache/a**b")
    assert server.exit_code() == 1
    out = server.output()
    assert "--reload-exclude: 'cache/a**b': '**' must be a whole path segment" in out
    assert "Traceback" not in out
