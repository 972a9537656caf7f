"""Typed values exchanged between the main process and its children.

Every message, and the ``WorkerSpec`` a child starts from, is an immutable ``NamedTuple``;
receivers handle messages with an exhaustive ``match`` on their classes, so two messages with equal
fields never stand in for each other. Nothing is ever encoded in strings (a path containing ``:``
or ``,`` cannot change a message's meaning). ``NamedTuple`` rather than frozen dataclasses: the
same typing and matching, a compact pickle, and a fifth of the import cost, which every start pays
(``bench/startup.py``).

Child -> main: :data:`ChildMessage`. Main -> child: :data:`ParentMessage`.

A :data:`Request` from ``app.m`` carries a ``call_id``; the manager answers it with
:class:`Handled`, on the worker's reply pipe, once it has applied the request and published the
state table, so the caller returns only when every process reads the result. ``call_id`` 0 asks
for no answer (a reloader's ``RestartRequest``).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from enum import Enum
from multiprocessing.connection import Connection
from typing import Any, Literal, NamedTuple

from runtime.appref import AppRef
from runtime.settings import Settings
from runtime.supervisor.published import Segment

ProcessKind = Literal["server", "custom", "reloader"]


class ProcessState(int, Enum):
    """workers.md section 3, ordered."""

    NONE = 0
    IDLE = 1
    RESTARTING = 2
    STARTING = 3
    STARTED = 4
    ACKED = 5
    JOINED = 6
    TERMINATED = 7
    FAILED = 8
    COMPLETED = 9

    @property
    def is_final(self) -> bool:
        return self in (ProcessState.FAILED, ProcessState.COMPLETED)


RESTRICTED_KEYS = frozenset(
    {"health", "pid", "requests", "restart_at", "server", "start_at", "starts", "state"}
)


class WorkerSpec(NamedTuple):
    """Everything a child needs, handed over explicitly (never through the environment)."""

    name: str
    kind: ProcessKind
    main_pid: int
    control: Connection
    output: socket.socket
    replies: Connection | None = None  # server workers: the manager's Handled answers, read end
    app_ref: AppRef | None = None
    settings: Settings = Settings()  # resolved once by the launcher (runtime.settings)
    reloaded_files: tuple[str, ...] = ()  # joined only into app.config.RELOADED_FILES
    sockets: tuple[socket.socket, ...] = ()
    shared_ctx: Mapping[str, Any] = {}
    func: bytes | None = None  # pickled callable of a custom process
    kwargs: Mapping[str, Any] = {}
    restarted: bool = False
    table: Segment | None = None  # the published state table (server workers)
    forked_from_main: bool = False  # forget the main's user modules before loading the app
    user_modules: tuple[str, ...] = ()  # those modules, listed by the main process before the fork
    main_ref: tuple[str, str] | None = None  # ("path", file) or ("name", module) of a user __main__


# --- child -> main -----------------------------------------------------------------------------


class Ack(NamedTuple):
    """The server worker finished ``before_server_start``."""


class Serving(NamedTuple):
    serving: bool


class Heartbeat(NamedTuple):
    """The worker's event loop is alive."""


class EarlyExit(NamedTuple):
    """The worker failed during start-up; ``reason`` is a one-line summary."""

    reason: str


class StateUpdate(NamedTuple):
    """Custom keys written through ``app.m.state``."""

    values: Mapping[str, Any] = {}
    deleted: tuple[str, ...] = ()
    call_id: int = 0


class RestartRequest(NamedTuple):
    """Restart processes. No names and ``all_workers``: the global restart an auto-reload does.

    ``changed`` are the paths that triggered a reload; restarted workers see them comma-joined in
    ``app.config.RELOADED_FILES``.
    """

    names: tuple[str, ...] = ()
    all_workers: bool = True
    changed: tuple[str, ...] = ()
    zero_downtime: bool = False
    call_id: int = 0


class ManageRequest(NamedTuple):
    ident: str
    func: bytes
    kwargs: Mapping[str, Any]
    transient: bool = False
    restartable: bool | None = None
    tracked: bool = False
    auto_start: bool = True
    workers: int = 1
    call_id: int = 0


class ScaleRequest(NamedTuple):
    n: int
    call_id: int = 0


class TerminateRequest(NamedTuple):
    """Stop the whole server (``app.m.terminate()``)."""

    call_id: int = 0


class CallResult(NamedTuple):
    call_id: int
    ok: bool
    value: Any = None  # the result, or its repr when it cannot be pickled
    error: str = ""


Request = StateUpdate | RestartRequest | ManageRequest | ScaleRequest | TerminateRequest
REQUESTS = (StateUpdate, RestartRequest, ManageRequest, ScaleRequest, TerminateRequest)

ChildMessage = (
    Ack
    | Serving
    | Heartbeat
    | EarlyExit
    | StateUpdate
    | RestartRequest
    | ManageRequest
    | ScaleRequest
    | TerminateRequest
    | CallResult
)

# --- main -> child -----------------------------------------------------------------------------


class Handled(NamedTuple):
    """The manager applied the :data:`Request` ``call_id`` and published the state table."""

    call_id: int


class CallRequest(NamedTuple):
    """Run ``expr`` (eval) or pickled ``fn(*args)`` on the worker's loop, awaiting awaitables."""

    call_id: int
    expr: str | None = None
    fn: bytes | None = None
    args: tuple[Any, ...] = ()


ParentMessage = CallRequest  # on the control pipe; Handled comes on the reply pipe
