"""Issue 12's console acceptance: FastAPI, Django and Flask apps under vivace, as a user runs them.

* A real pseudo-terminal (pexpect + pyte, the ``Term`` of tests/repl/test_repl_terminal.py) for a
  FastAPI app under ``--dev``: ENTER opens the console, ``client.get``, ``routes``, ``do()`` using
  what the lifespan made, ``restart()`` (the worker table changes), a saved change served, then
  ``refresh()``; Ctrl+D, ``exit()`` and Ctrl+C stop it with no process left.
* Scripted mode (``--repl-command``) for the example Django project and for a Flask app.

Every wait has a timeout and every process started here is stopped and checked to be gone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.repl.test_repl_terminal import Term, assert_gone, terminals
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fastapi_app.py"

pytestmark = pytest.mark.slow


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Callable[..., Term]]:
    """As tests/repl/conftest.py's: vivace in a pty, closed after the test."""
    with terminals(tmp_path) as start:
        yield start


def _worker_pids(t: Term) -> dict[str, int]:
    """Type ``workers`` and read the server rows of the table: name -> pid."""
    mark = len(t.text)
    t.run("workers", "server workers ready")
    rows = [line.split() for line in t.text[mark:].splitlines()]
    return {
        row[0]: int(row[2])
        for row in rows
        if len(row) > 2 and row[0].startswith("Vivace-Server-") and row[1] == "server"
    }


# --- FastAPI under --dev, in a real terminal -----------------------------------------------------


def test_fastapi_console_under_dev(term: Callable[..., Term], tmp_path: Path) -> None:
    source = EXAMPLE.read_text()
    module = tmp_path / "main.py"
    module.write_text(source)
    t = term("--dev", "-w", "2", target="main:app")
    t.wait("Press ENTER to open the console", 30)
    t.send("\r")
    t.wait("vivace console for FastAPI app 'main:app'")
    t.wait_prompt()

    # the live server, through the console's client
    t.run('client.get("/")', "HTTP/1.1 200 OK")
    assert '"hello": "world"' in t.text
    # the routes, read from FastAPI
    mark = len(t.text)
    t.run("routes", "routes (FastAPI)")
    table = t.text[mark:]
    for row in (r"GET\s+/notes\s+notes", r"POST\s+/notes\s+add_note", r"WS\s+/ws\s+echo"):
        assert re.search(row, table), table
    # do(): through the app in the console's process, with the database its lifespan opened
    t.run('r = await do("/notes")', "")
    t.run('[n["text"] for n in r.response.json()]', "['buy milk', 'call Ada']")
    t.run("type(app.state.db).__name__", "'Connection'")

    # restart(): every server worker is replaced
    before = _worker_pids(t)
    assert len(before) == 2, before
    t.run("restart()", "ready in", timeout=30)
    after = _worker_pids(t)
    assert after.keys() == before.keys()
    assert not set(after.values()) & set(before.values()), (before, after)

    # a saved change is served by new workers while the console stays open
    module.write_text(
        source.replace('{"hello": "world"}', '{"hello": "reloaded"}')
        + '\n\n@app.get("/added", name="added")\nasync def added() -> dict[str, bool]:\n'
        '    return {"added": True}\n'
    )

    def new_code_served() -> bool:
        t.pump(0.05)
        try:
            return httpx.get(t.url("/"), timeout=2).json() == {"hello": "reloaded"}
        except (httpx.HTTPError, ValueError):
            return False

    t.wait(new_code_served, 30)
    t.run('client.get("/").json()', "{'hello': 'reloaded'}")
    # the console's app is still the old code until refresh()
    t.run('(await do("/")).response.json()', "{'hello': 'world'}")
    t.run("refresh()", "app re-imported from main")
    t.run('(await do("/")).response.json()', "{'hello': 'reloaded'}")
    t.run('(await do("/added")).response.json()', "{'added': True}")
    t.run('r = await do("/notes"); r.response.status_code', "200")  # the new lifespan's database
    mark = len(t.text)
    t.run("routes", "routes (FastAPI)")
    assert re.search(r"GET\s+/added\s+added", t.text[mark:])

    # Ctrl+D closes the console and the server keeps serving; ENTER opens it again
    t.send("\x04")
    t.wait("Press ENTER to open the console again")
    assert httpx.get(t.url("/added"), timeout=5).status_code == 200
    t.send("\r")
    t.wait_prompt()
    t.run("r.response.status_code", "200")  # the namespace survived
    t.send("exit()\r")
    t.wait("Press ENTER to open the console again")
    assert httpx.get(t.url("/"), timeout=5).status_code == 200
    processes = t.processes()
    assert len(processes) >= 4  # vivace, 2 workers, the reloader (under bash)
    t.send("\x03")  # console closed: Ctrl+C stops the server
    assert t.exit_code() == 0
    assert "Server Stopped" in t.text
    assert_gone(processes)
    assert t.stty_unchanged()
    with pytest.raises(httpx.ConnectError):
        httpx.get(t.url(), timeout=5)


def test_fastapi_console_ctrl_c_while_open_stops_nothing_then_ctrl_d_in_repl_stops_all(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    """``--repl``: Ctrl+C clears the line, Ctrl+D stops the whole server; nothing is left."""
    (tmp_path / "main.py").write_text(EXAMPLE.read_text())
    t = term("--repl", target="main:app")
    t.wait("vivace console for FastAPI app 'main:app'", 30)
    t.wait_prompt()
    t.send("half typed")
    t.pump(0.2)
    t.send("\x03")
    t.wait_prompt()
    t.run('client.get("/notes").status_code', "200")
    processes = t.processes()
    t.send("\x04")
    assert t.exit_code() == 0
    assert_gone(processes)
    assert t.stty_unchanged()


# --- Django and Flask in scripted mode -----------------------------------------------------------


def _scripted(
    tmp_path: Path,
    target: str,
    *commands: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> str:
    """Run vivace ``--repl-command`` for each statement; return stdout, after checking that it
    exited 0 and that no process it started is left (found by a marker in their environment)."""
    mark = uuid.uuid4().hex
    environ = dict(os.environ)
    environ.update(
        PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]),
        VIVACE_HISTORY_FILE=str(tmp_path / "history"),
        VIVACE_TEST_MARK=mark,
        **(env or {}),
    )
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "runtime", target, "-p", str(free_port())]
    command += args if args is not None else ["-w", "2"]
    for statement in commands:
        command += ["--repl-command", statement]
    try:
        result = subprocess.run(
            command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=90
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
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("target", "handler"),
    [
        ("examples.django_project.mysite.asgi:application", "ASGIHandler"),
        ("examples.django_project.mysite.wsgi:application", "WSGIHandler"),
    ],
    ids=["asgi", "wsgi"],
)
def test_django_console_scripted(tmp_path: Path, target: str, handler: str) -> None:
    out = _scripted(
        tmp_path,
        target,
        'client.get("/").json()["hello"]',
        'client.post("/notes/", json={"text": "from the console"}).status_code',
        "routes",
        'r = await do("/notes/")',
        "r",
        '[n["text"] for n in r.response.json()["notes"]]',
        "type(app).__name__",
        cwd=ROOT,
        env={"NOTES_DB": str(tmp_path / "notes.sqlite3")},
    )
    assert "'django'\n201\n" in out, out
    for row in (
        r"ANY\s+/\s+index\s+examples\.django_project\.notes\.views\.index",
        r"GET,POST\s+/notes/\s+notes:list",
        r"ANY\s+/notes/<int:pk>/\s+notes:detail",
        r"3 routes \(Django\)",
    ):
        assert re.search(row, out), out
    # do() runs in the console's process, against the same SQLite database as the workers
    assert "Result(GET /notes/ -> 200 application/json)" in out
    assert f"['from the console']\n'{handler}'\n" in out, out


FLASK_APP = """\
from flask import Flask, jsonify, request

app = Flask(__name__)
app.config["GREETING"] = "hello"


@app.get("/")
def index():
    return jsonify(hello="flask")


@app.route("/echo", methods=["POST"])
def echo():
    return jsonify(got=request.get_json(), greeting=app.config["GREETING"])


@app.get("/users/<int:user_id>")
def user(user_id):
    return jsonify(id=user_id)
"""


def test_flask_console_scripted(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(FLASK_APP))
    out = _scripted(
        tmp_path,
        "app:app",
        'client.get("/").json()',
        "routes",
        'r = await do("/echo", method="POST", json={"n": 1})',
        "r.response.status_code, r.response.json()",
        'app.config["GREETING"] = "hi from the console"',
        '(await do("/echo", method="POST", json={})).response.json()["greeting"]',
        'client.post("/echo", json={}).json()["greeting"]',  # the workers are not touched
        "type(app).__name__",
        cwd=tmp_path,
    )
    assert "{'hello': 'flask'}\n" in out, out
    for row in (
        r"GET\s+/\s+index\s+app\.index",
        r"POST\s+/echo\s+echo\s+app\.echo",
        r"GET\s+/users/<int:user_id>\s+user\s+app\.user",
        r"routes \(Flask\)",
    ):
        assert re.search(row, out), out
    assert "(200, {'got': {'n': 1}, 'greeting': 'hello'})\n" in out, out
    assert "'hi from the console'\n'hello'\n'Flask'\n" in out, out


def test_django_orm_in_the_console(tmp_path: Path) -> None:
    """A Django developer's first statements in a console: the ORM, plain as in ``manage.py
    shell`` (no ``SynchronousOnlyOperation`` although the console runs beside an event loop) and
    through Django's async API in statements that await."""
    out = _scripted(
        tmp_path,
        "examples.django_project.mysite.asgi:application",
        'client.get("/").status_code',  # a worker creates the tables
        "from examples.django_project.notes.models import Note",
        'await Note.objects.acreate(text="async")',
        "await Note.objects.acount()",
        'Note.objects.create(text="sync")',
        "Note.objects.count()",
        cwd=ROOT,
        env={"NOTES_DB": str(tmp_path / "notes.sqlite3")},
    )
    assert "200\n<Note: async>\n1\n<Note: sync>\n2\n" in out, out


def test_refresh_reimports_the_modules_of_the_app_not_only_the_target(tmp_path: Path) -> None:
    """The routes of most FastAPI apps live in routers of other modules (and a Django target,
    ``mysite.asgi``, imports no view at all): after a save, the workers serve the new code of every
    user module, and ``refresh()`` should give the console the same. It re-imports only the
    target module (and its submodules), so the console's ``app`` keeps the router's old code."""
    (tmp_path / "api.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter()\n\n\n"
        '@router.get("/")\nasync def index() -> dict[str, str]:\n    return {"version": "one"}\n'
    )
    (tmp_path / "main.py").write_text(
        "from fastapi import FastAPI\n\nfrom api import router\n\n"
        "app = FastAPI()\napp.include_router(router)\n"
    )
    out = _scripted(
        tmp_path,
        "main:app",
        '(await do("/")).response.json()["version"]',
        'p = __import__("pathlib").Path("api.py")',
        'p.write_text(p.read_text().replace("one", "version two")) > 0',  # a save, new size
        "refresh()",
        '(await do("/")).response.json()["version"]',
        cwd=tmp_path,
    )
    assert "'one'\nTrue\napp re-imported from main\n" in out, out
    assert "'version two'\n" in out, out


def test_django_routes_name_a_class_based_view_by_its_class(tmp_path: Path) -> None:
    """``routes`` shows a Django class-based view as ``django.views.generic.base.View.dispatch``
    (``as_view()`` wraps ``View.dispatch``); its ``view_class`` is the endpoint a user looks for."""
    code = (
        "import django\n"
        "django.setup()\n"
        "from django.core.asgi import get_asgi_application\n"
        "from repl.routes import routes_of\n"
        "print({r.path: r.endpoint for r in routes_of(get_asgi_application())}['/notes/'])\n"
    )
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="examples.django_project.mysite.settings",
        NOTES_DB=str(tmp_path / "notes.sqlite3"),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "examples.django_project.notes.views.NotesView"


# --- issue 17: a console that feels native in each framework (real projects, real terminal) ------

PROJECTS = ROOT / "tests" / "frameworks" / "console_projects"


def _copy_project(name: str, into: Path) -> None:
    shutil.copytree(
        PROJECTS / name,
        into,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "*.db"),
    )


def _project_command(tmp_path: Path, *args: str) -> None:
    """A command of the project's own tooling (``manage.py migrate``, ``flask init-db``)."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _open_console(t: Term, banner: str) -> str:
    """ENTER under ``--dev``; returns the banner's text once the prompt is there."""
    t.wait("Press ENTER to open the console", 30)
    mark = len(t.text)
    t.send("\r")
    t.wait(banner, 30)
    t.wait_prompt()
    return t.text[mark:]


def _stop(t: Term) -> None:
    """Close the console (the server keeps serving), then Ctrl+C: exit 0, no process left."""
    t.send("exit()\r")
    t.wait("Press ENTER to open the console again")
    processes = t.processes()
    t.send("\x03")
    assert t.exit_code() == 0
    assert_gone(processes)
    assert t.stty_unchanged()


def test_django_console_imports_models_and_the_orm_works(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    """A Django project with two apps and SQLite: the models are there as ``manage.py shell``
    imports them (the earlier app wins ``Item``), the sync ORM works at the prompt and a live
    worker serves the row it created, and the async ORM works in a statement that awaits."""
    _copy_project("django_shop", tmp_path)
    _project_command(tmp_path, "manage.py", "migrate", "-v", "0")
    t = term("--dev", "-w", "2", target="shop.asgi:application")
    banner = _open_console(t, "imported as manage.py shell does")
    for line in (
        "from catalog.models import Item, Product",
        "from django.contrib.auth.models import Group, Permission, User",
        "from django.contrib.contenttypes.models import ContentType",
        "from orders.models import Order",
        "orders.models.Item is not imported: Item is catalog.models.Item",
    ):
        assert line in banner, banner
    t.run("Item", "<class 'catalog.models.Item'>")
    t.run("User.objects.count() == 0", "True")  # sync ORM: no SynchronousOnlyOperation
    t.run('Product.objects.create(name="tea", price="3.50")', "<Product: tea>")
    t.run('client.get("/products/").json()', "{'products': [{'name': 'tea', 'price': '3.50'}]}")
    t.run('await Product.objects.acreate(name="cake", price="2.00")', "<Product: cake>")
    t.run("await Product.objects.acount() == 2", "True")
    t.run("Product.objects.count() == 2", "True")
    # the sync API in a statement that awaits: Django refuses it there, the console says why
    t.run("await Product.objects.acount() == Product.objects.count()", "of its own (no await)")
    t.run('[p["name"] for p in client.get("/products/").json()["products"]]', "['tea', 'cake']")
    t.run('(await do("/products/")).response.json()["products"][1]', "'price': '2.00'")
    _stop(t)


def test_flask_console_has_an_app_context_and_the_shell_context(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    """Flask-SQLAlchemy as in ``flask shell``: the shell context processor's names, one
    application context whose ``db.session`` and ``g`` carry from one statement to the next
    (plain or awaiting), a row the console commits served by a live worker, the context's teardown
    run once when the console ends."""
    _copy_project("flask_notes", tmp_path)
    _project_command(tmp_path, "-m", "flask", "--app", "app", "init-db")
    t = term("--dev", "-w", "2", target="app:app")
    # Flask-SQLAlchemy's processor (db and the models) and the app's own
    banner = _open_console(t, "From app.make_shell_context() (2 shell context processors)")
    assert re.search(r"\n  db\s+SQLAlchemy", banner), banner
    assert re.search(r"\n  Note\s+class app\.Note", banner), banner
    assert "Each statement runs in the console's application context" in banner
    t.run("from flask import current_app", "")
    t.run("current_app.name, current_app._get_current_object() is app", "('app', True)")
    t.run('db.session.add(Note(text="from the console"))', "")
    t.run("len(db.session.new)", "1")  # the same session in the next statement
    t.run("db.session.commit()", "")
    t.run('client.get("/notes").json()', "{'notes': ['from the console']}")
    t.run('g.mark = "console"', "")
    t.run("import asyncio; await asyncio.sleep(0); g.mark, Note.query.count()", "('console', 1)")
    t.run('(await do("/notes")).response.json()["notes"]', "['from the console']")
    t.run('(tmp := __import__("pathlib").Path("teardowns.txt")).exists()', "False")
    _stop(t)
    # the console's application context ended once, with the server (its g had the mark)
    assert (tmp_path / "teardowns.txt").read_text() == "console\n"


def test_fastapi_console_state_dependency_overrides_and_openapi(
    term: Callable[..., Term], tmp_path: Path
) -> None:
    """``app.state`` from the lifespan run in the console's process, a dependency override
    honoured by ``do()`` (not by the workers), ``openapi``; names from ``[tool.vivace]`` and from
    an installed package's ``vivace.console`` entry point, a provider that raises reported."""
    _copy_project("fastapi_store", tmp_path)
    _write_providers(tmp_path)
    t = term("--dev", "-w", "2", target="main:app")
    banner = _open_console(t, "method, path, operation id, request and response model")
    assert "From the entry point vivace.console extra = extra_names:names" in banner, banner
    assert "From [tool.vivace] console 'store_console:names' (pyproject.toml):" in banner
    assert re.search(r"\n  stock\s+dict \{'tea': Item\(name='tea', price=3\.5\)\}", banner)
    assert (
        "console names from [tool.vivace] console 'store_console:broken' (pyproject.toml) "
        "failed: RuntimeError: no stock database here" in banner
    ), banner
    mark = len(t.text)
    t.run("openapi", "3 operations (OpenAPI")
    table = t.text[mark:]
    for row in (
        r"GET\s+/items\s+list_items\s+200 list\[Item\]",
        r"POST\s+/items\s+create_item\s+NewItem\s+201 Item",
        r"GET\s+/clock\s+read_clock\s+200 dict\[str, string\]",
    ):
        assert re.search(row, table), table
    t.run("app.state.items", "{'tea': Item(name='tea', price=3.5)}")
    t.run("from main import get_clock", "")
    t.run('app.dependency_overrides[get_clock] = lambda: "frozen clock"', "")
    t.run('(await do("/clock")).response.json()["clock"]', "'frozen clock'")
    t.run('client.get("/clock").json()["clock"]', "'real clock'")  # the workers keep theirs
    t.run("app.dependency_overrides.clear()", "")
    t.run('(await do("/clock")).response.json()["clock"]', "'real clock'")
    t.run('(await do("/items", method="POST", json={"name": "cake"})).response.json()', "'cake'")
    t.run("sorted(app.state.items), stock is app.state.items", "(['cake', 'tea'], True)")
    t.run('openapi["create_item"].request', "'NewItem'")
    t.run("extra, answer", "('from a package', 42)")  # the project's answer replaces the package's
    _stop(t)


def _write_providers(project: Path) -> None:
    """``[tool.vivace] console`` in the project's pyproject.toml, and an installed distribution
    (``extra-names``: a ``.dist-info`` with its entry point, on the project's path) providing
    names through the ``vivace.console`` entry point group."""
    (project / "pyproject.toml").write_text(
        '[project]\nname = "store"\nversion = "0"\n\n'
        '[tool.vivace]\nconsole = ["store_console:names", "store_console:broken"]\n'
    )
    (project / "store_console.py").write_text(
        "def names(app):\n"
        '    return {"stock": app.state.items, "answer": 42}\n\n\n'
        "def broken():\n"
        '    raise RuntimeError("no stock\\n database here")\n'
    )
    info = project / "extra_names-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-names\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vivace.console]\nextra = extra_names:names\n")
    (project / "extra_names.py").write_text(
        'def names():\n    return {"extra": "from a package", "answer": 41}\n'
    )


QUART_APP = """\
from quart import Quart, g, jsonify

app = Quart(__name__)
app.config["GREETING"] = "bonjour"


@app.shell_context_processor
def shell_names():
    return {"greeting": app.config["GREETING"]}


@app.teardown_appcontext
async def record(exc):
    if g.get("mark"):
        with open("teardowns.txt", "a") as out:
            out.write(g.mark + "\\n")


@app.get("/")
async def index():
    return jsonify(hello="quart")
"""


@pytest.mark.parametrize("mode", [["-w", "2"], ["--single-process"]], ids=["workers", "single"])
def test_quart_console_runs_statements_in_its_async_app_context(
    tmp_path: Path, mode: list[str]
) -> None:
    """Quart's application context is async: pushed in each statement's task, a plain statement
    runs in a copy of its context; ``g`` carries and the teardown runs once, at the end."""
    (tmp_path / "app.py").write_text(QUART_APP)
    out = _scripted(
        tmp_path,
        "app:app",
        "from quart import current_app",
        "greeting, current_app.name",
        'g.mark = "console"',
        "import asyncio; await asyncio.sleep(0); g.mark",
        "g.mark",
        '(await client.get("/")).json()',  # on the serving loop, with --single-process
        cwd=tmp_path,
        args=mode,
    )
    assert "('bonjour', 'app')\n'console'\n'console'\n{'hello': 'quart'}\n" in out, out
    assert (tmp_path / "teardowns.txt").read_text() == "console\n"


def test_flask_app_context_in_the_serving_process(tmp_path: Path) -> None:
    """``--single-process``: statements run on the server's loop, in the same one application
    context (``db.session`` carries), ended once when the server stops."""
    _copy_project("flask_notes", tmp_path)
    _project_command(tmp_path, "-m", "flask", "--app", "app", "init-db")
    out = _scripted(
        tmp_path,
        "app:app",
        'db.session.add(Note(text="single"))',
        "len(db.session.new)",
        "db.session.commit()",
        '(await client.get("/notes")).json()',
        'g.mark = "single"',
        cwd=tmp_path,
        args=["--single-process"],
    )
    assert "1\n{'notes': ['single']}\n" in out, out
    assert (tmp_path / "teardowns.txt").read_text() == "single\n"


QUEUE_APP = """\
import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app):
    app.state.jobs = asyncio.Queue()
    app.state.done = []

    async def work():
        while True:
            job = await app.state.jobs.get()
            app.state.done.append(job)
            app.state.jobs.task_done()

    task = asyncio.create_task(work())
    yield
    task.cancel()
    print("lifespan shut down", flush=True)


app = FastAPI(lifespan=lifespan)


@app.get("/done")
async def done():
    return {"done": app.state.done}
"""


def test_what_the_lifespan_made_is_usable_from_statements_that_await(tmp_path: Path) -> None:
    """The lifespan's objects are bound to the loop that made them (a queue and its consumer
    task here, a connection pool in a real app): the console's statements that await run on that
    same loop, so ``await app.state.jobs.put(...)`` reaches the consumer (on another loop the
    job was never picked up, silently)."""
    (tmp_path / "main.py").write_text(QUEUE_APP)
    out = _scripted(
        tmp_path,
        "main:app",
        "import asyncio",
        'await app.state.jobs.put("from the console")',
        "await asyncio.wait_for(app.state.jobs.join(), 10)",
        '(await do("/done")).response.json()',
        cwd=tmp_path,
    )
    assert "{'done': ['from the console']}\n" in out, out
    assert out.count("lifespan shut down") == 3, out  # two workers and the console's process
