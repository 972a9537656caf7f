"""The state table (workers.md section 2): one typed :class:`Entry` per process name.

Rules:

1. One writer. Only the manager writes, on the main process's loop; children send their custom keys
   as ``StateUpdate`` messages and the manager applies them, so no update is lost. Other threads
   (a console's) read :meth:`StateTable.snapshot`, a copy.
2. An entry's ``state`` moves only through :func:`runtime.supervisor.states.advance`.
3. Subscribers see every change, batched: the writes of one loop iteration make one call with one
   snapshot (the manager tells its listeners).
4. A snapshot is plain data: process name -> ``dict`` with the keys of workers.md (``state`` as the
   state's name, keys that were never set left out) and then the custom keys. A custom key that
   names an unrestricted field (``serving``, ``kind``) shows instead of the field until the manager
   writes that field again; deleting it clears the field.
5. Published at once: ``publish`` gets the snapshot after every write, before the writing method
   returns (the manager writes it where every worker reads it, ``published.py``), so a change is
   visible to every process once the call that made it has returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from runtime.supervisor.messages import RESTRICTED_KEYS, ProcessState
from runtime.supervisor.states import Event, advance

__all__ = ["Entry", "Snapshot", "StateTable"]

Snapshot = dict[str, dict[str, Any]]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Entry:
    """One process's entry; ``None`` fields (and IDLE) are not shown. (A plain slotted class: a
    dataclass costs ~0.3 ms to build at every start.)"""

    __slots__ = (
        "custom",
        "kind",
        "pid",
        "restart_at",
        "server",
        "serving",
        "start_at",
        "starts",
        "state",
    )

    def __init__(
        self, server: bool | None = None, kind: str | None = None, pid: int | None = None
    ) -> None:
        self.server = server
        self.kind = kind
        self.state = ProcessState.IDLE
        self.starts = 0
        self.start_at: datetime | None = None
        self.pid = pid
        self.serving: bool | None = None
        self.restart_at: datetime | None = None
        self.custom: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Entry({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if self.server is not None:
            shown["server"] = self.server
        if self.kind is not None:
            shown["kind"] = self.kind
        if self.state is not ProcessState.IDLE:
            shown["state"] = self.state.name
        if self.starts:
            shown["starts"] = self.starts
        if self.start_at is not None:
            shown["start_at"] = self.start_at
        if self.pid is not None:
            shown["pid"] = self.pid
        if self.serving is not None:
            shown["serving"] = self.serving
        if self.restart_at is not None:
            shown["restart_at"] = self.restart_at
        shown.update(self.custom)
        return shown


class StateTable:
    """Process name -> :class:`Entry`, written by the manager only (rule 1).

    ``on_write`` runs at once after every write (the manager wakes its waits), and so does
    ``publish`` with the new snapshot (rule 5); ``schedule`` runs a callable soon, once per batch
    (``loop.call_soon``): then every subscriber gets the snapshot.
    """

    def __init__(
        self,
        schedule: Callable[[Callable[[], None]], object],
        on_write: Callable[[], None] = lambda: None,
        publish: Callable[[Snapshot], object] | None = None,
    ) -> None:
        self._entries: dict[str, Entry] = {}
        self._publish_now = publish
        self._schedule = schedule
        self._on_write = on_write
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._pending = False

    # --- reading -------------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def state(self, name: str) -> ProcessState:
        entry = self._entries.get(name)
        return entry.state if entry is not None else ProcessState.IDLE

    def snapshot(self) -> Snapshot:
        """A copy of the whole table (safe to call from another thread, e.g. a console's)."""
        for _ in range(10):
            try:
                return {name: entry.as_dict() for name, entry in list(self._entries.items())}
            except RuntimeError:  # changed while copying from another thread: copy again
                continue
        return {name: entry.as_dict() for name, entry in list(self._entries.items())}

    def subscribe(self, callback: Callable[[Snapshot], None]) -> Callable[[], None]:
        """Call ``callback`` with a snapshot after each batch of changes (rule 3); returns a
        remover."""
        self._subscribers.append(callback)

        def remove() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return remove

    # --- writing -------------------------------------------------------------------------------

    def add(
        self, name: str, *, server: bool | None, kind: str | None = None, pid: int | None = None
    ) -> None:
        """A new entry for ``name`` (replacing any)."""
        self._entries[name] = Entry(server=server, kind=kind, pid=pid)
        self._changed()

    def ensure(self, name: str, *, server: bool) -> None:
        """An entry for ``name`` unless it has one."""
        if name not in self._entries:
            self.add(name, server=server)

    def remove(self, name: str) -> None:
        if self._entries.pop(name, None) is not None:
            self._changed()

    def move(self, name: str, event: Event) -> ProcessState:
        """Apply ``event`` to the state of ``name`` (rule 2); returns the new state."""
        entry = self._entry(name)
        entry.state = advance(entry.state, event)
        self._changed()
        return entry.state

    def started(self, name: str, pid: int, *, restarted: bool, server: bool) -> None:
        """The OS process of ``name`` runs (SPAWN): its pid, start count and times."""
        entry = self._entry(name)
        self._count_start(entry, restarted)
        entry.pid = pid
        entry.state = advance(entry.state, Event.SPAWN)
        if server:
            self._set_serving(entry, False)
        self._changed()

    def took_over(self, name: str, pid: int, *, serving: bool) -> None:
        """A replacement became the current server worker of ``name`` (TAKE_OVER)."""
        entry = self._entries.setdefault(name, Entry(server=True))
        self._count_start(entry, True)
        entry.pid = pid
        entry.state = advance(entry.state, Event.TAKE_OVER)
        self._set_serving(entry, serving)
        self._changed()

    def exited(self, name: str, code: int, *, server: bool) -> None:
        """The current process of ``name`` exited (COMPLETE for code 0, else FAIL)."""
        entry = self._entry(name)
        entry.state = advance(entry.state, Event.COMPLETE if code == 0 else Event.FAIL)
        if server:
            self._set_serving(entry, False)
        self._changed()

    def set_serving(self, name: str, serving: bool) -> None:
        self._set_serving(self._entry(name), serving)
        self._changed()

    def update_custom(
        self, name: str, values: Mapping[str, Any], deleted: tuple[str, ...] = ()
    ) -> None:
        """A child's ``StateUpdate``: custom keys only (restricted keys are dropped, rule 4)."""
        entry = self._entry(name)
        entry.custom.update({k: v for k, v in values.items() if k not in RESTRICTED_KEYS})
        for key in deleted:
            if key in RESTRICTED_KEYS:
                continue
            entry.custom.pop(key, None)
            if key == "serving":
                entry.serving = None
            elif key == "kind":
                entry.kind = None
        self._changed()

    # --- inside --------------------------------------------------------------------------------

    def _entry(self, name: str) -> Entry:
        return self._entries.setdefault(name, Entry())

    @staticmethod
    def _count_start(entry: Entry, restarted: bool) -> None:
        now = _now()
        entry.starts += 1
        if entry.start_at is None:
            entry.start_at = now
        if restarted or entry.starts > 1:
            entry.restart_at = now

    @staticmethod
    def _set_serving(entry: Entry, serving: bool) -> None:
        entry.serving = serving
        entry.custom.pop("serving", None)  # the manager's word is the latest (rule 4)

    def _changed(self) -> None:
        if self._publish_now is not None:
            self._publish_now(self.snapshot())
        self._on_write()
        if not self._pending:
            self._pending = True
            self._schedule(self._publish)

    def _publish(self) -> None:
        self._pending = False
        snapshot = self.snapshot()
        for callback in list(self._subscribers):
            callback(snapshot)
