"""Imported by the fork server only (``process.PRELOAD``): the app's libraries, listed by the
main process in ``VIVACE_FORKSERVER_PRELOAD`` (see ``runtime.supervisor.preload``)."""

from __future__ import annotations

import importlib
import os

from runtime.supervisor.preload import ENV


def _preload() -> None:
    for name in filter(None, os.environ.get(ENV, "").split(",")):
        try:
            importlib.import_module(name)
        except Exception:  # a module that needs the app's set-up: the worker imports it then
            continue


_preload()
