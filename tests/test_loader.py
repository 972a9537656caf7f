"""Loading the app a target names: every TARGET form of cli.md section 1 and every error message."""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.app import App
from runtime.cli import main
from runtime.exceptions import LoadError
from runtime.loader import AppRef, load_app, parse_target

_counter = itertools.count()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write modules into a fresh project directory (the cwd); yields ``write(relpath, source)``.

    Module names are unique per test (prefix ``proj<n>``) and so are the App names in them; both
    are forgotten afterwards.
    """
    prefix = f"proj{next(_counter)}_{tmp_path.name[-6:].replace('-', '_')}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    apps_before = set(App._registry)
    modules_before = set(sys.modules)

    def write(relpath: str, source: str) -> str:
        path = tmp_path / relpath.replace("PKG", prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(source).replace("PKG", prefix)
        path.write_text(body)
        return prefix

    yield write
    for name in set(sys.modules) - modules_before:
        del sys.modules[name]
    for name in set(App._registry) - apps_before:
        del App._registry[name]


def ref(text: str, **kwargs: object) -> AppRef:
    return parse_target(text, **kwargs)  # type: ignore[arg-type]


APP_MODULE = """
    from runtime import App

    app = App("PKG_main")
    other = App("PKG_other")
    not_an_app = 42


    def create_app(args):
        made = App("PKG_made_" + str(id(args)))
        made.ctx.args = args
        return made


    def make_plain():
        return App("PKG_plain")


    def returns_int():
        return 7


    def broken_factory():
        raise RuntimeError("database is down")


    async def async_factory():
        return App("PKG_async")
"""


# --- parse_target --------------------------------------------------------------------------------


def test_parse_forms(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    assert ref(f"{pkg}.server:app").module == f"{pkg}.server"
    dotted = ref(f"{pkg}.server.app")
    assert (dotted.module, dotted.attr) == (f"{pkg}.server", "app")
    whole = ref(f"{pkg}.server")
    assert (whole.module, whole.attr) == (f"{pkg}.server", None)
    factory = ref(f"{pkg}.server:create_app()")
    assert (factory.attr, factory.factory) == ("create_app", True)
    assert ref("mod:make", factory=True).factory


def test_parse_puts_the_cwd_first_on_sys_path(project: Callable[[str, str], str]) -> None:
    project("PKG/__init__.py", "")
    target = ref("x.y")
    assert target.cwd is not None
    assert sys.path[0] == target.cwd


def test_app_ref_pickles() -> None:
    target = AppRef(module="m", attr="a", factory=True, namespace={"port": 1, "name": "x"})
    assert pickle.loads(pickle.dumps(target)) == target
    assert pickle.loads(pickle.dumps(target)).namespace == {"port": 1, "name": "x"}


# --- load_app: the forms -------------------------------------------------------------------------


def test_load_every_form(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    app = load_app(ref(f"{pkg}.server:app"))
    assert isinstance(app, App) and app.name == f"{pkg}_main"
    assert load_app(ref(f"{pkg}.server.app")) is app
    assert load_app(ref(f"{pkg}.server")) is app
    assert load_app(ref(f"{pkg}.server:other")).name == f"{pkg}_other"
    assert load_app(ref(f"{pkg}.server:make_plain")).name == f"{pkg}_plain"


def test_factory_gets_the_namespace_when_it_takes_one_argument(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    made = load_app(ref(f"{pkg}.server:create_app()", namespace={"port": 9, "colour": "red"}))
    args = made.ctx.args
    assert isinstance(args, argparse.Namespace)
    assert (args.port, args.colour) == (9, "red")
    # outside the CLI the factory still gets a namespace, naming the target
    made = load_app(ref(f"{pkg}.server:create_app", factory=True))
    assert made.ctx.args.target == f"{pkg}.server:create_app()"


def test_factory_through_the_cli_parses_unknown_options(
    project: Callable[[str, str], str],
) -> None:
    from runtime.cli import parse_command

    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    options = parse_command([f"{pkg}.server:create_app", "--factory", "--colour=blue"])
    made = load_app(options.target)
    assert made.ctx.args.colour == "blue"
    assert made.ctx.args.factory is True


def test_script_path_loads_as_mp_main_without_its_main_block(
    project: Callable[[str, str], str], tmp_path: Path
) -> None:
    pkg = project(
        "PKG_script.py",
        """
        from runtime import App

        web = App("PKG_script")
        if __name__ == "__main__":
            raise SystemExit("the main block must not run in a worker")
        """,
    )
    loaded = load_app(AppRef(path=str(tmp_path / f"{pkg}_script.py"), attr="web"))
    assert loaded.name == f"{pkg}_script"
    assert sys.modules["__mp_main__"].web is loaded


# --- load_app: errors ----------------------------------------------------------------------------


def load_error(target: AppRef) -> str:
    with pytest.raises(LoadError) as info:
        load_app(target)
    return str(info.value)


def test_missing_module(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "")
    message = load_error(ref("no_such_module_here:app"))
    assert message.startswith("No module named no_such_module_here found.")
    assert "Example Module: project.server:app" in message
    message = load_error(ref(f"{pkg}.nothing:app"))
    assert message.startswith(f"No module named {pkg}.nothing found.")


def test_a_missing_dependency_of_the_app_is_not_reported_as_a_missing_app(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG_dep.py", "import not_installed_dependency_xyz\n")
    message = load_error(ref(f"{pkg}_dep:app"))
    assert "not_installed_dependency_xyz" in message
    assert not message.startswith("No module named")
    assert "Traceback" in message


def test_syntax_error_and_import_time_exception(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG_syntax.py", "def broken(:\n")
    assert "has a syntax error" in load_error(ref(f"{pkg}_syntax:app"))
    project("PKG_boom.py", "raise RuntimeError('config missing')\n")
    message = load_error(ref(f"{pkg}_boom:app"))
    assert "RuntimeError: config missing" in message


def test_only_a_module_name(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG_noapp.py", "from runtime import App\nweb = App('PKG_web')\n")
    message = load_error(ref(f"{pkg}_noapp"))
    assert message.startswith("Looks like you only supplied a module name.")
    assert f"Perhaps you meant {pkg}_noapp:web?" in message


def test_missing_attribute(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    message = load_error(ref(f"{pkg}.server:missing"))
    assert "has no attribute 'missing'" in message
    assert f"{pkg}.server:app" in message


def test_not_an_app(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "from . import server\n")
    project("PKG/server.py", APP_MODULE)
    message = load_error(ref(f"{pkg}.server:not_an_app"))
    assert message.startswith("Module is not a vivace app, it is a int")
    message = load_error(ref(f"{pkg}.server:returns_int"))
    assert message.startswith("Module is not a vivace app, it is a int")
    message = load_error(ref(f"{pkg}:server"))
    assert message.startswith("Module is not a vivace app, it is a module")
    assert f"Perhaps you meant {pkg}.server:app?" in message


def test_factory_errors(project: Callable[[str, str], str]) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    assert "not a callable" in load_error(ref(f"{pkg}.server:not_an_app()"))
    message = load_error(ref(f"{pkg}.server:broken_factory"))
    assert "raised an exception" in message and "database is down" in message
    assert "is async" in load_error(ref(f"{pkg}.server:async_factory()"))


def test_main_reports_load_errors_with_exit_1(
    project: Callable[[str, str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = project("PKG/__init__.py", "")
    project("PKG/server.py", APP_MODULE)
    assert main([f"{pkg}.server:not_an_app", "--single-process"]) == 1
    assert "Module is not a vivace app, it is a int" in capsys.readouterr().err
    assert main([f"{pkg}.nope"]) == 1
    assert f"No module named {pkg}.nope found." in capsys.readouterr().err


SHADOW_APP = "from runtime import App\napp = App('PKG_shadow')\n"


@pytest.mark.parametrize("name", ["site", "json", "time"])
def test_a_file_named_like_a_standard_library_module_is_reported(
    project: Callable[[str, str], str], name: str
) -> None:
    project(f"{name}.py", SHADOW_APP)
    message = load_error(ref(f"{name}:app"))
    assert message.startswith(
        f"./{name}.py is shadowed by the standard library module {name!r}; rename your file"
    ), message
    assert f"{name}_app:app" in message  # what to type after renaming


def test_a_package_named_like_a_standard_library_module_is_reported(
    project: Callable[[str, str], str],
) -> None:
    project("http/__init__.py", "")
    project("http/api.py", SHADOW_APP)
    message = load_error(ref("http.api:app"))
    assert message.startswith("./http/ is shadowed by the standard library module 'http'")
    project("email/__init__.py", SHADOW_APP)
    assert load_error(ref("email")).startswith("./email/ is shadowed")


def test_an_imported_namespace_package_of_the_project_is_not_shadowed(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG_ns/web.py", SHADOW_APP)
    assert isinstance(load_app(ref(f"{pkg}_ns.web")), App)  # the parent is imported to parse it
    assert f"{pkg}_ns" in sys.modules
    assert isinstance(load_app(ref(f"{pkg}_ns.web:app")), App)


def test_main_says_which_file_is_shadowed(
    project: Callable[[str, str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    project("site.py", SHADOW_APP)
    assert main(["site:app", "--single-process"]) == 1
    err = capsys.readouterr().err
    assert "./site.py is shadowed by the standard library module 'site'; rename your file" in err
    assert "has no attribute" not in err
