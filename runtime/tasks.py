"""``TaskSet``: an app's background tasks (``app.add_task``), a part the ``App`` owns.

A task added before the loop runs is queued and started by ``start_pending()`` (``app.finalize()``
in a running loop, i.e. when the server starts); one added on a running loop starts at once. Every
started task is tracked until it ends, and ``shutdown()`` cancels the ones still running.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

#: what ``add_task`` takes: a coroutine, or a function (of the app, or of nothing) returning one
TaskSource = Coroutine[Any, Any, Any] | Callable[..., Any]


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class TaskSet:
    """The background tasks of one app; ``owner`` is what a task function of one argument gets."""

    def __init__(self, owner: object) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[tuple[TaskSource, str | None]] = []

    def add(self, task: TaskSource, *, name: str | None = None) -> asyncio.Task[Any] | None:
        """Start ``task`` now in a running loop, else queue it (and return ``None``)."""
        if not (inspect.iscoroutine(task) or callable(task)):
            raise TypeError(f"add_task takes a coroutine or a function, got {task!r}")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append((task, name))
            return None
        return self._start(task, name)

    def _start(self, task: Any, name: str | None) -> asyncio.Task[Any]:
        if not inspect.iscoroutine(task):
            try:
                takes_owner = bool(inspect.signature(task).parameters)
            except (TypeError, ValueError):
                takes_owner = False
            task = task(self._owner) if takes_owner else task()
            if not inspect.isawaitable(task):
                raise TypeError(f"add_task: the function returned {task!r}, not a coroutine")
        created = asyncio.get_running_loop().create_task(
            task if inspect.iscoroutine(task) else _await(task)
        )
        if name is not None:
            created.set_name(name)
        self._tasks.add(created)
        created.add_done_callback(self._tasks.discard)
        return created

    def start_pending(self) -> None:
        """Start the tasks queued before the loop ran (needs a running loop)."""
        pending, self._pending = self._pending, []
        for task, name in pending:
            self._start(task, name)

    @property
    def running(self) -> list[asyncio.Task[Any]]:
        """The started tasks that have not ended yet."""
        return list(self._tasks)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Cancel every task and wait (at most ``timeout``) for them to end; drop queued ones."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for source, _ in self._pending:
            if inspect.iscoroutine(source):
                source.close()
        self._pending.clear()


__all__ = ["TaskSet", "TaskSource"]
