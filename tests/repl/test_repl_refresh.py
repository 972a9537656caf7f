"""``refresh()``: the app imported again with the user's modules, as a new worker does (and for
Django, without registering its models twice)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from repl.refresh import django_kept, forget_user_modules
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("rf_main", "rf_routes", "rf_other", "rf_pkg", "rf_pkg.views")
    yield tmp_path
    for name in names:
        sys.modules.pop(name, None)


def test_the_modules_the_target_imports_are_imported_again_the_others_kept(modules: Path) -> None:
    (modules / "rf_routes.py").write_text("VERSION = 1\n")
    (modules / "rf_other.py").write_text("STATE = object()\n")
    (modules / "rf_main.py").write_text("import rf_routes\nVERSION = rf_routes.VERSION\n")
    import importlib

    importlib.import_module("rf_main")
    other = importlib.import_module("rf_other")
    (modules / "rf_routes.py").write_text("VERSION = 22\n")  # a save: new size

    forgotten = forget_user_modules("rf_main")
    assert "rf_main" not in sys.modules and "rf_routes" not in sys.modules
    assert not forgotten.kept and forgotten.note == ""
    assert importlib.import_module("rf_main").VERSION == 22  # the router's new code
    forgotten.settle()
    # imported again when first used, as in a new worker (Django's views and URLconf are)
    assert "rf_other" not in sys.modules
    assert importlib.import_module("rf_other").STATE is not other.STATE
    assert "repl.refresh" in sys.modules and "pytest" in sys.modules  # never user modules

    (modules / "rf_routes.py").write_text("VERSION = (\n")  # broken: the import fails
    forgotten = forget_user_modules("rf_main")
    with pytest.raises(SyntaxError):
        importlib.import_module("rf_main")
    forgotten.restore()
    assert sys.modules["rf_main"].VERSION == 22 and sys.modules["rf_routes"].VERSION == 22


def test_with_django_ready_the_modules_of_its_registry_are_kept(modules: Path) -> None:
    from framework_apps import django_handler

    django_handler("asgi")  # settings configured, app registry ready (once per test process)
    (modules / "rf_other.py").write_text(
        "from django.apps import AppConfig\n\nclass OtherConfig(AppConfig):\n    name = 'x'\n"
    )
    (modules / "rf_routes.py").write_text("from django.apps import AppConfig\n")  # imports only
    import importlib

    for name in ("rf_other", "rf_routes"):
        importlib.import_module(name)
    assert django_kept({"rf_other", "rf_routes"}) == {"rf_other"}
    forgotten = forget_user_modules("rf_routes")
    try:
        assert "rf_other" in sys.modules and "rf_routes" not in sys.modules
        assert forgotten.kept == ["rf_other"] and "kept as they were: rf_other" in forgotten.note
    finally:
        forgotten.restore()


@pytest.mark.slow
def test_django_refresh_takes_new_views_and_keeps_the_models(tmp_path: Path) -> None:
    """A copy of the example project: a view changed on disk is served by ``do()`` after
    ``refresh()``; the models module is not imported again (no second registration), so the
    ORM keeps working with the model classes the console already holds."""
    project = tmp_path / "examples"
    project.mkdir()
    (project / "__init__.py").write_text("")
    shutil.copytree(
        ROOT / "examples" / "django_project",
        project / "django_project",
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
    )
    views = project / "django_project" / "notes" / "views.py"
    environ = dict(os.environ)
    mark = uuid.uuid4().hex
    environ.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        NOTES_DB=str(tmp_path / "notes.sqlite3"),
        VIVACE_HISTORY_FILE=str(tmp_path / "history"),
        VIVACE_TEST_MARK=mark,
        PYTHONWARNINGS="error::RuntimeWarning",
    )
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    statements = [
        'client.get("/").status_code',
        "from examples.django_project.notes.models import Note",
        '(await do("/")).response.json()["hello"]',
        f"p = __import__('pathlib').Path({str(views)!r})",
        'p.write_text(p.read_text().replace(\'"hello": "django"\', \'"hello": "again"\')) > 0',
        "refresh()",
        '(await do("/")).response.json()["hello"]',
        'Note.objects.create(text="after")',
        "Note.objects.count()",
        "routes[1].endpoint",
    ]
    command = [sys.executable, "-m", "runtime", "examples.django_project.mysite.asgi:application"]
    command += ["-p", str(free_port()), "-w", "1"]
    for statement in statements:
        command += ["--repl-command", statement]
    result = subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "200\n'django'\nTrue\n" in out, out
    assert "app re-imported from examples.django_project.mysite.asgi; kept as they" in out, out
    assert "kept as they were: examples.django_project.mysite.settings" in out, out
    assert "examples.django_project.notes.models" in out, out
    assert "\n'again'\n<Note: after>\n1\n" in out, out
    assert "'examples.django_project.notes.views.NotesView'\n" in out, out
    assert "already registered" not in result.stderr, result.stderr


def test_a_package_left_in_place_does_not_hand_out_its_old_submodule(modules: Path) -> None:
    """``from package import views`` reads the package's attribute before importing: a package
    not forgotten (a namespace package has no file; Django's app packages are kept) loses the
    attributes of its forgotten submodules, and gets them back if the re-import fails."""
    (modules / "rf_pkg").mkdir()
    views = modules / "rf_pkg" / "views.py"
    views.write_text("VERSION = 1\n")
    (modules / "rf_main.py").write_text("from rf_pkg import views\nVERSION = views.VERSION\n")
    import importlib

    importlib.import_module("rf_main")
    package = sys.modules["rf_pkg"]
    old = sys.modules["rf_pkg.views"]
    views.write_text("VERSION = 22\n")
    forgotten = forget_user_modules("rf_main")
    assert sys.modules["rf_pkg"] is package and not hasattr(package, "views")
    forgotten.restore()
    assert package.views is old
    forgotten = forget_user_modules("rf_main")
    assert importlib.import_module("rf_main").VERSION == 22
    forgotten.settle()
