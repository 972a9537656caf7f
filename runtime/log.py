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
    """Install vivace's handler on the ``vivace`` logger tree once per process.

    User loggers are left alone; the root logger gets a handler only when it has none, so that
    ``logging.getLogger("demo").info(...)`` in an app prints like vivace's own lines.
    """
    global _configured
    level = logging.DEBUG if debug or verbosity > 0 else logging.INFO
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(handler)
        _configured = True
    logging.getLogger().setLevel(level)
    logging.getLogger("vivace").setLevel(level)


def use_colour(stream: object) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
