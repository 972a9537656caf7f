"""Who the manager's processes are: server workers, custom process groups, the reloader.

Plain bookkeeping (names, kinds, flags) with the rules of workers.md sections 1, 5 and 7; no
processes, no state table. The manager asks it which names to start, restart or stop.

Rules:

1. Server workers are ``Vivace-Server-<n>-0`` with a counter that is never reused; a custom group
   ``ident`` of ``workers=k`` is ``Vivace-<ident>-0`` .. ``-<k-1>``; the reloader
   ``Vivace-Reloader-0`` exists once :meth:`Registry.add_reloader` was called.
2. :meth:`Registry.register` validates ``manage()`` and raises with a message that says what to fix;
   a name that is taken (``taken``) is refused.
3. Start-up order: server workers, transient custom processes, the reloader, durable custom
   processes; ``auto_start=False`` groups wait to be restarted by name.
4. A global restart is every server worker and every transient custom process. A restart by name
   takes server workers always, custom processes only when restartable and (durable ones) in a final
   state or never started.
5. An untracked group (``tracked=False``) is forgotten once none of its processes is alive.
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Callable, Container, Iterable
from typing import Any

from runtime.supervisor.messages import ProcessKind, ProcessState

__all__ = ["RELOADER_NAME", "Registry", "WorkerRecord"]

RELOADER_NAME = "Vivace-Reloader-0"  # == runtime.supervisor.reloader.RELOADER_NAME (not imported:
# the reloader's module pulls in the watchers, which a server without --reload never needs)


class WorkerRecord:
    """A process group registered with ``manage()`` (or the server workers). (A plain slotted
    class: a dataclass costs ~0.2 ms to build at every start.)"""

    __slots__ = (
        "auto_start",
        "func",
        "ident",
        "kwargs",
        "names",
        "payload",
        "restartable",
        "tracked",
        "transient",
        "workers",
    )

    def __init__(
        self,
        ident: str,
        func: Callable[..., Any] | None,
        kwargs: dict[str, Any],
        transient: bool,
        restartable: bool,
        tracked: bool,
        auto_start: bool,
        workers: int,
        payload: bytes | None = None,
        names: list[str] | None = None,
    ) -> None:
        self.ident = ident
        self.func = func
        self.kwargs = kwargs
        self.transient = transient
        self.restartable = restartable
        self.tracked = tracked
        self.auto_start = auto_start
        self.workers = workers
        self.payload = payload
        self.names: list[str] = [] if names is None else names

    def __repr__(self) -> str:
        return f"WorkerRecord(ident={self.ident!r}, workers={self.workers}, names={self.names!r})"


class Registry:
    """The names the manager supervises and how each was registered."""

    def __init__(self) -> None:
        self.server_names: list[str] = []
        self.custom_names: dict[str, WorkerRecord] = {}
        self.records: dict[str, WorkerRecord] = {}
        self.reload_dirs: list[str] | None = None  # set by add_reloader(): auto-reload is on
        self._server_counter = itertools.count()

    @property
    def reloads(self) -> bool:
        """Auto-reload is on (the reloader is registered)."""
        return self.reload_dirs is not None

    def add_server(self) -> str:
        name = f"Vivace-Server-{next(self._server_counter)}-0"
        self.server_names.append(name)
        return name

    def add_reloader(self, reload_dirs: Iterable[str]) -> bool:
        """False when the reloader was registered already."""
        if self.reload_dirs is not None:
            return False
        self.reload_dirs = [str(d) for d in reload_dirs]
        return True

    def register(
        self,
        ident: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any] | None,
        *,
        transient: bool,
        restartable: bool | None,
        tracked: bool,
        auto_start: bool,
        workers: int,
        taken: Container[str],
    ) -> WorkerRecord:
        """A new custom group (rule 2)."""
        if not isinstance(ident, str) or not ident:
            raise ValueError(
                "manage(): ident must be a non-empty string, e.g. manage('jobs', func)"
            )
        if ident in self.records:
            raise ValueError(f"Worker {ident} already exists")
        if restartable is None:
            restartable = transient
        if transient and not restartable:
            raise ValueError(
                f"Worker {ident}: transient=True with restartable=False is invalid; a transient "
                "process is restarted on every global restart (drop restartable=False)"
            )
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"Worker {ident}: workers must be an integer >= 1, got {workers!r}")
        if not callable(func):
            raise TypeError(f"Worker {ident}: func must be callable, got {type(func).__name__}")
        try:
            payload = pickle.dumps(func)
        except Exception as exc:
            raise TypeError(
                f"Worker {ident}: func must be picklable (a module-level function): {exc}"
            ) from exc
        names = [f"Vivace-{ident}-{i}" for i in range(workers)]
        for name in names:
            if name in taken:
                raise ValueError(f"Worker {ident}: process name {name} is already taken")
        record = WorkerRecord(
            ident,
            func,
            dict(kwargs or {}),
            transient,
            restartable,
            tracked,
            auto_start,
            workers,
            payload,
            names,
        )
        self.records[ident] = record
        for name in names:
            self.custom_names[name] = record
        return record

    def kind(self, name: str) -> ProcessKind:
        if name == RELOADER_NAME and self.reload_dirs is not None:
            return "reloader"
        return "custom" if name in self.custom_names else "server"

    def start_order(self) -> list[str]:
        """Every name to start at start-up, in order (rule 3)."""
        customs = self.custom_names
        names = list(self.server_names)
        names += [n for n, r in customs.items() if r.transient and r.auto_start]
        if self.reload_dirs is not None:
            names.append(RELOADER_NAME)
        names += [n for n, r in customs.items() if not r.transient and r.auto_start]
        return names

    def global_restart(self) -> list[str]:
        """The names of a global restart (rule 4)."""
        names = list(self.server_names)
        names += [n for n, r in self.custom_names.items() if r.transient and r.restartable]
        return names

    def select(
        self, names: Iterable[str], state: Callable[[str], ProcessState]
    ) -> tuple[list[str], list[tuple[str, ProcessState]]]:
        """The names a restart by name takes, and the durable ones refused with their state."""
        chosen: list[str] = []
        refused: list[tuple[str, ProcessState]] = []
        for name in names:
            if name in self.server_names:
                chosen.append(name)
                continue
            record = self.custom_names.get(name)
            if record is None or not record.restartable:
                continue
            current = state(name)
            if record.transient or current.is_final or current is ProcessState.NONE:
                chosen.append(name)
            else:
                refused.append((name, current))
        return chosen, refused

    def shrink(self, count: int) -> list[str]:
        """Remove ``count`` server workers chosen at random; their names."""
        gone = random.sample(self.server_names, count)
        for name in gone:
            self.server_names.remove(name)
        return gone

    def forget(self, name: str, alive: Callable[[str], bool]) -> WorkerRecord | None:
        """The untracked group of ``name`` once none of its processes is ``alive`` (rule 5)."""
        record = self.custom_names.get(name)
        if record is None or record.tracked or any(alive(n) for n in record.names):
            return None
        for n in record.names:
            self.custom_names.pop(n, None)
        self.records.pop(record.ident, None)
        return record
