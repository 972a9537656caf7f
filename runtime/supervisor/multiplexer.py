"""``app.m``: a server worker's view of the state table and its requests to the manager.

The multiplexer never acts itself: it sends typed requests over the worker's pipe and the manager
(the only writer of the state table) applies them. Each request is a round trip: it returns once
the manager has applied it and published the new table (``Handled``), so when
``app.m.state["k"] = v``, ``update``, ``del``, ``restart``, ``scale``, ``manage`` or
``terminate`` returns, every process's next read shows the result. Reads come from the published
table (``published.py``): an unchanged table costs one integer read.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from runtime.supervisor.messages import (
    RESTRICTED_KEYS,
    ManageRequest,
    Request,
    RestartRequest,
    ScaleRequest,
    StateUpdate,
    TerminateRequest,
)

Send = Callable[[Request], None]  # returns once the manager has handled the request
Read = Callable[[], dict[str, dict[str, Any]]]  # the latest table, shared: never changed in place

_EMPTY: dict[str, Any] = {}


class WorkerState(MutableMapping[str, Any]):
    """``app.m.state``: the current worker's own entry. Restricted keys cannot be written."""

    def __init__(self, read: Read, name: str, send: Send) -> None:
        self._read = read
        self._name = name
        self._send = send

    def _entry(self) -> dict[str, Any]:
        return self._read().get(self._name, _EMPTY)

    def __getitem__(self, key: str) -> Any:
        return self._entry()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._entry()))

    def __len__(self) -> int:
        return len(self._entry())

    def __repr__(self) -> str:
        return repr(self._entry())

    @staticmethod
    def _check(key: str) -> None:
        if key in RESTRICTED_KEYS:
            raise LookupError(
                f"Cannot set restricted key {key!r} on the worker state: "
                f"{', '.join(sorted(RESTRICTED_KEYS))} are managed by vivace; use another key"
            )

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key)
        self._send(StateUpdate(values={key: value}))

    def __delitem__(self, key: str) -> None:
        self._check(key)
        if key not in self._entry():
            raise KeyError(key)
        self._send(StateUpdate(deleted=(key,)))

    def update(self, *args: Any, **kwargs: Any) -> None:  # one message for the whole update
        values = dict(*args, **kwargs)
        for key in values:
            self._check(key)
        self._send(StateUpdate(values=values))

    def pop(self, *args: Any) -> Any:
        raise NotImplementedError("app.m.state does not support pop(); use del app.m.state[key]")


class Multiplexer:
    """Lives in each server worker as ``app.m``.

    ``send`` delivers a request and returns once the manager has handled it (raising
    ``TimeoutError`` when it does not answer in time); ``read`` returns the latest table.
    """

    def __init__(self, name: str, send: Send, read: Read) -> None:
        self._name = name
        self._send = send
        self._read = read
        self._state = WorkerState(read, name, send)

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """A copy of the whole state table."""
        return {name: dict(entry) for name, entry in self._read().items()}

    @property
    def state(self) -> WorkerState:
        return self._state

    def restart(
        self,
        name: str = "",
        all_workers: bool = False,
        zero_downtime: bool = False,
    ) -> None:
        """Restart this worker, the named (comma-separated) processes, or every server worker."""
        if name and all_workers:
            raise ValueError("Give either a process name or all_workers=True to restart, not both")
        if all_workers:
            request = RestartRequest(all_workers=True, zero_downtime=zero_downtime)
        else:
            names = (
                tuple(n.strip() for n in name.split(",") if n.strip()) if name else (self._name,)
            )
            request = RestartRequest(names=names, all_workers=False, zero_downtime=zero_downtime)
        self._send(request)

    reload = restart

    def scale(self, num_workers: int) -> None:
        self._send(ScaleRequest(num_workers))

    def terminate(self) -> None:
        self._send(TerminateRequest())

    def manage(
        self,
        ident: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any] | None = None,
        transient: bool = False,
        restartable: bool | None = None,
        tracked: bool = False,
        auto_start: bool = True,
        workers: int = 1,
    ) -> None:
        """Ask the manager to start a custom process; errors are logged by the manager."""
        try:
            payload = pickle.dumps(func)
        except Exception as exc:
            raise TypeError(
                f"manage({ident!r}): func must be picklable (a module-level function): {exc}"
            ) from exc
        self._send(
            ManageRequest(
                ident=ident,
                func=payload,
                kwargs=dict(kwargs or {}),
                transient=transient,
                restartable=restartable,
                tracked=tracked,
                auto_start=auto_start,
                workers=workers,
            )
        )


_current: Multiplexer | None = None


def set_current(m: Multiplexer | None) -> None:
    """The worker start-up installs its multiplexer (read with :func:`current`)."""
    global _current
    _current = m


def current() -> Multiplexer:
    """This worker's multiplexer, for any app (``app.m`` of a vivace ``App``).

    ``runtime.multiplexer()`` returns it: code of a FastAPI, Django or Flask app served by vivace
    can read the worker table and ask for restarts and scaling the same way.
    """
    if _current is None:
        raise RuntimeError(
            "vivace's multiplexer exists only in a server worker of a multi-process vivace "
            "server (not in the main process, in --single-process mode or under another server)"
        )
    return _current
