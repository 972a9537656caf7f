"""``app.repl_ctx`` refuses every name the console defines itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from runtime import App
from runtime.app import CONSOLE_NAMES
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(CONSOLE_NAMES))
def test_repl_ctx_refuses_each_console_name(name: str) -> None:
    app = App("console_names")
    with pytest.raises(ValueError, match=name):
        app.repl_ctx.add(object(), name=name)


# --- console names from providers (issue 17): [tool.vivace] console and vivace.console ---------

VIVACE_APP = """\
from runtime import App
from runtime.response import text

app = App("ProvidedNames")
app.repl_ctx.add(42, name="answer", desc="the app's own answer")


@app.get("/")
async def index(request):
    return text("ok")
"""

PROVIDERS = """\
def project(app):
    return {"shared": "project", "answer": "the project's", "app_name": app.name}


def replaces():
    return {"extra": "the project's extra"}


def broken():
    raise LookupError("the settings service is down")


def not_a_mapping():
    return ["a", "list"]
"""

FLASK_APP = """\
from flask import Flask

app = Flask(__name__)
app.config["GREETING"] = "hello"
"""

FLASK_PROVIDER = """\
from flask import current_app


def names():
    return {"greeting": current_app.config["GREETING"]}
"""


def _install_package(path: Path) -> None:
    """An installed distribution, ``extra-names``, whose entry point adds console names."""
    info = path / "extra_names-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-names\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vivace.console]\nextra = extra_names:names\n")
    (path / "extra_names.py").write_text(
        'def names():\n    return {"extra": "from a package", "client": "not the client"}\n'
    )


def _scripted(project: Path, target: str, *commands: str) -> subprocess.CompletedProcess[str]:
    """``vivace TARGET --repl-command ...`` in ``project``; no process of it is left behind."""
    mark = uuid.uuid4().hex
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(project), str(ROOT)]),
        VIVACE_HISTORY_FILE=str(project / "history"),
        VIVACE_TEST_MARK=mark,
    )
    command = [sys.executable, "-m", "runtime", target, "-p", str(free_port()), "-w", "1"]
    for statement in commands:
        command += ["--repl-command", statement]
    try:
        return subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, timeout=90
        )
    finally:
        left = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("VIVACE_TEST_MARK") == mark:
                    left.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        for proc in left:
            proc.kill()
        assert not left, f"processes left behind: {left}"


@pytest.mark.slow
def test_names_from_the_project_and_from_an_installed_package(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(VIVACE_APP)
    (tmp_path / "names.py").write_text(PROVIDERS)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vivace]\nconsole = ["names:project", "names:replaces", "names:broken", '
        '"names:not_a_mapping", "names:missing", "not a reference"]\n'
    )
    _install_package(tmp_path)
    result = _scripted(
        tmp_path,
        "app:app",
        "shared, app_name, extra",
        "answer, type(client).__name__",
        "help()",
    )
    # the providers that failed do not stop the console: one line each on stderr, exit code 0
    assert result.returncode == 0, result.stdout + result.stderr
    out, err = result.stdout, result.stderr
    assert "('project', 'ProvidedNames', \"the project's extra\")\n" in out, out + err
    assert "(42, 'LiveClient')\n" in out, out  # app.repl_ctx and the console's own names stay
    for problem in (
        "console names from [tool.vivace] console 'names:broken' (pyproject.toml) failed: "
        "LookupError: the settings service is down\n",
        "console names from [tool.vivace] console 'names:not_a_mapping' (pyproject.toml) "
        "failed: TypeError: returned a list, not a mapping of names to objects\n",
        "console names from [tool.vivace] console 'names:missing' (pyproject.toml) failed: "
        "AttributeError: module 'names' has no attribute 'missing'\n",
        "'not a reference' is not \"module:function\"",
    ):
        assert problem in err, err
    # the banner (help()) shows each source with its names, and what was not added
    assert "From the entry point vivace.console extra = extra_names:names (extra-names 1.0):" in out
    assert "From [tool.vivace] console 'names:project' (pyproject.toml):" in out
    assert re.search(r"\n  shared\s+str 'project'\n", out), out
    assert "Not added from entry point 'extra' (extra-names 1.0): client (a console name)" in out
    assert "Not added from [tool.vivace] 'names:project': answer (app.repl_ctx has it)" in out
    assert (
        "extra: the one from [tool.vivace] 'names:replaces' replaces entry point 'extra' "
        "(extra-names 1.0)'s" in out
    ), out


@pytest.mark.slow
def test_a_flask_provider_runs_in_the_application_context(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    (tmp_path / "flask_names.py").write_text(FLASK_PROVIDER)
    (tmp_path / "pyproject.toml").write_text('[tool.vivace]\nconsole = ["flask_names:names"]\n')
    result = _scripted(tmp_path, "app:app", "greeting", "g")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\n'hello'\n<flask.ctx._AppCtxGlobals object at " in result.stdout, result.stdout


@pytest.mark.slow
def test_refresh_runs_the_providers_again_and_keeps_what_the_user_bound(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(VIVACE_APP)
    (tmp_path / "names.py").write_text(
        'def names():\n    return {"version": "one", "shared": "provided", "gone": 1}\n'
    )
    (tmp_path / "pyproject.toml").write_text('[tool.vivace]\nconsole = ["names:names"]\n')
    result = _scripted(
        tmp_path,
        "app:app",
        "version, shared, gone",
        'shared = "mine"',
        'p = __import__("pathlib").Path("names.py")',
        'p.write_text(\'def names():\\n    return {"version": "two!", "shared": "new"}\\n\') > 0',
        "refresh()",
        "version, shared",
        '"gone" in globals()',
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "('one', 'provided', 1)\nTrue\napp re-imported from app" in out, out
    assert "('two!', 'mine')\nFalse\n" in out, out
