"""A Django view that raises is reported once in the worker's output, not twice: Django's default
``LOGGING`` prints the error with its own console handler when ``DEBUG`` is on and lets it
propagate to the root logger, where vivace's handler would print it again. With ``DEBUG`` off
Django's handler stays quiet and vivace's prints it; vivace's own lines and the app's
``logging.getLogger(__name__).info(...)`` show as before. Real vivace processes on 127.0.0.1,
a real Django project."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live_vivace import start, write

pytestmark = pytest.mark.slow

FILES = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """
        import os

        SECRET_KEY = "tests-only"
        DEBUG = os.environ["TEST_DJANGO_DEBUG"] == "1"
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "mysite.urls"
        INSTALLED_APPS = []
        MIDDLEWARE = []
        DATABASES = {}
        """,
    "mysite/asgi.py": """
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
        """,
    "mysite/urls.py": """
        import logging

        from django.http import HttpResponse
        from django.urls import path

        logger = logging.getLogger(__name__)


        def boom(request):
            raise ValueError("boom-marker")


        def note(request):
            logger.info("note-marker from the app")
            return HttpResponse("noted")


        urlpatterns = [path("boom/", boom), path("note/", note)]
        """,
}


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
def test_a_view_error_is_printed_once(tmp_path: Path, debug: bool) -> None:
    pytest.importorskip("django")
    root = tmp_path.resolve()
    for name, text in FILES.items():
        write(root / name, text)
    server, port = start(
        root,
        "mysite.asgi:application",
        "--no-motd",
        "-w",
        "1",
        env={"TEST_DJANGO_DEBUG": "1" if debug else "0"},
        drop_env=("DJANGO_SETTINGS_MODULE",),
    )
    try:
        assert server.wait_until(lambda: status(port, "/boom/"), "the failing view") == 500
        # the same worker logs the next request's line after everything the error printed
        assert server.wait_until(lambda: status(port, "/note/"), "the logging view") == 200
        out = server.wait_output("note-marker from the app", 20)
        assert out.count("ValueError: boom-marker") == 1, out
        assert out.count("Internal Server Error: /boom/") == 1, out
        assert "Starting worker" in out  # vivace's own lines
        note = next(line for line in out.splitlines() if "note-marker" in line)
        assert "[INFO] note-marker from the app" in note  # through vivace's handler, as before
    finally:
        assert server.stop() == 0
