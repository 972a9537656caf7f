"""``ProcessHandles``: what the serving processes hand an app (``app.manager``, ``app.m``).

The launcher attaches the ``WorkerManager`` in the main process and the worker's ``Multiplexer`` in
a multi-process server worker; a single-process server may install a stop hook. ``App`` owns one
``ProcessHandles`` and delegates ``app.manager``, ``app.m`` and ``app.stop()`` to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ProcessHandles"]


class ProcessHandles:
    """The process objects of one app; each property says where it exists when it does not."""

    def __init__(self) -> None:
        self._manager: Any = None
        self._multiplexer: Any = None
        self.stop_hook: Callable[[], Any] | None = None

    @property
    def multiplexer(self) -> Any:
        if self._multiplexer is None:
            raise AttributeError(
                "app.m (the multiplexer) exists only in server workers of a multi-process server; "
                "it is not available in the main process, in single-process mode or under ASGI"
            )
        return self._multiplexer

    @multiplexer.setter
    def multiplexer(self, value: Any) -> None:
        self._multiplexer = value

    @property
    def manager(self) -> Any:
        if self._manager is None:
            raise RuntimeError(
                "app.manager is not available here: it exists only in the main process of a "
                "multi-process server, from the main_process_ready listeners on "
                "(use @app.main_process_ready)"
            )
        return self._manager

    @manager.setter
    def manager(self, value: Any) -> None:
        self._manager = value

    def attach(self, *, manager: Any = None, multiplexer: Any = None) -> None:
        """Keep the handles given (``None``: leave that one as it is)."""
        if manager is not None:
            self._manager = manager
        if multiplexer is not None:
            self._multiplexer = multiplexer

    def stop(self) -> bool:
        """Stop serving (in a worker: terminate the whole server); False if nothing serves."""
        if self._multiplexer is not None:
            self._multiplexer.terminate()
        elif self.stop_hook is not None:
            self.stop_hook()
        else:
            return False
        return True
