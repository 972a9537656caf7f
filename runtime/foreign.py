"""Any Python web app under vivace: ASGI 3, ASGI 2 and WSGI targets behind the hosting interface.

:func:`detect_interface` tells what a loaded object is; :class:`ForeignApp` wraps it as an
:class:`~runtime.hosting.ASGIHosted` for the worker, the server and the console:

* ASGI 3 (``async def app(scope, receive, send)``, or an object whose ``__call__`` is a coroutine
  function: FastAPI, Starlette, Litestar, Quart, Django's ``ASGIHandler``) is served as it is;
* ASGI 2 (a class, or a callable, taking ``scope`` and returning ``async (receive, send)``) is
  wrapped once into an ASGI 3 callable;
* WSGI (``def app(environ, start_response)``: Flask, Django's ``WSGIHandler``) runs through
  a2wsgi's ``WSGIMiddleware`` on a bounded thread pool.

:class:`Lifespan` runs the ASGI lifespan protocol: in each worker around serving (start-up before
the worker accepts connections, shut-down after the drain) and in the console's process for
``do()``. Like uvicorn's ``--lifespan auto``: an app that raises before it asks for the start-up
event does not support lifespan and is served without it; an app that answers
``lifespan.startup.failed`` (or raises after it received the start-up event) fails the start.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from runtime.config import Config
from runtime.exceptions import LoadError
from runtime.hosting import (
    DJANGO_SETUP_ENV,
    ASGIApp,
    Interface,
    MainStage,
    Message,
    Receive,
    Scope,
    Send,
    ServeStage,
)
from runtime.shared import SharedContext

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ForeignApp",
    "Lifespan",
    "LifespanFailed",
    "detect_interface",
    "framework_name",
    "template_dirs",
]

logger = logging.getLogger("vivace.asgi")

#: threads for a WSGI app (a2wsgi's pool); ``VIVACE_WSGI_THREADS`` overrides it
WSGI_THREADS = 10
#: seconds a lifespan start-up cut short by a stop still gets to answer (then to shut down)
ABANDON_WAIT = 5.0

EXPECTED = (
    "  expected a vivace App, an ASGI application or a WSGI application, for example:\n"
    "    vivace:  app = App('name')\n"
    "    ASGI 3:  async def app(scope, receive, send): ...  (FastAPI(), Starlette(), Quart())\n"
    "    ASGI 2:  class App: def __init__(self, scope) + async def __call__(self, receive, send)\n"
    "    WSGI:    def app(environ, start_response): ...  (Flask(__name__), Django WSGI)\n"
    "    factory: def create_app(): return app  (TARGET module:create_app())"
)


class LifespanFailed(Exception):
    """The app answered ``lifespan.startup.failed`` (or raised during its start-up)."""


def _positional(fn: Any) -> int | None:
    """How many positional arguments ``fn`` takes (``None``: unknown or ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _is_coroutine_function(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__func__", None)
    )


def detect_interface(value: object) -> Interface | None:
    """``asgi3``, ``asgi2`` or ``wsgi`` for an app object; ``None`` when it is none of them.

    A vivace ``App`` is recognised by the loader before this is asked.
    """
    if inspect.isclass(value):
        # ASGI 2: instances are built with the scope and awaited with (receive, send)
        call = getattr(value, "__call__", None)  # noqa: B004 - the instances' __call__
        if call is not None and _is_coroutine_function(call) and _positional(call) == 3:
            return "asgi2"  # self, receive, send
        return None
    if inspect.isfunction(value) or inspect.ismethod(value):
        if _is_coroutine_function(value):
            return "asgi3" if _positional(value) in (3, None) else None
        if _positional(value) == 2:
            return "wsgi"
        return None
    call = getattr(type(value), "__call__", None)  # noqa: B004
    if call is None:
        return None
    if _is_coroutine_function(call):
        return "asgi3" if _positional(call) in (4, None) else None  # self + 3
    count = _positional(call)
    if count == 3:
        return "wsgi"  # self, environ, start_response
    if count == 2:
        return "asgi2"  # self, scope -> an awaitable callable
    return None


def framework_name(value: object) -> str:
    """A display name for the app's framework (``FastAPI``, ``Django`` ...), ``ASGI``/``WSGI``."""
    module = (type(value).__module__ or "").split(".")[0]
    names = {
        "fastapi": "FastAPI",
        "starlette": "Starlette",
        "litestar": "Litestar",
        "quart": "Quart",
        "flask": "Flask",
        "django": "Django",
    }
    return names.get(module, "")


def _asgi2_to_3(app: Any) -> ASGIApp:
    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


def _wsgi_to_asgi(app: Any) -> ASGIApp:
    from a2wsgi import WSGIMiddleware

    threads = int(os.environ.get("VIVACE_WSGI_THREADS", WSGI_THREADS))
    return cast(ASGIApp, WSGIMiddleware(app, workers=threads))


class Lifespan:
    """One run of the ASGI lifespan protocol for ``app`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label
        self.state: dict[str, Any] = {}
        self.supported = True
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._asked = False  # the app called receive(): it speaks lifespan

    async def _receive(self) -> Message:
        self._asked = True
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        await self._outbox.put(message)

    async def _main(self) -> None:
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._asked:
                self.supported = False
                logger.info("ASGI 'lifespan' protocol appears unsupported by %s.", self.label)
            elif not isinstance(exc, asyncio.CancelledError):
                await self._outbox.put({"type": "vivace.lifespan.error", "exc": exc})
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            await self._outbox.put({"type": "vivace.lifespan.ended"})

    async def _expect(self, event: str) -> None:
        """Send ``lifespan.<event>`` and wait for the app's answer."""
        await self._inbox.put({"type": f"lifespan.{event}"})
        self._check(await self._outbox.get(), event)

    def _check(self, message: Message, event: str) -> None:
        """The app's answer to ``lifespan.<event>``: return, or raise ``LifespanFailed``."""
        kind = message.get("type")
        if kind == f"lifespan.{event}.complete":
            return
        if kind == f"lifespan.{event}.failed":
            text = str(message.get("message") or f"lifespan {event} failed")
            raise LifespanFailed(text)
        if kind == "vivace.lifespan.error":
            exc = message["exc"]
            raise LifespanFailed(f"{type(exc).__name__}: {exc}") from exc
        if kind == "vivace.lifespan.ended":
            if self.supported and self._asked:
                raise LifespanFailed(f"the app returned during lifespan {event} without answering")
            return
        raise LifespanFailed(f"unexpected lifespan message {kind!r} during {event}")

    async def startup(self) -> None:
        """Run the app's start-up; ``LifespanFailed`` when it fails.

        Cancelled while the app starts (the worker is told to stop during its start-up), it
        still gives the app ``ABANDON_WAIT`` seconds to answer and shuts down an app that
        completed its start-up, as uvicorn does, before the cancellation goes on: resources the
        app opened are closed, whenever the stop comes.
        """
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        try:
            answer = await self._outbox.get()
        except asyncio.CancelledError:
            await self._abandon()
            raise
        self._check(answer, "startup")

    async def _abandon(self) -> None:
        task = self._task
        try:
            answer: Message | None = await asyncio.wait_for(self._outbox.get(), ABANDON_WAIT)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            answer = None
        if answer is not None and answer.get("type") == "lifespan.startup.complete":
            await self.shutdown(ABANDON_WAIT)
        elif task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Run the app's shut-down (failures are logged, never raised)."""
        task = self._task
        if task is None or task.done() or not self.supported:
            return
        try:
            await asyncio.wait_for(self._expect("shutdown"), timeout)
        except LifespanFailed as exc:
            logger.error("Lifespan shutdown of %s failed: %s", self.label, exc)
        except asyncio.TimeoutError:
            logger.warning("Lifespan shutdown of %s timed out", self.label)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class ForeignApp:
    """A foreign web app hosted by vivace (implements :class:`~runtime.hosting.ASGIHosted`)."""

    def __init__(
        self,
        target: object,
        interface: Interface,
        *,
        name: str,
        root_path: str = "",
        config: Config | None = None,
    ) -> None:
        if interface == "vivace":
            raise ValueError("ForeignApp wraps ASGI and WSGI apps, not a vivace App")
        self._target = target
        self._interface: Interface = interface
        self._name = name
        self._config = config if config is not None else Config()
        self.root_path = root_path
        self.shared_ctx = SharedContext()
        self.manager: object = None
        self.multiplexer: object = None
        base = framework_name(target)
        self._framework = base or ("WSGI" if interface == "wsgi" else "ASGI")
        self.asgi: ASGIApp
        if interface == "asgi3":
            self.asgi = cast(ASGIApp, target)  # checked by detect_interface
        elif interface == "asgi2":
            self.asgi = _asgi2_to_3(target)
        else:
            self.asgi = _wsgi_to_asgi(target)
        self._lifespan: Lifespan | None = None

    def __repr__(self) -> str:
        return f"<ForeignApp {self._framework} {self._name!r} ({self._interface})>"

    # -- Hosted ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def interface(self) -> Interface:
        return self._interface

    @property
    def framework(self) -> str:
        return self._framework

    @property
    def target(self) -> object:
        return self._target

    @property
    def config(self) -> Config:
        return self._config

    @property
    def forkable(self) -> bool:
        # Django's app registry (django.apps.apps) is populated by django.setup() in the main
        # process; a fork that imports the models again registers them twice and never runs the
        # AppConfig.ready() hooks for them (signal receivers)
        return self._framework != "Django"

    @property
    def lifespan_state(self) -> dict[str, Any] | None:
        lifespan = self._lifespan
        return lifespan.state if lifespan is not None and lifespan.supported else None

    def finalize(self) -> None:
        pass

    async def serve_stage(self, stage: ServeStage) -> None:
        if stage is ServeStage.BEFORE_START:
            if self._framework == "Django":
                _import_django_urlconf()
            if self._interface == "wsgi":
                return  # WSGI has no lifespan
            lifespan = self._lifespan = Lifespan(self.asgi, self._name)
            await lifespan.startup()
        elif stage is ServeStage.AFTER_STOP and self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            timeout = self._config.get("GRACEFUL_SHUTDOWN_TIMEOUT")
            await lifespan.shutdown(float(timeout) if timeout else None)

    async def cancel_tasks(self) -> None:
        pass

    def template_dirs(self) -> list[str]:
        """The template directories of the app's framework (:func:`template_dirs`): the
        reloader watches them."""
        return template_dirs(self._target)

    def main_stage(self, stage: MainStage, loop: asyncio.AbstractEventLoop) -> None:
        # foreign apps have no main-process listeners; START runs before any child is started
        if stage is MainStage.START:
            settings_module = _django_settings_module()
            if settings_module:
                os.environ[DJANGO_SETUP_ENV] = settings_module
            else:  # not one inherited from a vivace that started this one
                os.environ.pop(DJANGO_SETUP_ENV, None)
        elif stage is MainStage.STOP:
            os.environ.pop(DJANGO_SETUP_ENV, None)

    def reload_stage(
        self, event: str, loop: asyncio.AbstractEventLoop, changed: set[str] | None
    ) -> None:
        pass  # foreign apps have no reloader listeners

    def shared_items(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self.shared_ctx).items() if not k.startswith("_")}

    def install_shared(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            setattr(self.shared_ctx, key, value)
        self.shared_ctx.lock()

    def attach_process(self, *, manager: object = None, multiplexer: object = None) -> None:
        if manager is not None:
            self.manager = manager
        if multiplexer is not None:
            self.multiplexer = multiplexer


def _import_django_urlconf() -> None:
    """Import the project's URLconf, and so its views, before the worker says it is ready.

    Django imports them on the first request. A save that breaks a view would then show only
    after the new workers had replaced the good ones (every request a 500); imported here, it
    fails the new worker's start instead, and a reload keeps the old workers serving. (Django's
    own ``runserver`` finds such errors the same way, with its URL checks.)
    """
    settings = importlib.import_module("django.conf").settings  # (Django has no type hints)
    if getattr(settings, "ROOT_URLCONF", None):
        importlib.import_module("django.urls").get_resolver().url_patterns  # noqa: B018 - imports


def _django_apps() -> Any:
    """Django's app registry when Django is set up in this process (never imports Django)."""
    module = sys.modules.get("django.apps")
    apps = getattr(module, "apps", None)
    return apps if getattr(apps, "ready", False) else None


def _django_settings_module() -> str:
    """The settings module of a Django set up in this process, or ``""``: Django is not set up,
    or it was configured in code (``settings.configure()``), which another process cannot
    repeat."""
    if _django_apps() is None:
        return ""
    return os.environ.get("DJANGO_SETTINGS_MODULE", "")


def template_dirs(target: object) -> list[str]:
    """The directories the app's framework loads templates from and keeps in a cache until the
    process restarts: auto-reload watches them as it does ``-R`` directories.

    * Django (set up in this process, whatever wraps its handler): every ``DIRS`` of
      ``settings.TEMPLATES`` and the directories its template loaders search (each installed
      app's ``templates/`` with ``APP_DIRS``), as Django's own autoreloader finds them
      (``django.template.autoreload.get_template_directories``); the Jinja2 backend's too.
    * Flask and Quart: the template folder of the app and of each registered blueprint (static
      files are read on each request: no need).

    Relative directories are taken from the working directory, as Django and Jinja do. A
    framework whose templates cannot be listed (a broken setting) gives none, with a debug line.
    """
    found: list[str] = []
    try:
        found += _flask_template_dirs(target)
        found += _django_template_dirs()
    except Exception as exc:  # the app still reloads on .py changes
        logger.debug("Could not list the app's template directories: %r", exc)
    return list(dict.fromkeys(os.path.abspath(os.fspath(d)) for d in found if d))


def _searchpath(loader: object) -> Iterable[str]:
    """The directories of a Jinja loader: a ``FileSystemLoader``'s ``searchpath``, and those of
    the loaders a ``ChoiceLoader`` combines."""
    paths = getattr(loader, "searchpath", None)
    if isinstance(paths, (list, tuple)):
        yield from (str(p) for p in paths)
    for inner in getattr(loader, "loaders", None) or ():
        yield from _searchpath(inner)


def _flask_template_dirs(target: object) -> list[str]:
    scaffold = sys.modules.get("flask.sansio.scaffold")  # Flask 2.3+ and Quart 0.19+ build on it
    base = getattr(scaffold, "Scaffold", None)
    if base is None or not isinstance(target, base):
        return []
    blueprints: Mapping[str, object] = getattr(target, "blueprints", None) or {}
    dirs: list[str] = []
    for part in (target, *blueprints.values()):  # nested blueprints are registered there too
        dirs += _searchpath(getattr(part, "jinja_loader", None))
    return dirs


def _django_template_dirs() -> list[str]:
    if _django_apps() is None:
        return []
    engines = importlib.import_module("django.template").engines
    django_templates = importlib.import_module("django.template.backends.django").DjangoTemplates
    dirs: list[str] = []
    for backend in engines.all():
        if isinstance(backend, django_templates):
            dirs += backend.engine.dirs
            if backend.engine.app_dirs:
                # every installed app's templates/, also one not created yet (the tutorial makes
                # polls/templates/ while the server runs): watched once it exists
                apps = _django_apps()
                dirs += [os.path.join(c.path, "templates") for c in apps.get_app_configs()]
            for loader in backend.engine.template_loaders:
                get_dirs = getattr(loader, "get_dirs", None)
                if get_dirs is not None:
                    dirs += get_dirs()
        else:  # Jinja2 (its own cache, kept when auto_reload is off: DEBUG = False)
            dirs += backend.template_dirs
    return dirs


def host_foreign(
    value: object,
    interface: Interface | None,
    *,
    name: str,
    root_path: str = "",
    shown: Callable[[], str] | None = None,
) -> ForeignApp:
    """Wrap ``value`` as ``interface`` (detected when ``None``); ``LoadError`` when it is no app."""
    found = detect_interface(value)
    chosen = interface or found
    if chosen is None or chosen == "vivace":
        what = shown() if shown is not None else type(value).__name__
        raise LoadError(f"{name} is not a web application: it is {what}.\n{EXPECTED}")
    return ForeignApp(value, chosen, name=name, root_path=root_path)
