"""What the fork server imports before it forks workers: vivace, and the app's libraries.

A worker forked from the fork server imports the app module fresh. When the fork server has
already imported the libraries the app uses (FastAPI, pydantic, SQLAlchemy, Django ...), a worker
imports only the user's own modules: a restart or a reload of a heavy app costs what a tiny app
costs (issue: "reload and start as fast for a heavy app as for a tiny one").

The main process lists those libraries after it loaded the app (:func:`library_modules`) and
hands them over in ``VIVACE_FORKSERVER_PRELOAD`` (one environment string, inherited by the fork
server when it starts); the fork server imports ``runtime.supervisor.fork_preload`` first
(``process.PRELOAD``), which imports them. A library is listed only when loading the app
started no thread: a library that starts threads at import would leave the fork server unsafe
to fork from.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["ENV", "hand_over", "library_modules"]

ENV = "VIVACE_FORKSERVER_PRELOAD"
_LIMIT = 100_000  # characters: an environment string is limited to 128 KiB on Linux


def library_modules() -> list[str]:
    """Third-party modules loaded in this process (site-packages, not vivace or the stdlib)."""
    import sysconfig

    paths = sysconfig.get_paths()
    prefixes = tuple({os.path.join(paths[k], "") for k in ("purelib", "platlib")})
    names = []
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("runtime", "repl", "__main__"):
            continue
        path = getattr(module, "__file__", None)
        if path and os.path.abspath(path).startswith(prefixes):
            names.append(name)
    return sorted(names, key=lambda n: (n.count("."), n))


def hand_over() -> int:
    """In the main process, before the fork server starts: list the libraries to preload.

    Returns how many were listed (0 when threads run: see the module docstring).
    """
    if threading.active_count() != 1:
        os.environ.pop(ENV, None)
        return 0
    names: list[str] = []
    size = 0
    for name in library_modules():
        size += len(name) + 1
        if size > _LIMIT:
            break
        names.append(name)
    os.environ[ENV] = ",".join(names)
    return len(names)
