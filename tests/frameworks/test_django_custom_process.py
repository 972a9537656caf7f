"""A custom process started with ``manage()`` for a Django-hosted app can use the ORM: Django's
workers start from the fork server, where nothing ran ``django.setup()``, and a custom process
only unpickles its function (importing its module, which imports the models), so vivace sets
Django up there first. An app that is not Django never imports Django for it. Real vivace
processes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_vivace import get, start, write

pytestmark = pytest.mark.slow


DJANGO = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """
        from pathlib import Path

        SECRET_KEY = "tests-only"
        DEBUG = False
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "mysite.urls"
        INSTALLED_APPS = ["pages"]
        MIDDLEWARE = []
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": Path(__file__).resolve().parent.parent / "db.sqlite3",
            }
        }
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
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

        from pages import views

        urlpatterns = [path("start/", views.start)]
        """,
    "pages/__init__.py": "",
    "pages/models.py": """
        from django.db import models


        class Note(models.Model):
            text = models.CharField(max_length=100)
        """,
    # the models are imported at the top: unpickling the function imports this module
    "pages/jobs.py": """
        from django.db import connection

        from pages.models import Note


        def write_notes():
            with connection.schema_editor() as editor:
                editor.create_model(Note)
            Note.objects.create(text="from the job")
            print(f"JOB saw {Note.objects.count()} note(s)", flush=True)
        """,
    "pages/views.py": """
        import runtime
        from django.http import HttpResponse

        from pages.jobs import write_notes


        def start(request):
            runtime.multiplexer().manage("Jobs", write_notes)
            return HttpResponse("started")
        """,
}


def test_a_custom_process_of_a_django_app_can_use_the_orm(tmp_path: Path) -> None:
    pytest.importorskip("django")
    root = tmp_path.resolve()
    for name, text in DJANGO.items():
        write(root / name, text)
    server, port = start(
        root, "mysite.asgi:application", "--no-motd", drop_env=("DJANGO_SETTINGS_MODULE",)
    )
    try:
        assert server.wait_until(lambda: get(port, "/start/"), "the start view") == "started"
        out = server.wait_until(
            lambda: next(
                (text for text in [server.output()] if "JOB saw" in text or "Traceback" in text),
                None,
            ),
            "the job to report (or fail)",
            20,
        )
        server.wait_output("Removed worker Jobs", 10)  # it ended
        assert "JOB saw 1 note(s)" in out, out
        assert "AppRegistryNotReady" not in out
    finally:
        assert server.stop() == 0


PLAIN = {
    "app.py": """
        import runtime

        from jobs import report


        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            if scope["path"] == "/start":
                runtime.multiplexer().manage("Jobs", report)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"started"})
        """,
    "jobs.py": """
        import sys


        def report():
            print(f"JOB django imported: {'django' in sys.modules}", flush=True)
        """,
}


def test_a_custom_process_of_another_app_does_not_import_django(tmp_path: Path) -> None:
    """Even with ``DJANGO_SETTINGS_MODULE`` in the environment (a shell exports it, or the app
    lives in a Django project) a raw ASGI app's custom process leaves Django alone."""
    root = tmp_path.resolve()
    for name, text in PLAIN.items():
        write(root / name, text)
    server, port = start(
        root, "app:app", "--no-motd", env={"DJANGO_SETTINGS_MODULE": "nowhere.settings"}
    )
    try:
        assert server.wait_until(lambda: get(port, "/start"), "the start view") == "started"
        out = server.wait_output("JOB django imported:", 20)
        assert "JOB django imported: False" in out, out
        assert "Traceback" not in out, out
    finally:
        assert server.stop() == 0
