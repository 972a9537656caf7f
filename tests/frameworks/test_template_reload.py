"""A template edit is served under ``--reload`` for Django and Flask, as ``manage.py runserver`` and
``flask run --debug`` do: both frameworks cache compiled templates (Django's cached loader, Flask's
Jinja environment, ``app.debug`` being off under vivace), so the reloader watches their template
directories and restarts the workers. Real ``vivace --reload -v`` processes on 127.0.0.1, real
Django and Flask apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_vivace import Vivace, save_until_seen, serves, start, write

pytestmark = pytest.mark.slow


def reloading(root: Path, target: str) -> tuple[Vivace, int]:
    """``vivace target --reload -v``, with no ``DJANGO_SETTINGS_MODULE`` but the project's."""
    return start(root, target, "--reload", "-v", "--no-motd", drop_env=("DJANGO_SETTINGS_MODULE",))


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
    server, port = reloading(root, "mysite.asgi:application")
    try:
        serves(server, port, "site v1", "/site/")
        serves(server, port, "app v1", "/app/")
        line = server.wait_output("Watching ", 20)
        watching = next(x for x in line.splitlines() if "Watching " in x)
        assert f"template dirs: {root / 'templates'}, {root / 'pages' / 'templates'}" in watching
        assert "site-packages" not in watching  # no installed app's templates
        save_until_seen(root / "templates" / "site.html", "site v2\n", server.output)
        serves(server, port, "site v2", "/site/")
        save_until_seen(
            root / "pages" / "templates" / "pages" / "app.html", "app v2\n", server.output
        )
        serves(server, port, "app v2", "/app/")
        serves(server, port, "site v2", "/site/")
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
    server, port = reloading(root, "app:app")
    try:
        serves(server, port, "index v1", "/")
        serves(server, port, "items v1", "/shop/")
        line = server.wait_output("Watching ", 20)
        watching = next(x for x in line.splitlines() if "Watching " in x)
        assert f"template dirs: {root / 'templates'}, {root / 'shop' / 'views'}" in watching
        save_until_seen(root / "templates" / "index.html", "index v2\n", server.output)
        serves(server, port, "index v2", "/")
        save_until_seen(root / "shop" / "views" / "items.html", "items v2\n", server.output)
        serves(server, port, "items v2", "/shop/")
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
    server, port = reloading(root, "mysite.asgi:application")
    try:
        serves(server, port, "site v1", "/app/")
        server.wait_output("Watching ", 20)
        write(root / "pages" / "templates" / "pages" / "app.html", "app v1\n")
        save_until_seen(
            views, views.read_text().replace('"site.html"', '"pages/app.html"'), server.output
        )
        serves(server, port, "app v1", "/app/")
        save_until_seen(
            root / "pages" / "templates" / "pages" / "app.html", "app v2\n", server.output
        )
        serves(server, port, "app v2", "/app/")
    finally:
        assert server.stop() == 0
