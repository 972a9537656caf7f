"""Loading the app a target names: every TARGET form of cli.md section 1 and every error message."""

from __future__ import annotations

import argparse
import itertools
import os
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


def test_a_file_target_is_its_module_as_fastapi_dev_takes_it(
    project: Callable[[str, str], str], tmp_path: Path
) -> None:
    """``main.py``, ``app/main.py:api``: the packages above the file (``__init__.py``) are its
    package; the directory above them is where it is imported from."""
    pkg = project("PKG_flat/main.py", "import models\napp = models.APP\n")
    project("PKG_flat/models.py", "from runtime import App\nAPP = App('PKG_flat')\n")
    flat = ref(f"{pkg}_flat/main.py")
    assert (flat.module, flat.attr, flat.cwd) == ("main", None, str(tmp_path / f"{pkg}_flat"))
    assert load_app(flat).name == f"{pkg}_flat"  # its sibling import works, as python main.py
    project("PKG/__init__.py", "")
    project("PKG/api/__init__.py", "")
    project("PKG/api/main.py", APP_MODULE)
    nested = ref(f"./{pkg}/api/main.py:create_app()")
    assert (nested.module, nested.attr, nested.factory) == (f"{pkg}.api.main", "create_app", True)
    assert nested.cwd == str(tmp_path)
    assert ref(f"{pkg}/api/__init__.py").module == f"{pkg}.api"
    assert ref(str(tmp_path / pkg / "api" / "main.py")).module == f"{pkg}.api.main"
    assert load_app(ref(f"{pkg}/api/main.py:other")).name == f"{pkg}_other"
    with pytest.raises(LoadError, match="there is no file"):
        ref("missing.py")
    with pytest.raises(LoadError, match=r"'x-y' in .* is not a Python name"):
        ref(f"{pkg}/api/main.py:x-y")
    project("my-app.py", "")
    with pytest.raises(LoadError, match="'my-app' is not a Python name"):
        ref("my-app.py")
    # messages name the file as typed, and so do their suggestions
    project("PKG_flat/other.py", "from runtime import App\napi = App('PKG_api')\nx = 1\n")
    message = load_error(ref(f"{pkg}_flat/other.py"))
    assert message.startswith(f"{pkg}_flat/other.py has no application instance named 'app'.")
    assert f"Perhaps you meant {pkg}_flat/other.py:api?" in message
    message = load_error(ref(f"{pkg}_flat/other.py:apx"))
    assert message.startswith(f"{pkg}_flat/other.py has no attribute 'apx'.")
    assert f"{pkg}_flat/other.py:x is a int" in load_error(ref(f"{pkg}_flat/other.py:x"))


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


def test_a_load_error_shows_the_traceback_from_the_users_own_code(
    project: Callable[[str, str], str],
) -> None:
    """vivace's loader and importlib are left out, as Python leaves them out of an import
    statement's error: a syntax error is its file, line and caret; an error raised deeper shows
    the user's frames from the target module down."""
    pkg = project("PKG_syntax.py", "x = 1\ndef broken(:\n")
    message = load_error(ref(f"{pkg}_syntax:app"))
    head, _, trace = message.partition(":\n")
    assert head == f"'{pkg}_syntax' has a syntax error"
    assert trace.startswith(f'  File "{os.getcwd()}{os.sep}{pkg}_syntax.py", line 2'), trace
    assert trace.rstrip().endswith("SyntaxError: invalid syntax")
    project("PKG_main.py", "import os\nimport PKG_helper\n")
    project("PKG_helper.py", "\n\nraise RuntimeError('config missing')\n")
    trace = load_error(ref(f"{pkg}_main:app")).partition(":\n")[2]
    frames = [line for line in trace.splitlines() if line.startswith("  File ")]
    assert trace.startswith("Traceback (most recent call last):\n"), trace
    assert [f.split('"')[1] for f in frames] == [
        os.path.join(os.getcwd(), f"{pkg}_main.py"),
        os.path.join(os.getcwd(), f"{pkg}_helper.py"),
    ], trace
    assert "importlib" not in trace and "loader.py" not in trace
    project("PKG_factory.py", "def create():\n    raise ValueError('no config')\n")
    trace = load_error(ref(f"{pkg}_factory:create()")).partition(":\n")[2]
    assert trace.splitlines()[1].startswith(f'  File "{os.path.join(os.getcwd(), pkg)}_factory.py"')
    assert trace.rstrip().endswith("ValueError: no config")


def test_djangos_manage_py_as_the_target_names_the_projects_handlers(
    project: Callable[[str, str], str],
) -> None:
    """``vivace manage.py`` (as ``python manage.py runserver``): the message names the project's
    ASGI and WSGI handlers, found from the settings module manage.py sets (django-admin's
    template, whose main() only runs as a script)."""
    pkg = project(
        "PKG_manage.py",
        """
        import os
        import sys


        def main():
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "PKG_site.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)


        if __name__ == "__main__":
            main()
        """,
    )
    for name in ("__init__", "settings", "asgi", "wsgi"):
        project(f"PKG_site/{name}.py", "")
    handlers = (
        "This is Django's command-line script; serve the project's handler instead: "
        f"vivace {pkg}_site.asgi:application or vivace {pkg}_site.wsgi:application"
    )
    assert handlers in load_error(ref(f"{pkg}_manage.py"))
    assert handlers in load_error(ref(f"{pkg}_manage"))
    assert "command-line script" not in load_error(ref(f"{pkg}_site.settings"))


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


# --- factories: when they get the namespace ------------------------------------------------------

FACTORIES = """
    from __future__ import annotations

    import argparse
    import typing
    from typing import TYPE_CHECKING, Optional

    from runtime import App

    if TYPE_CHECKING:
        from argparse import Namespace


    def _made(kind, args):
        made = App(f"PKG_{kind}_{len(App._registry)}")
        made.ctx.args = args
        return made


    def create_app(test_config=None):  # the Flask tutorial's factory
        return _made("default", test_config)


    def needs_it(args):
        return _made("needs", args)


    def star(*args):
        return _made("star", args[0] if args else None)


    def annotated(args: argparse.Namespace | None = None):
        return _made("annotated", args)


    def optional(args: Optional[argparse.Namespace] = None):
        return _made("optional", args)


    def unresolvable(args: Namespace | None = None):  # only imported under TYPE_CHECKING
        return _made("unresolvable", args)


    def other_annotation(settings: dict[str, int] | None = None):
        return _made("other", settings)
"""


@pytest.mark.parametrize(
    ("attr", "gets_namespace"),
    [
        ("create_app", False),
        ("other_annotation", False),
        ("needs_it", True),
        ("star", True),
        ("annotated", True),
        ("optional", True),
        ("unresolvable", True),
    ],
)
@pytest.mark.parametrize("form", ["{}()", "{} --factory", "{}"])
def test_a_factory_gets_the_namespace_only_when_it_needs_an_argument(
    project: Callable[[str, str], str], attr: str, gets_namespace: bool, form: str
) -> None:
    """As Flask's CLI, uvicorn --factory and gunicorn: ``def create_app(test_config=None)`` is
    called with no arguments; the namespace goes to a factory that needs an argument or that
    annotates it as ``argparse.Namespace``."""
    pkg = project("PKG_factories.py", FACTORIES)
    text = form.format(f"{pkg}_factories:{attr}")
    target = ref(text.removesuffix(" --factory"), factory=text.endswith("--factory"))
    made = load_app(target._replace(namespace={"port": 9}))
    assert isinstance(made, App)
    if gets_namespace:
        assert isinstance(made.ctx.args, argparse.Namespace)
        assert made.ctx.args.port == 9
    else:
        assert made.ctx.args is None


# --- a forced --interface ------------------------------------------------------------------------

FORCED = """
    import json

    answer = 42
    settings = {"debug": True}


    def wsgi(environ, start_response):
        start_response("200 OK", [])
        return [b"wsgi"]


    async def asgi(scope, receive, send):
        pass


    async def one_argument(scope):
        pass


    class NotAnApp:
        pass


    def factory():
        return asgi


    def junk_factory():
        return 42
"""


@pytest.mark.parametrize(
    ("attr", "interface", "words"),
    [
        ("answer", "asgi3", ["is 42 (an int), which is not callable", "async def app(scope"]),
        ("json", "asgi3", ["is the module json, which is not callable"]),
        ("settings", "asgi2", ["(a dict), which is not callable", "def __init__(self, scope)"]),
        ("answer", "wsgi", ["which is not callable", "def app(environ, start_response)"]),
        ("wsgi", "asgi3", ["cannot be called with (scope, receive, send)", "use --interface wsgi"]),
        ("one_argument", "asgi3", ["async function one_argument(scope), which cannot be called"]),
        ("asgi", "wsgi", ["is async, and a WSGI application is not", "use --interface asgi3"]),
        ("asgi", "asgi2", ["is async, and an ASGI 2 application is not"]),
        ("NotAnApp", "asgi2", ["the class NotAnApp, which cannot be called with (scope)"]),
        ("junk_factory()", "asgi3", ["junk_factory() returned 42 (an int), which is not callable"]),
    ],
)
def test_a_forced_interface_refuses_what_cannot_be_that(
    project: Callable[[str, str], str], attr: str, interface: str, words: list[str]
) -> None:
    """Before, the server started and answered every request with a 500."""
    pkg = project("PKG_forced.py", FORCED)
    message = load_error(ref(f"{pkg}_forced:{attr}")._replace(interface=interface))
    assert message.startswith(f"{pkg}_forced:{attr.removesuffix('()')}"), message
    assert f"(--interface {interface})" in message
    assert f"--interface {interface} expects " in message and "for example:" in message
    for word in words:
        assert word in message, message


def test_a_forced_interface_still_calls_the_factory_first(
    project: Callable[[str, str], str],
) -> None:
    from runtime.foreign import ForeignApp

    pkg = project("PKG_forced.py", FORCED)
    module = f"{pkg}_forced"
    for target in (ref(f"{module}:factory()"), ref(f"{module}:factory", factory=True)):
        hosted = load_app(target._replace(interface="asgi3"))
        assert isinstance(hosted, ForeignApp)
        assert hosted.target is sys.modules[module].asgi
        assert hosted.interface == "asgi3"
    hosted = load_app(ref(f"{module}:wsgi")._replace(interface="wsgi"))  # a fit app is served
    assert isinstance(hosted, ForeignApp) and hosted.target is sys.modules[module].wsgi


def test_a_forced_vivace_interface_or_an_unknown_one_is_refused(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG_forced.py", FORCED)
    target = ref(f"{pkg}_forced:junk_factory()")._replace(interface="vivace")
    assert load_error(target).startswith(
        f"{pkg}_forced:junk_factory() returned 42 (an int), not a vivace App (--interface vivace)."
    )
    target = ref(f"{pkg}_forced:asgi")._replace(interface="asgi4")
    assert load_error(target) == (
        "Unknown interface 'asgi4': use one of auto, vivace, asgi3, asgi2, wsgi."
    )


# --- a factory that returns no app ---------------------------------------------------------------

JUNK_FACTORIES = """
    def forgot_return():
        app = object()


    def returns_settings():
        return {"not": "an app"}
"""


def test_a_factory_that_returns_no_app_says_it_was_called_and_what_it_returned(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG_junk.py", JUNK_FACTORIES)
    message = load_error(ref(f"{pkg}_junk:forgot_return"))
    first, second = message.splitlines()[:2]
    assert first == (
        f"Module is not a vivace app, it is a NoneType returned by the factory "
        f"{pkg}_junk:forgot_return()"
    )
    assert f"vivace called the factory {pkg}_junk:forgot_return() and it returned None" in second
    assert "'return app'" in second
    assert "async def app(scope, receive, send)" in message  # what is expected, with an example
    message = load_error(ref(f"{pkg}_junk:returns_settings()"))
    assert "it returned {'not': 'an app'} (a dict), not an app" in message
    assert "factory: def create_app(): return app" in message


# --- suggestions ---------------------------------------------------------------------------------


SUGGESTIONS = """
    from runtime import App

    settings = {"debug": True}
    web = App("PKG_web")


    async def asgi_app(scope, receive, send):
        pass


    def helper(a, b):
        return a + b
"""


def test_a_wrong_attribute_gets_suggestions_and_what_was_found_and_expected(
    project: Callable[[str, str], str],
) -> None:
    pkg = project("PKG_suggest.py", SUGGESTIONS)
    message = load_error(ref(f"{pkg}_suggest:settings"))
    lines = message.splitlines()
    assert lines[1] == f"  Perhaps you meant {pkg}_suggest:asgi_app or {pkg}_suggest:web?"
    assert lines[2] == f"  {pkg}_suggest:settings is a dict, which is not callable:"
    assert "async def app(scope, receive, send)" in message
    assert "helper" not in message  # a sync function of two arguments is no suggestion


def test_a_package_with_only_a_create_app_factory_suggests_it(
    project: Callable[[str, str], str],
) -> None:
    pkg = project(
        "PKG_flaskr/__init__.py",
        """
        def create_app(test_config=None):
            return None


        def configure(app, extra):
            pass
        """,
    )
    message = load_error(ref(f"{pkg}_flaskr"))
    assert message.startswith("Looks like you only supplied a module name.")
    assert f"Perhaps you meant {pkg}_flaskr:create_app?" in message
    assert "configure" not in message
