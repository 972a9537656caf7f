"""A template edit is served under ``--reload`` for Django and Flask, as ``manage.py runserver`` and
``flask run --debug`` do: both frameworks cache compiled templates (Django's cached loader, Flask's
Jinja environment, ``app.debug`` being off under vivace), so the reloader watches their template
directories and restarts the workers. Real ``vivace --reload -v`` processes on 127.0.0.1, real
Django and Flask apps."""

from __future__ import annotations

import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live_vivace import Vivace
from tests.support import free_port

pytestmark = pytest.mark.slow


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        exc.close()
        raise OSError(f"HTTP {exc.code}") from None


def serves(server: Vivace, port: int, path: str, text: str, timeout: float = 20.0) -> None:
    server.wait_until(lambda: text in get(port, path) or None, f"{text!r} at {path}", timeout)


def save_until_seen(server: Vivace, path: Path, text: str) -> None:
    """Save ``text`` and wait for the reloader to log the change; save again if the watcher, just
    started, missed it (watchfiles sees changes from when its watch is in place)."""
    seen = server.output().count("Change detected")
    for _ in range(10):
        path.write_text(text)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if server.output().count("Change detected") > seen:
                return
            time.sleep(0.05)
    raise AssertionError(f"the reloader never saw {path} change:\n{server.output()}")


def start(root: Path, target: str) -> tuple[Vivace, int]:
    port = free_port()
    server = Vivace(
        root,
        target,
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
        "--reload",
        "-v",
        "--no-motd",
        drop_env=("DJANGO_SETTINGS_MODULE",),
    )
    return server, port


DJANGO = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "tests-only"
        DEBUG = False
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "mysite.urls"
        INSTALLED_APPS = ["pages"]
        MIDDLEWARE = []
        DATABASES = {}
        TEMPLATES = [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [BASE_DIR / "templates"],
                "APP_DIRS": True,
            }
        ]
        """,
    "mysite/asgi.py": """
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
        """,
    "mysite/urls.py": """
        from django.urls import path

        from pages import views

        urlpatterns = [path("site/", views.site), path("app/", views.app)]
        """,
    "pages/__init__.py": "",
    "pages/views.py": """
        from django.shortcuts import render


        def site(request):
            return render(request, "site.html")


        def app(request):
            return render(request, "pages/app.html")
        """,
    "templates/site.html": "site v1\n",
    "pages/templates/pages/app.html": "app v1\n",
}


def test_django_template_edits_in_dirs_and_app_templates_are_served(tmp_path: Path) -> None:
    pytest.importorskip("django")
    root = tmp_path.resolve()
    for name, text in DJANGO.items():
        write(root / name, text)
    server, port = start(root, "mysite.asgi:application")
    try:
        serves(server, port, "/site/", "site v1")
        serves(server, port, "/app/", "app v1")
        line = server.wait_output("Watching ", 20)
        watching = next(x for x in line.splitlines() if "Watching " in x)
        assert f"template dirs: {root / 'templates'}, {root / 'pages' / 'templates'}" in watching
        assert "site-packages" not in watching  # no installed app's templates
        save_until_seen(server, root / "templates" / "site.html", "site v2\n")
        serves(server, port, "/site/", "site v2")
        save_until_seen(server, root / "pages" / "templates" / "pages" / "app.html", "app v2\n")
        serves(server, port, "/app/", "app v2")
        serves(server, port, "/site/", "site v2")
    finally:
        assert server.stop() == 0


FLASK = {
    "app.py": """
        from flask import Flask, render_template

        from shop import shop

        app = Flask(__name__)
        app.register_blueprint(shop, url_prefix="/shop")


        @app.get("/")
        def index():
            return render_template("index.html")
        """,
    "shop/__init__.py": """
        from flask import Blueprint, render_template

        shop = Blueprint("shop", __name__, template_folder="views")


        @shop.get("/")
        def items():
            return render_template("items.html")
        """,
    "templates/index.html": "index v1\n",
    "shop/views/items.html": "items v1\n",
}


def test_flask_template_edits_of_the_app_and_a_blueprint_are_served(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    root = tmp_path.resolve()
    for name, text in FLASK.items():
        write(root / name, text)
    server, port = start(root, "app:app")
    try:
        serves(server, port, "/", "index v1")
        serves(server, port, "/shop/", "items v1")
        line = server.wait_output("Watching ", 20)
        watching = next(x for x in line.splitlines() if "Watching " in x)
        assert f"template dirs: {root / 'templates'}, {root / 'shop' / 'views'}" in watching
        save_until_seen(server, root / "templates" / "index.html", "index v2\n")
        serves(server, port, "/", "index v2")
        save_until_seen(server, root / "shop" / "views" / "items.html", "items v2\n")
        serves(server, port, "/shop/", "items v2")
    finally:
        assert server.stop() == 0


def test_a_django_app_templates_directory_made_during_the_session_is_watched(
    tmp_path: Path,
) -> None:
    """The tutorial's flow: the app has no ``templates/`` when the server starts; it is made,
    a view starts rendering from it, then the template is edited: the edit is served."""
    pytest.importorskip("django")
    root = tmp_path.resolve()
    for name, text in DJANGO.items():
        if name != "pages/templates/pages/app.html":
            write(root / name, text)
    views = root / "pages" / "views.py"
    views.write_text(views.read_text().replace('"pages/app.html"', '"site.html"'))
    server, port = start(root, "mysite.asgi:application")
    try:
        serves(server, port, "/app/", "site v1")
        server.wait_output("Watching ", 20)
        write(root / "pages" / "templates" / "pages" / "app.html", "app v1\n")
        save_until_seen(server, views, views.read_text().replace('"site.html"', '"pages/app.html"'))
        serves(server, port, "/app/", "app v1")
        save_until_seen(server, root / "pages" / "templates" / "pages" / "app.html", "app v2\n")
        serves(server, port, "/app/", "app v2")
    finally:
        assert server.stop() == 0
