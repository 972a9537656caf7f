"""The asyncio server: HTTP/1.1 and websockets on httptools and uvloop.

``Server`` serves an app on bound sockets (one worker's life); ``serve_single`` is the
``--single-process`` path; ``sockets.bind`` creates listening sockets.
"""

from runtime.server.serve import Server as Server
from runtime.server.serve import new_event_loop as new_event_loop
from runtime.server.serve import serve_single as serve_single
from runtime.server.sockets import BindError as BindError
from runtime.server.sockets import bind as bind

__all__ = ["BindError", "Server", "bind", "new_event_loop", "serve_single"]
