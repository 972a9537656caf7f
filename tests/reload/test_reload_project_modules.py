"""Every ``.py`` file of the project reloads, not only the modules imported when the app was loaded.

The reloader loads the app once; a Django URLconf and its views are imported on the first request,
in the worker; a FastAPI router can be written during the session; a handler can import a module
when it first runs. A save of any of them must serve the new code (as ``uvicorn --reload`` does),
while virtualenvs, site-packages, hidden directories, ``--reload-exclude`` matches and files that
are not Python stay quiet. Real ``vivace --reload`` processes on 127.0.0.1.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.live_vivace import Vivace, serves, start, write

pytestmark = pytest.mark.slow


def reloading(cwd: Path, target: str, *args: str) -> tuple[Vivace, int]:
    """``vivace target --reload --debug *args`` on a free port."""
    return start(cwd, target, "--reload", "--debug", *args)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_fastapi_router_added_during_the_session_reloads_on_every_edit(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    root = tmp_path.resolve()
    main = root / "main.py"
    write(
        main,
        """
        from fastapi import FastAPI
        from fastapi.responses import PlainTextResponse

        app = FastAPI()

        @app.get("/", response_class=PlainTextResponse)
        def index():
            return "main v1"
        """,
    )
    server, port = reloading(root, "main:app")
    try:
        serves(server, port, "main v1")
        server.wait_output("Watching ")  # the reloader's watchers are live
        users = root / "routers" / "users.py"
        write(root / "routers" / "__init__.py", "")
        write(
            users,
            """
            from fastapi import APIRouter
            from fastapi.responses import PlainTextResponse

            router = APIRouter()

            @router.get("/users", response_class=PlainTextResponse)
            def users():
                return "users v1"
            """,
        )
        with main.open("a") as f:
            f.write("\nfrom routers.users import router\napp.include_router(router)\n")
        serves(server, port, "users v1", "/users")
        edit(users, "users v1", "users v2")
        serves(server, port, "users v2", "/users")
        edit(users, "users v2", "users v3")
        serves(server, port, "users v3", "/users")
    finally:
        assert server.stop() == 0


DJANGO = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """
        SECRET_KEY = "test-only"
        DEBUG = True
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "mysite.urls"
        INSTALLED_APPS = []
        MIDDLEWARE = []
        DATABASES = {}
        USE_TZ = True
        """,
    "mysite/asgi.py": """
        import os
        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
        """,
    "mysite/urls.py": """
        from django.urls import path
        from notes import views

        urlpatterns = [path("", views.index)]
        """,
    "notes/__init__.py": "",
    "notes/views/__init__.py": "from .pages import index\n",
    "notes/views/pages.py": """
        from django.http import HttpResponse

        def index(request):
            return HttpResponse("dj v1")
        """,
}


def test_a_django_views_package_imported_lazily_by_the_urlconf_reloads(tmp_path: Path) -> None:
    pytest.importorskip("django")
    root = tmp_path.resolve()
    for name, text in DJANGO.items():
        write(root / name, text)
    server, port = reloading(root, "mysite.asgi:application")
    try:
        serves(server, port, "dj v1")  # the worker imported the URLconf and the views just now
        server.wait_output("Watching ")
        edit(root / "notes" / "views" / "pages.py", "dj v1", "dj v2")
        serves(server, port, "dj v2")
    finally:
        assert server.stop() == 0


HANDLER_IMPORT = """
    import os
    from runtime import App, text

    app = App("Lazy")

    @app.get("/")
    async def index(request):
        from services import pricing  # imported on first use, in the worker only

        return text(pricing.VALUE)

    @app.after_reload_trigger
    def after(app, changed):
        print("RELOADED", sorted(changed), flush=True)
    """


def test_a_module_imported_inside_a_handler_reloads(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    write(root / "app.py", HANDLER_IMPORT)
    write(root / "services" / "__init__.py", "")
    write(root / "services" / "pricing.py", 'VALUE = "price v1"\n')
    server, port = reloading(root, "app:app")
    try:
        serves(server, port, "price v1")
        server.wait_output("Watching ")
        edit(root / "services" / "pricing.py", "price v1", "price v2")
        serves(server, port, "price v2")
    finally:
        assert server.stop() == 0


def reloads(server: Vivace) -> list[list[str]]:
    """Every batch the reloader sent, in order (the after_reload_trigger lines)."""
    return [
        ast.literal_eval(line[line.index("[") :])
        for line in server.output().splitlines()
        if "RELOADED [" in line
    ]


def test_virtualenvs_hidden_dirs_excluded_and_non_python_files_do_not_reload(
    tmp_path: Path,
) -> None:
    root = tmp_path.resolve()
    write(root / "app.py", HANDLER_IMPORT)
    write(root / "services" / "__init__.py", "")
    write(root / "services" / "pricing.py", 'VALUE = "price v1"\n')
    site = root / "env" / "lib" / "python3.11" / "site-packages"
    quiet = [
        root / "env" / "bin" / "tool.py",  # a virtualenv (it has a pyvenv.cfg) not named .venv
        site / "dep" / "__init__.py",
        root / "vendor" / "site-packages" / "other.py",  # site-packages without a pyvenv.cfg
        root / ".hidden" / "tool.py",
        root / ".venv" / "lib" / "x.py",
        root / "node_modules" / "pkg" / "x.py",
        root / "services" / "__pycache__" / "pricing.py",
        root / "build" / "gen.py",  # --reload-exclude build
        root / "services" / "notes.txt",  # not Python
    ]
    write(root / "env" / "pyvenv.cfg", "home = /usr/bin\n")
    for path in quiet:
        write(path, "X = 1\n")
    server, port = reloading(root, "app:app", "--reload-exclude", "build")
    try:
        serves(server, port, "price v1")
        server.wait_output("Watching ")
        # edits in every quiet place, and a virtualenv created during the session
        for path in quiet:
            path.write_text("X = 2\n")
        write(root / "env2" / "pyvenv.cfg", "home = /usr/bin\n")
        created = [
            root / "env2" / "bin" / "new_tool.py",
            root / "env2" / "lib" / "python3.11" / "site-packages" / "new_dep.py",
            root / ".hidden" / "more" / "new.py",
        ]
        for path in created:
            write(path, "X = 1\n")
        # then a new project package and a project module: their reloads come after every event
        # above was seen (the new directories are found together, in creation order)
        fresh = root / "extra" / "mod.py"
        write(fresh, "X = 1\n")
        server.wait_until(
            lambda: any(str(fresh) in batch for batch in reloads(server)) or None,
            f"a reload for {fresh}",
        )
        edit(root / "services" / "pricing.py", "price v1", "price v2")
        serves(server, port, "price v2")
        pricing = str(root / "services" / "pricing.py")
        batches = server.wait_until(
            lambda: reloads(server) if any(pricing in b for b in reloads(server)) else None,
            f"a reload for {pricing}",
        )
        changed = {path for batch in batches for path in batch}
        assert changed & {str(p) for p in quiet + created} == set()
    finally:
        assert server.stop() == 0
