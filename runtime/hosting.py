"""The hosting interface: what vivace's processes need from the thing they serve.

vivace serves two kinds of target behind one interface:

* its own :class:`runtime.app.App` (``interface == "vivace"``): the server builds a
  ``runtime.request.Request`` per request and awaits ``app.handle(request)``; this is the fast
  native path;
* any other Python web app, wrapped by :class:`runtime.foreign.ForeignApp`
  (``interface`` ``"asgi3"``, ``"asgi2"`` or ``"wsgi"``): the server speaks ASGI 3 to
  :attr:`ASGIHosted.asgi` (ASGI 2 and WSGI apps are adapted to ASGI 3 once, at load time).

The worker (``runtime.supervisor.worker``), the server (``runtime.server``), the main process
(``runtime.supervisor.main``), the launcher and the console take a :class:`Hosted` and nothing
more specific, so that a rename in the app model breaks mypy, not workers.

This module is a leaf: it imports only the standard library and ``runtime.config``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from runtime.config import Config

__all__ = [
    "DJANGO_SETUP_ENV",
    "INTERFACES",
    "ASGIApp",
    "ASGIHosted",
    "Hosted",
    "Interface",
    "MainStage",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "ServeStage",
    "on_forked_worker",
    "run_fork_hooks",
]

#: set by the main process when loading a Django app set Django up (``django.setup()``), to its
#: settings module: a custom process, started from the fork server or spawned where nothing ran
#: it, sets Django up before its function runs (``runtime.supervisor.worker``)
DJANGO_SETUP_ENV = "VIVACE_DJANGO_SETUP"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: How a target is served; ``--interface`` also takes ``auto`` (detect it).
Interface = Literal["vivace", "asgi3", "asgi2", "wsgi"]
INTERFACES: tuple[str, ...] = ("auto", "vivace", "asgi3", "asgi2", "wsgi")


class ServeStage(str, Enum):
    """A worker's life around serving (lifecycle.md section 3.2)."""

    BEFORE_START = "before_server_start"
    AFTER_START = "after_server_start"
    BEFORE_STOP = "before_server_stop"
    AFTER_STOP = "after_server_stop"


class MainStage(str, Enum):
    """The main process's life (lifecycle.md section 3.1)."""

    START = "main_process_start"
    READY = "main_process_ready"
    STOP = "main_process_stop"


class Hosted(Protocol):
    """What a vivace process serves: the app's identity, settings and stage hooks.

    Worker side: ``finalize()`` once before serving, then ``await serve_stage(stage)`` for each
    :class:`ServeStage` in order (a start stage that raises fails the worker's start), and
    ``await cancel_tasks()`` after the drain. Main-process side: ``main_stage(stage, loop)``
    with the loop not running, ``shared_items()`` before each fork and ``install_shared(values)``
    in the child. ``attach_process(manager=..., multiplexer=...)`` hands over the process handles.
    """

    @property
    def name(self) -> str: ...

    @property
    def interface(self) -> Interface: ...

    @property
    def framework(self) -> str:
        """The framework's name for banners and logs: ``vivace``, ``FastAPI``, ``Django`` ..."""
        ...

    @property
    def target(self) -> object:
        """The user's own object: the ``App``, the ``FastAPI`` instance, the ``Flask`` app ..."""
        ...

    @property
    def config(self) -> Config: ...

    @property
    def forkable(self) -> bool:
        """Whether a worker may be a fork of the main process (which loaded the app) that imports
        the user's modules again. False for a framework whose library modules keep registries of
        the user's modules (Django's app registry): its workers start from the fork server."""
        ...

    def finalize(self) -> None: ...

    async def serve_stage(self, stage: ServeStage) -> None: ...

    async def cancel_tasks(self) -> None: ...

    def main_stage(self, stage: MainStage, loop: asyncio.AbstractEventLoop) -> None: ...

    def reload_stage(
        self, event: str, loop: asyncio.AbstractEventLoop, changed: set[str] | None
    ) -> None:
        """Run the reloader process's listeners of ``event`` (reload.md section 4)."""
        ...

    def shared_items(self) -> dict[str, Any]: ...

    def install_shared(self, values: Mapping[str, Any]) -> None: ...

    def attach_process(self, *, manager: object = None, multiplexer: object = None) -> None: ...


def docs_path(host: Hosted) -> str | None:
    """Where a FastAPI app serves its interactive API docs (its ``docs_url``, ``/docs`` unless
    changed or turned off), for the start-up banner's line after the address, as ``fastapi dev``
    prints it; None for any other app."""
    if host.framework != "FastAPI":
        return None
    path = getattr(host.target, "docs_url", None)
    return path if isinstance(path, str) and path.startswith("/") else None


_fork_hooks: list[Callable[[], object]] = []


def on_forked_worker(hook: Callable[[], object]) -> None:
    """Have ``hook`` called in a worker forked from the main process, before the app is loaded
    again (the app model forgets the main process's apps this way, without the supervisor
    knowing it)."""
    _fork_hooks.append(hook)


def run_fork_hooks() -> None:
    """Called by the supervisor in a child forked from the main process."""
    for hook in _fork_hooks:
        hook()


class ASGIHosted(Hosted, Protocol):
    """A hosted app the server talks to in ASGI 3 (every interface but ``vivace``)."""

    @property
    def asgi(self) -> ASGIApp:
        """The ASGI 3 callable requests and websockets are sent to."""
        ...

    @property
    def lifespan_state(self) -> dict[str, Any] | None:
        """The lifespan ``state``; each request scope gets a shallow copy (None: no lifespan)."""
        ...

    @property
    def root_path(self) -> str: ...
