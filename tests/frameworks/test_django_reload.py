"""A Django project under ``vivace --reload``: Django imports the URLconf and the views on the
first request, not when ``mysite.asgi`` is imported, so a save that breaks a view must still be
caught before the new workers replace the good ones (``runtime.foreign`` imports the URLconf
before a worker says it is ready). A real server process, a real Django project."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.frameworks.servers import wait_until
from tests.live_vivace import save_until_seen, write
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

FILES = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """\
        SECRET_KEY = "tests-only"
        DEBUG = False
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "mysite.urls"
        INSTALLED_APPS = ["pages"]
        MIDDLEWARE = []
        DATABASES = {}
        """,
    "mysite/asgi.py": """\
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
        """,
    "mysite/urls.py": """\
        from django.urls import path

        from pages.views import index

        urlpatterns = [path("", index)]
        """,
    "pages/__init__.py": "",
    "pages/views.py": """\
        from django.http import HttpResponse


        def index(request):
            return HttpResponse("version 1")
        """,
}


def _body(url: str) -> str:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.HTTPError as exc:
        return f"error: {exc!r}"


def test_a_save_that_breaks_a_view_keeps_the_old_workers_serving(tmp_path: Path) -> None:
    for name, text in FILES.items():
        write(tmp_path / name, text)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = tmp_path / "vivace.log"
    command = [sys.executable, "-m", "runtime", "mysite.asgi:application", "--reload"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-motd", "-v"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    family: list[psutil.Process] = []
    try:
        wait_until(lambda: _body(url) == "version 1", 30, "the project to answer")
        family = psutil.Process(proc.pid).children(recursive=True)
        view = tmp_path / "pages/views.py"
        good = view.read_text()
        wait_until(lambda: "Watching" in log.read_text(), 20, "the reloader to watch")
        broken = good.replace('"version 1")', '"version 2",,)')
        save_until_seen(view, broken, log.read_text)
        wait_until(lambda: "Reload failed" in log.read_text(), 20, "the reload to fail")
        for _ in range(5):
            assert _body(url) == "version 1", log.read_text()
        time.sleep(0.3)
        save_until_seen(view, good.replace("version 1", "version 3"), log.read_text)
        wait_until(lambda: _body(url) == "version 3", 20, "the fixed view to be served")
    finally:
        family += psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        _, alive = psutil.wait_procs(family, timeout=10)
        for p in alive:
            p.kill()
    assert proc.returncode == 0, log.read_text()
    assert not alive, f"processes left behind: {alive}"
