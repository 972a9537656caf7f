"""The console's ``workers``, ``restart``, ``reload``, ``scale``, ``manage``, ``stop``, ``logs``.

Everything goes through ``runtime.supervisor.control.Control``, an asyncio API on the main process's
loop. Console statements run on another thread (``evaluate.ThreadRunner``), so these helpers hand
each call to the main loop with ``run_coroutine_threadsafe`` and wait for it, bounded. Commands that
return a summary return a ``Summary`` string that may also be awaited (``await restart()`` works).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from runtime.exceptions import WorkerBootError

T = TypeVar("T")

COMMAND_TIMEOUT = 120.0


class LogsLike(Protocol):
    def tail(self, name: str | None = None, n: int = 50) -> Any: ...

    def mute(self, name: str | None = None) -> Any: ...

    def unmute(self, name: str | None = None) -> Any: ...

    def only(self, name: str) -> Any: ...


class ControlLike(Protocol):
    """The part of ``runtime.supervisor.control.Control`` the console uses."""

    url: str
    expected_workers: int

    def snapshot(self) -> Any: ...

    async def wait_ready(self, timeout: float) -> Any: ...

    async def restart(self, *names: str, zero_downtime: bool = False) -> Any: ...

    async def reload(self) -> Any: ...

    async def scale(self, n: int) -> Any: ...

    def manage(self, ident: str, func: Any, kwargs: Any = None, **flags: Any) -> Any: ...

    async def stop(self) -> Any: ...

    async def eval_in(self, name: str, expr: str) -> Any: ...

    async def call_in(self, name: str, fn: Any, *args: Any) -> Any: ...

    @property
    def logs(self) -> Any: ...

    def add_listener(self, cb: Callable[[Any], None]) -> Any: ...


class UnknownProcess(KeyError):
    """``workers["nope"]``: a KeyError whose message reads as a sentence (no quotes around it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Summary(str):
    """A result string that can also be awaited: ``restart()`` and ``await restart()`` both work."""

    def __await__(self) -> Generator[Any, None, Summary]:
        yield from ()
        return self

    def __repr__(self) -> str:
        return str(self)


class Bridge:
    """Run coroutines on the main loop from the console thread and wait for them (bounded)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident()

    def wait(self, coro: Coroutine[Any, Any, T], timeout: float = COMMAND_TIMEOUT) -> T:
        if threading.get_ident() == self.thread_id:
            coro.close()
            raise RuntimeError("this call would block the loop that runs the workers; await it")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # the built-in TimeoutError from Python 3.11
            future.cancel()
            raise TimeoutError(
                f"no answer from the worker manager within {timeout:.0f} s"
            ) from None
        except BaseException:
            future.cancel()
            raise

    def call(self, fn: Callable[[], T], timeout: float = COMMAND_TIMEOUT) -> T:
        """Call a plain function on the main loop's thread (state that belongs to that loop)."""
        if threading.get_ident() == self.thread_id:
            return fn()

        async def run() -> T:
            return fn()

        return self.wait(run(), timeout)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """An awaitable for the console loop, running ``coro`` on the main loop (started now).

        Made on any thread, a plain statement's too (no event loop there); awaited on a loop.
        """
        if threading.get_ident() == self.thread_id:
            return coro
        return _Started(asyncio.run_coroutine_threadsafe(coro, self.loop))


class _Started(Awaitable[T]):
    """A call already running on another loop, awaited on whichever loop awaits this."""

    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        return "<call running in a worker: await it>"


# --- the worker table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    pid: int | None
    state: str
    starts: int
    uptime: float | None
    serving: bool | None


def _get(entry: Any, key: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def _kind(name: str, entry: Any) -> str:
    kind = _get(entry, "kind")
    if kind is not None:
        return str(getattr(kind, "value", kind)).lower()
    if _get(entry, "server"):
        return "server"
    return "reloader" if "Reloader" in name else "custom"


LIVE_STATES = {"STARTING", "STARTED", "ACKED", "RESTARTING", "SERVING", "READY", "RUNNING"}
END_KEYS = ("stopped_at", "exit_at", "ended_at")


def _seconds(value: Any) -> float | None:
    """A time stamp as POSIX seconds (an aware datetime, a naive one in UTC, or a number)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _uptime(entry: Any, state: str) -> float | None:
    """Seconds since the process (re)started, for a live process only.

    A process that ended (COMPLETED, FAILED, TERMINATED...) shows its run time when the table
    says when it ended, else nothing: its uptime does not keep counting.
    """
    live = state == "-" or state.upper() in LIVE_STATES
    up = _get(entry, "uptime")
    if isinstance(up, (int, float)) and not isinstance(up, bool):
        return float(up) if live else None
    started_at = _get(entry, "restart_at") or _get(entry, "start_at")
    started = _seconds(started_at)
    if started is None:
        return None
    end = time.time()
    if not live:
        ended = [e for e in (_seconds(_get(entry, key)) for key in END_KEYS) if e is not None]
        if not ended:
            return None
        end = ended[0]
    return max(0.0, end - started)


def rows(snapshot: Any) -> list[Row]:
    """Table rows from ``Control.snapshot()`` (a mapping name -> entry, or a list of entries)."""
    if isinstance(snapshot, Mapping):
        items = list(snapshot.items())
    else:
        items = [(str(_get(e, "name", "?")), e) for e in snapshot]
    found = []
    for name, entry in items:
        if name.endswith("-Main") or name == "Vivace-Main":
            continue
        state = str(getattr(_get(entry, "state", ""), "name", _get(entry, "state", "")) or "-")
        pid = _get(entry, "pid")
        serving = _get(entry, "serving")
        found.append(
            Row(
                name=name,
                kind=_kind(name, entry),
                pid=int(pid) if isinstance(pid, int) else None,
                state=state,
                starts=int(_get(entry, "starts", 0) or 0),
                uptime=_uptime(entry, state),
                serving=bool(serving) if serving is not None else None,
            )
        )
    return found


READY_STATES = {"ACKED", "SERVING", "READY", "RUNNING"}


def ready_count(snapshot: Any) -> int:
    count = 0
    for row in rows(snapshot):
        if row.kind == "server" and (
            row.state.upper() in READY_STATES or (row.state == "-" and row.serving)
        ):
            count += 1
    return count


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def table(found: list[Row]) -> str:
    header = ("name", "kind", "pid", "state", "starts", "uptime", "serving")
    body = [
        (
            r.name,
            r.kind,
            str(r.pid) if r.pid is not None else "-",
            r.state,
            str(r.starts),
            _fmt_uptime(r.uptime),
            "-" if r.serving is None else ("yes" if r.serving else "no"),
        )
        for r in found
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Worker:
    """One process of the manager: ``.eval(expr)`` and ``await .call(fn, *args)`` run inside it."""

    def __init__(self, view: Workers, name: str) -> None:
        self._view = view
        self.name = name

    @property
    def row(self) -> Row:
        for row in self._view.rows():
            if row.name == self.name:
                return row
        raise UnknownProcess(f"{self.name!r} is not running any more; see `workers`")

    @property
    def pid(self) -> int | None:
        return self.row.pid

    @property
    def state(self) -> str:
        return self.row.state

    def eval(self, expr: str) -> Any:
        """Evaluate ``expr`` inside this worker (``app`` is the worker's app); return its value."""
        return self._view.bridge.wait(self._view.control.eval_in(self.name, expr))

    def call(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Run a picklable callable inside this worker, on its loop: ``await w.call(fn, 1)``."""
        return self._view.bridge.spawn(self._view.control.call_in(self.name, fn, *args))

    def restart(self, zero_downtime: bool = False) -> Summary:
        return self._view.restart(self.name, zero_downtime=zero_downtime)

    def __repr__(self) -> str:
        try:
            return table([self.row])
        except KeyError as exc:
            return str(exc.args[0])


class Workers:
    """The live view of every process the manager runs; ``workers[name]`` is one of them."""

    def __init__(self, control: ControlLike, bridge: Bridge) -> None:
        self.control = control
        self.bridge = bridge

    def rows(self) -> list[Row]:
        return rows(self.bridge.call(self.control.snapshot))

    def names(self) -> list[str]:
        return [r.name for r in self.rows()]

    def _unknown(self, name: object, names: list[str]) -> str:
        return f"no process named {name!r}; running: {', '.join(names) or 'none'}"

    def __getitem__(self, key: str | int) -> Worker:
        found = self.rows()
        if isinstance(key, int) and not isinstance(key, bool):
            servers = [r.name for r in found if r.kind == "server"]
            try:
                return Worker(self, servers[key])
            except IndexError:
                if not servers:
                    raise IndexError(f"workers[{key}]: there are no server workers") from None
                if len(servers) == 1:
                    there = "there is 1 server worker (workers[0])"
                else:
                    there = f"there are {len(servers)} server workers "
                    there += f"(workers[0] to workers[{len(servers) - 1}])"
                raise IndexError(f"workers[{key}]: {there}") from None
        names = [r.name for r in found]
        if key not in names:
            raise UnknownProcess(self._unknown(key, names))
        return Worker(self, key)

    def __iter__(self) -> Iterator[Worker]:
        return iter([Worker(self, n) for n in self.names()])

    def __len__(self) -> int:
        return len(self.rows())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __repr__(self) -> str:
        found = self.rows()
        ready = sum(1 for r in found if r.kind == "server" and r.state.upper() in READY_STATES)
        head = f"{ready}/{self.control.expected_workers} server workers ready"
        return table(found) + "\n" + head if found else head

    # commands ----------------------------------------------------------------------------------

    def restart(self, *names: str, zero_downtime: bool = False) -> Summary:
        if names:
            known = self.names()
            for name in names:
                if name not in known:
                    raise LookupError(self._unknown(name, known))
        before = {r.name: r.pid for r in self.rows() if r.kind == "server"}
        try:
            summary = self.bridge.wait(self.control.restart(*names, zero_downtime=zero_downtime))
        except WorkerBootError as exc:
            kept = self._kept_serving(before, names)
            if not kept:
                raise
            # a start-first restart (asked for, or because the last reload failed) that did
            # not start: the workers it would have replaced serve on, say so
            if len(kept) == 1:
                who = f"worker {kept[0]} keeps serving the code it"
            else:
                who = f"workers {', '.join(kept)} keep serving the code they"
            raise WorkerBootError(
                f"{exc}. The running {who} started with; fix the code (its error is above) and "
                "save, or restart() again"
            ) from exc
        return Summary(summary if summary is not None else "restarted")

    def _kept_serving(self, before: dict[str, int | None], names: tuple[str, ...]) -> list[str]:
        """The server workers asked to restart that still serve with the same pid."""
        try:
            now = self.rows()
        except Exception:
            return []
        return [
            r.name
            for r in now
            if r.kind == "server"
            and (not names or r.name in names)
            and r.pid is not None
            and before.get(r.name) == r.pid
            and (r.state.upper() in READY_STATES or bool(r.serving))
        ]

    def reload(self) -> Summary:
        summary = self.bridge.wait(self.control.reload())
        return Summary(summary if summary is not None else "reloaded")

    def scale(self, n: int) -> Summary:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"scale(n) needs a whole number of server workers >= 1, not {n!r}")
        summary = self.bridge.wait(self.control.scale(n))
        return Summary(summary if summary is not None else f"{n} server workers")

    def manage(
        self,
        ident: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any] | None = None,
        **flags: Any,
    ) -> Any:
        result = self.bridge.call(lambda: self.control.manage(ident, func, kwargs, **flags))
        if asyncio.iscoroutine(result):
            result = self.bridge.wait(result)
        return result

    def stop(self) -> Summary:
        self.bridge.wait(self.control.stop())
        return Summary("stopping the server")


class Logs:
    """``logs.tail(name=None, n=50)``, ``logs.mute/unmute(name=None)``, ``logs.only(name)``."""

    def __init__(self, control: ControlLike, bridge: Bridge) -> None:
        self._control = control
        self._bridge = bridge

    def _logs(self) -> Any:
        return self._control.logs

    def tail(self, name: str | None = None, n: int = 50) -> Summary:
        lines = self._bridge.call(lambda: self._logs().tail(name, n))
        if isinstance(lines, str):
            return Summary(lines)
        return Summary("\n".join(str(line).rstrip("\n") for line in lines))

    def mute(self, name: str | None = None) -> None:
        self._bridge.call(lambda: self._logs().mute(name))

    def unmute(self, name: str | None = None) -> None:
        self._bridge.call(lambda: self._logs().unmute(name))

    def only(self, name: str) -> None:
        self._bridge.call(lambda: self._logs().only(name))

    def __repr__(self) -> str:
        return (
            "<logs: logs.tail(name=None, n=50), logs.mute(name), logs.unmute(name), "
            "logs.only(name)>"
        )
