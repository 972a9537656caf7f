"""Logger names and the default log format. Only this module knows about colours."""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger("vivace.root")  # general messages ("Goin' Fast", "Starting worker")
server_logger = logging.getLogger("vivace.server")  # the HTTP / websocket server
access_logger = logging.getLogger("vivace.access")  # one line per request when ACCESS_LOG is on
error_logger = logging.getLogger("vivace.error")  # handler exceptions and tracebacks
supervisor_logger = logging.getLogger("vivace.supervisor")  # the worker manager
reload_logger = logging.getLogger("vivace.reload")  # the reloader

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S %z"

_configured = False


def configure(debug: bool = False, verbosity: int = 0) -> None:
    """Install vivace's handler once per process and set the levels.

    The root logger gets a handler only when it has none, so that
    ``logging.getLogger("demo").info(...)`` in an app prints like vivace's own lines. ``debug`` or
    ``-v`` shows vivace's DEBUG lines; ``-vv`` shows every library's.
    """
    global _configured
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(handler)
        _configured = True
    # Debug mode opens vivace's own loggers only: other libraries' DEBUG chatter (asyncio's
    # selector line, jedi's stub loading in the console, ...) stays hidden unless -vv asks for it.
    logging.getLogger("vivace").setLevel(logging.DEBUG if debug or verbosity > 0 else logging.INFO)
    logging.getLogger().setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def use_colour(stream: object) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
