"""``SharedContext``: objects the main process hands to every server worker (``shared_ctx``).

Used by vivace's ``App`` (``app.shared_ctx``) and by hosted foreign apps alike.
"""

from __future__ import annotations

import multiprocessing
from types import SimpleNamespace
from typing import Any

from runtime.log import logger

__all__ = ["SharedContext"]


class SharedContext(SimpleNamespace):
    """``app.shared_ctx``: multiprocessing objects handed to every server worker.

    In the main process, attaching something that is not a ``multiprocessing`` / ``ctypes`` object
    logs a warning (it arrives in workers as an independent copy). After ``lock()`` (the worker
    start-up path calls it) setting any attribute raises ``RuntimeError``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_locked", False):
            raise RuntimeError(
                f"Cannot set shared_ctx.{name} here: shared_ctx is read-only in server workers; "
                "attach shared objects in a main_process_start listener"
            )
        if not name.startswith("_") and multiprocessing.parent_process() is None:
            module = type(value).__module__ or ""
            if not module.startswith(("multiprocessing", "ctypes")):
                logger.warning(
                    "Unsafe object %s with type %s was added to shared_ctx. It may not function "
                    "as intended. Consider using the regular ctx.",
                    name,
                    type(value),
                )
        super().__setattr__(name, value)

    def lock(self) -> None:
        """Make the context read-only (called in server workers)."""
        object.__setattr__(self, "_locked", True)

    def is_locked(self) -> bool:
        return bool(self.__dict__.get("_locked", False))
