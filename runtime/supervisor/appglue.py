"""The few places where the supervisor touches the App facade, lifecycle and server.

Kept in one module so that the contracts of docs/architecture.md are consumed in one spot.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Mapping
from typing import Any

from runtime.loader import AppRef

log = logging.getLogger("vivace.supervisor")


def load(ref: AppRef) -> Any:
    """``runtime.loader.load_app`` when it exists; otherwise import ``module:attr`` directly."""
    loader = importlib.import_module("runtime.loader")
    load_app = getattr(loader, "load_app", None)
    if load_app is not None:
        return load_app(ref)
    if ref.module is None:  # pragma: no cover - only until the loader lands
        raise RuntimeError(
            "cannot load an app without a module name before runtime.loader.load_app exists"
        )
    module = importlib.import_module(ref.module)
    obj = getattr(module, ref.attr or "app")
    return obj() if ref.factory else obj


def attach(app: Any, public: str, private: str, value: Any) -> None:
    """Set ``app.<public>``, or ``app.<private>`` when the facade has a read-only property."""
    try:
        setattr(app, public, value)
    except AttributeError:
        setattr(app, private, value)


def run_main_listeners(app: Any, event: str, loop: asyncio.AbstractEventLoop) -> None:
    """Run main-process listeners for ``event`` on a loop that is not running."""
    try:
        lifecycle = importlib.import_module("runtime.lifecycle")
    except ImportError:
        lifecycle = None
    if lifecycle is not None and hasattr(lifecycle, "run_listeners_sync"):
        kind = lifecycle.ListenerEvent(event)
        lifecycle.run_listeners_sync(app, kind, loop)
        return
    # Fallback (test doubles): app.listeners maps event name -> list of callables.
    listeners = list(getattr(app, "listeners", {}).get(event, []))
    if event.endswith("_stop"):
        listeners.reverse()
    for listener in listeners:
        params = inspect.signature(listener).parameters
        result = listener(app, loop) if len(params) >= 2 else listener(app)
        if inspect.isawaitable(result):
            loop.run_until_complete(result)


def server_class(app: Any) -> Any:
    """The server to run in a worker: ``runtime.server.Server`` (a test double may override it)."""
    override = getattr(app, "_vivace_server_class", None)
    if override is not None:
        return override
    return importlib.import_module("runtime.server").Server


def shared_ctx_items(app: Any) -> dict[str, Any]:
    ctx = getattr(app, "shared_ctx", None)
    if ctx is None:
        return {}
    return {k: v for k, v in vars(ctx).items() if not k.startswith("_")}


def install_shared_ctx(app: Any, values: Mapping[str, Any]) -> None:
    ctx = getattr(app, "shared_ctx", None)
    if ctx is None:
        return
    for key, value in values.items():
        setattr(ctx, key, value)
    lock = getattr(ctx, "lock", None)
    if callable(lock):
        lock()


def forget_apps() -> None:
    """In a child forked from the main process: forget the main's App instances (names are unique
    per process, and the worker loads its own app)."""
    app_module = sys.modules.get("runtime.app")
    registry = getattr(getattr(app_module, "App", None), "_registry", None)
    if isinstance(registry, dict):
        registry.clear()
