"""The examples of ``examples/``, and the apps of docs/frameworks.md and the README's FastAPI
section, served by real vivace processes over real sockets.

Every server is started on a free port of 127.0.0.1, waited for with a timeout, stopped with SIGINT
and checked to exit 0 with no process of its tree left behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from tests.frameworks.servers import (
    Server,
    _wait_until_answering,
    environment,
    vivace_command,
    wait_until,
)
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = ROOT / "docs" / "frameworks.md"

pytestmark = pytest.mark.slow


class Servers:
    """Starts vivace processes for one test and stops every one of them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.started: list[Server] = []

    def start(
        self,
        target: str,
        *args: str,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        ready_path: str = "/",
    ) -> Server:
        port = free_port()
        log = self.tmp / f"vivace-{port}.log"
        extra = {"NOTES_DB": str(self.tmp / "notes.sqlite3"), **(env or {})}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                vivace_command(target, port, args),
                cwd=cwd,
                env=environment(self.tmp, extra),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server("vivace", target, port, proc, log, self.tmp)
        self.started.append(server)
        _wait_until_answering(server, ready_path)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                server.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    running = Servers(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def run_to_exit(
    tmp_path: Path, target: str, *args: str, cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run vivace in a tree that must end by itself (a failing start); no process may remain."""
    command = vivace_command(target, free_port(), args)
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.communicate(timeout=5)
    return subprocess.CompletedProcess(command, proc.returncode, out, "")


# --- examples/fastapi_app.py ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [("-w", "2"), ("--dev",), ("--single-process",)])
def test_the_fastapi_example(servers: Servers, args: Sequence[str]) -> None:
    server = servers.start("examples.fastapi_app:app", *args)
    assert httpx.get(server.url + "/", timeout=5).json() == {"hello": "world"}
    notes = httpx.get(server.url + "/notes", timeout=5)
    assert notes.status_code == 200
    assert [n["text"] for n in notes.json()][:2] == ["buy milk", "call Ada"]  # the lifespan's db
    added = httpx.post(server.url + "/notes", json={"text": "hi"}, timeout=5)
    assert added.status_code == 201 and added.json()["text"] == "hi"
    assert httpx.get(server.url + "/notes/999", timeout=5).status_code == 404
    worker = httpx.get(server.url + "/worker", timeout=5).json()
    if "--single-process" in args:
        assert worker["worker"] is None  # no multiplexer without the manager
    else:
        assert worker["worker"].startswith("Vivace-Server-")
    with connect(server.ws_url + "/ws", open_timeout=10, close_timeout=5) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
    server.stop_cleanly()


# --- examples/django_project ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "examples.django_project.mysite.asgi:application",
        "examples.django_project.mysite.wsgi:application",
    ],
    ids=["asgi", "wsgi"],
)
@pytest.mark.parametrize("args", [("-w", "2"), ("--single-process",)], ids=["w2", "single"])
def test_the_django_example(
    servers: Servers, tmp_path: Path, target: str, args: Sequence[str]
) -> None:
    assert not (tmp_path / "notes.sqlite3").exists()
    server = servers.start(target, *args)
    home = httpx.get(server.url + "/", timeout=10)
    assert home.status_code == 200, home.text
    assert home.json()["hello"] == "django"
    assert (tmp_path / "notes.sqlite3").is_file()  # created on first use
    added = httpx.post(server.url + "/notes/", json={"text": "hi"}, timeout=10)
    assert added.status_code == 201, added.text
    note = httpx.get(server.url + f"/notes/{added.json()['id']}/", timeout=10)
    assert note.status_code == 200 and note.json()["text"] == "hi"
    listed = httpx.get(server.url + "/notes/", timeout=10).json()["notes"]
    assert [n["text"] for n in listed] == ["hi"]  # one database for every worker
    assert httpx.get(server.url + "/notes/999/", timeout=10).status_code == 404
    server.stop_cleanly()


def test_the_django_example_migrates_with_manage(tmp_path: Path) -> None:
    env = environment(tmp_path, {"NOTES_DB": str(tmp_path / "db.sqlite3")})
    result = subprocess.run(
        [sys.executable, "-m", "examples.django_project.manage", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Applying notes.0001_initial... OK" in result.stdout


def test_django_workers_do_not_register_the_models_twice(servers: Servers) -> None:
    """Workers import the user's modules afresh, but Django's app registry (a library module the
    main process already populated) came with the fork: the models module, imported again,
    registers ``notes.Note`` a second time (Django warns: "Reloading models is not advised as it
    can lead to inconsistencies")."""
    server = servers.start("examples.django_project.mysite.asgi:application", "-w", "1")
    assert httpx.get(server.url + "/notes/", timeout=10).status_code == 200
    server.stop_cleanly()
    assert "was already registered" not in server.output(), server.output()


DJANGO_SIGNALS_PROJECT = {
    "proj/__init__.py": "",
    "proj/settings.py": """\
SECRET_KEY = "tests-only"
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["proj.shop"]
ROOT_URLCONF = "proj.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
""",
    "proj/shop/__init__.py": "",
    "proj/shop/models.py": """\
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=10)
""",
    "proj/shop/apps.py": """\
from django.apps import AppConfig

SAVED = []


def record(sender, instance, **kwargs):
    SAVED.append(instance.name)


class ShopConfig(AppConfig):
    name = "proj.shop"

    def ready(self):  # the usual place to connect signal receivers
        from django.db.models.signals import post_save

        from proj.shop.models import Author

        post_save.connect(record, sender=Author)
""",
    "proj/urls.py": """\
from django.core.management import call_command
from django.http import JsonResponse
from django.urls import path


def view(request):
    from proj.shop import apps
    from proj.shop.models import Author

    call_command("migrate", run_syncdb=True, verbosity=0)
    Author.objects.create(name="ada")
    return JsonResponse({"saved": apps.SAVED})


urlpatterns = [path("", view)]
""",
    "proj/asgi.py": """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
application = get_asgi_application()
""",
}


@pytest.mark.parametrize("args", [("--single-process",), ("-w", "1")], ids=["single", "w1"])
def test_django_signal_receivers_connected_in_ready_fire_in_workers(
    servers: Servers, tmp_path: Path, args: Sequence[str]
) -> None:
    """``AppConfig.ready()`` connects a ``post_save`` receiver for ``Author``; saving an
    ``Author`` in a view must call it. In a worker it is never called: ``django.setup()`` ran in
    the main process (ready() connected the receiver to the main's ``Author`` class), the worker
    re-imports the user's modules (a new ``Author`` class) but keeps Django's populated registry,
    so ``setup()`` does nothing there and no receiver is connected to the class the view uses."""
    project = tmp_path / "project"
    for name, text in DJANGO_SIGNALS_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    server = servers.start("proj.asgi:application", *args, cwd=project, ready_path="/nothing")
    response = httpx.get(server.url + "/", timeout=10)
    assert response.status_code == 200, server.output()
    assert response.json() == {"saved": ["ada"]}
    server.stop_cleanly()


# --- docs/frameworks.md and the README -----------------------------------------------------------


def titled_block(text: str, title: str) -> str:
    """The ```python block of ``text`` whose info string is ``title="<title>"``."""
    pattern = rf'^```python title="{re.escape(title)}"\n(.*?)^```'
    match = re.search(pattern, text, flags=re.M | re.S)
    assert match is not None, f"no python block titled {title!r}"
    return match.group(1)


def _page_app(tmp_path: Path, title: str, text: str | None = None) -> Path:
    source = titled_block(DOCS_PAGE.read_text() if text is None else text, title)
    (tmp_path / title).write_text(source)
    return tmp_path


@pytest.mark.parametrize("args", [("-w", "2"), ("--dev",)])
def test_the_docs_fastapi_app(servers: Servers, tmp_path: Path, args: Sequence[str]) -> None:
    cwd = _page_app(tmp_path, "main.py")
    server = servers.start("main:app", *args, cwd=cwd)
    assert httpx.get(server.url + "/", timeout=5).json() == {"hello": "world"}
    assert httpx.get(server.url + "/users/1", timeout=5).json() == {"name": "ada"}
    server.stop_cleanly()


def test_the_docs_flask_app(servers: Servers, tmp_path: Path) -> None:
    cwd = _page_app(tmp_path, "app.py")
    server = servers.start("app:app", "-w", "2", cwd=cwd, env={"VIVACE_WSGI_THREADS": "4"})
    assert httpx.get(server.url + "/", timeout=5).json() == {"hello": "flask"}
    server.stop_cleanly()


def test_the_docs_factory(servers: Servers, tmp_path: Path) -> None:
    cwd = _page_app(tmp_path, "factory.py")
    server = servers.start("factory:create_app()", cwd=cwd)
    assert httpx.get(server.url + "/", timeout=5).json() == {"made": "by a factory"}
    server.stop_cleanly()


def test_the_docs_multiplexer_route(servers: Servers, tmp_path: Path) -> None:
    cwd = _page_app(tmp_path, "service.py")
    server = servers.start("service:app", "-w", "2", cwd=cwd)
    before = httpx.get(server.url + "/whoami", timeout=5).json()
    assert before["worker"].startswith("Vivace-Server-")
    assert httpx.post(server.url + "/restart", timeout=5).json() == {"restarting": "all workers"}

    def pid_changed() -> bool:
        try:
            return httpx.get(server.url + "/whoami", timeout=2).json()["pid"] != before["pid"]
        except httpx.HTTPError:
            return False

    wait_until(pid_changed, 20, "the workers to be replaced")
    server.stop_cleanly()


def test_the_docs_root_path(servers: Servers, tmp_path: Path) -> None:
    cwd = _page_app(tmp_path, "main.py")
    server = servers.start("main:app", "--root-path", "/api", cwd=cwd)
    # the proxy strips /api; the app builds its URLs with it
    assert httpx.get(server.url + "/users/1", timeout=5).status_code == 200
    assert "/api/openapi.json" in httpx.get(server.url + "/docs", timeout=5).text
    server.stop_cleanly()


def test_a_save_right_after_the_first_response_is_reloaded(
    servers: Servers, tmp_path: Path
) -> None:
    """A save made as soon as the server answers is never reloaded when the reloader was not yet
    watching: the workers serve the old code until the next save (2 runs in 3 here)."""
    cwd = _page_app(tmp_path, "main.py")
    server = servers.start("main:app", "--reload", "--debug", cwd=cwd)
    module = cwd / "main.py"
    module.write_text(module.read_text().replace('{"hello": "world"}', '{"hello": "saved"}'))

    def new_code_served() -> bool:
        try:
            return httpx.get(server.url + "/", timeout=2).json() == {"hello": "saved"}
        except (httpx.HTTPError, ValueError):
            return False

    try:
        wait_until(new_code_served, 15, "the saved code to be served")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the server said:\n{server.output()}") from None
    server.stop_cleanly()


def test_a_failing_lifespan_exits_1(tmp_path: Path) -> None:
    cwd = _page_app(tmp_path, "broken.py")
    result = run_to_exit(tmp_path, "broken:app", "-w", "2", cwd=cwd)
    assert result.returncode == 1, result.stdout
    assert "the database is not reachable" in result.stdout


def test_the_readme_fastapi_app(servers: Servers, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    cwd = _page_app(tmp_path, "main.py", readme)
    server = servers.start("main:app", "--dev", cwd=cwd)
    assert httpx.get(server.url + "/", timeout=5).json() == {"hello": "world"}
    server.stop_cleanly()
