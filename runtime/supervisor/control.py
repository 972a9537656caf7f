"""``Control``: the console's asyncio API over the worker manager (main process, main loop).

Every method runs on the loop that runs the manager. Restarts, reloads and scaling return a one-line
summary once the new processes are ready, or raise :class:`~runtime.exceptions.WorkerBootError` with
the reason.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable
from typing import Any

from runtime.exceptions import WorkerBootError
from runtime.supervisor.manager import (
    ManagerEvent,
    Progress,
    RestartOrder,
    TableChanged,
    WorkerManager,
)
from runtime.supervisor.messages import CallRequest
from runtime.supervisor.output import OutputHub
from runtime.supervisor.process import ChildProcess

__all__ = ["Control", "Progress", "TableChanged"]


class Control:
    def __init__(self, manager: WorkerManager, url: str) -> None:
        self._manager = manager
        self.url = url

    @property
    def expected_workers(self) -> int:
        return len(self._manager.server_names)

    @property
    def logs(self) -> OutputHub:
        return self._manager.output

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of the state table."""
        return self._manager.workers

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._manager.ready.wait(), timeout)

    def add_listener(self, callback: Callable[[ManagerEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with each Progress or TableChanged event; returns a remover."""
        return self._manager.add_listener(callback)

    async def _await_ready(self, procs: list[ChildProcess], timeout: float) -> None:
        waits = [p.serving if p.kind == "server" else p.loop.create_future() for p in procs]
        for proc, future in zip(procs, waits, strict=True):
            if proc.kind != "server":
                future.set_result(None)
        try:
            await asyncio.wait_for(asyncio.gather(*(asyncio.shield(w) for w in waits)), timeout)
        except asyncio.TimeoutError:
            pending = [p.name for p, w in zip(procs, waits, strict=True) if not w.done()]
            raise WorkerBootError(
                f"{', '.join(pending)} did not become ready within {timeout:g} s"
            ) from None

    async def _run(
        self,
        label: str,
        start: Callable[[], list[ChildProcess]],
        timeout: float,
        nothing: str = "nothing to do",
    ) -> str:
        began = time.monotonic()
        self._manager._emit(Progress(label))
        try:
            procs = start()
            await self._await_ready(procs, timeout)
        finally:
            self._manager._emit(Progress(None))
        took = (time.monotonic() - began) * 1000
        if not procs:
            return f"{label}: {nothing}"
        names = ", ".join(p.name for p in procs)
        return f"{label}: {names} ready in {took:.0f} ms"

    async def restart(self, *names: str, zero_downtime: bool = False, timeout: float = 30.0) -> str:
        """Restart the named processes, or every server worker when no name is given."""
        order = RestartOrder.STARTUP_FIRST if zero_downtime else RestartOrder.SHUTDOWN_FIRST
        selected = list(names) if names else list(self._manager.server_names)
        for name in names:
            if name not in self._manager.table or name == "Vivace-Main":
                known = ", ".join(n for n in self._manager.table if n != "Vivace-Main")
                raise LookupError(f"No process named {name!r}; known processes: {known}")
        return await self._run("restart", lambda: self._manager.restart(selected, order), timeout)

    async def reload(self, timeout: float = 30.0) -> str:
        """The global restart an auto-reload does (server workers and transient processes),
        start-first and all-or-nothing: new code that fails to start raises
        :class:`~runtime.exceptions.WorkerBootError` and leaves the old workers serving."""
        began = time.monotonic()
        waiter = self._manager.reload()
        try:
            procs = await asyncio.wait_for(asyncio.shield(waiter), timeout)
            await self._await_ready(procs, max(0.1, timeout - (time.monotonic() - began)))
        except asyncio.TimeoutError:
            raise WorkerBootError(f"the reload did not finish within {timeout:g} s") from None
        took = (time.monotonic() - began) * 1000
        if not procs:
            return "reload: nothing to do"
        return f"reload: {', '.join(p.name for p in procs)} ready in {took:.0f} ms"

    async def scale(self, n: int, timeout: float = 30.0) -> str:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"scale({n!r}): the number of server workers must be an integer >= 1")
        before = list(self._manager.server_names)
        label = f"scale {len(before)} -> {n}"
        if n < len(before):

            def stopped() -> str:
                gone = [name for name in before if name not in self._manager.server_names]
                return f"stopped {', '.join(gone)}" if gone else "nothing to do"

            await self._run(label, lambda: self._manager.scale(n), timeout)
            return f"{label}: {stopped()}"
        return await self._run(label, lambda: self._manager.scale(n), timeout)

    def manage(
        self,
        ident: str,
        func: Callable[..., Any],
        kwargs: dict[str, Any] | None = None,
        **flags: Any,
    ) -> None:
        self._manager.manage(ident, func, kwargs, **flags)

    async def stop(self) -> None:
        self._manager.request_stop(0)

    async def eval_in(self, name: str, expr: str, timeout: float = 10.0) -> Any:
        """Evaluate ``expr`` in a live server worker (names ``app``, ``asyncio``, ``os``)."""
        return await self._manager.call(name, lambda cid: CallRequest(cid, expr=expr), timeout)

    async def call_in(
        self, name: str, fn: Callable[..., Any], *args: Any, timeout: float = 10.0
    ) -> Any:
        """Call ``fn(*args)`` in a live server worker; ``fn`` must be picklable."""
        payload = pickle.dumps(fn)
        return await self._manager.call(
            name, lambda cid: CallRequest(cid, fn=payload, args=args), timeout
        )
