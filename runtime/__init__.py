"""vivace: an async web runtime with a developer console beside the live server.

The everyday names are here: ``from runtime import App, Blueprint, json, text``. Exceptions live in
``runtime.exceptions``, the in-process test client in ``runtime.testing``.
"""

import typing as _typing

# The names below are imported on first use (PEP 562), so that the commands that never build an
# app (``vivace attach``, ``inspect``, ``mcp``) and the servers of other frameworks' apps do not
# pay for vivace's app model at start-up.
_EXPORTS = {
    "App": "runtime.app",
    "Blueprint": "runtime.blueprints",
    "BlueprintGroup": "runtime.blueprints",
    "Config": "runtime.config",
    "ConnInfo": "runtime.datastructures",
    "File": "runtime.datastructures",
    "Headers": "runtime.datastructures",
    "ListenerEvent": "runtime.lifecycle",
    "Request": "runtime.request",
    "BaseHTTPResponse": "runtime.response",
    "FileResponse": "runtime.response",
    "HTTPResponse": "runtime.response",
    "JSONResponse": "runtime.response",
    "ResponseStream": "runtime.response",
    "StreamingResponse": "runtime.response",
    "empty": "runtime.response",
    "file": "runtime.response",
    "file_stream": "runtime.response",
    "html": "runtime.response",
    "json": "runtime.response",
    "raw": "runtime.response",
    "redirect": "runtime.response",
    "stream": "runtime.response",
    "text": "runtime.response",
    "Event": "runtime.signals",
    "HTTPMethodView": "runtime.views",
    "WebSocketProtocol": "runtime.websocket",
}

if _typing.TYPE_CHECKING:
    from runtime.app import App as App
    from runtime.blueprints import Blueprint as Blueprint
    from runtime.blueprints import BlueprintGroup as BlueprintGroup
    from runtime.config import Config as Config
    from runtime.datastructures import ConnInfo as ConnInfo
    from runtime.datastructures import File as File
    from runtime.datastructures import Headers as Headers
    from runtime.lifecycle import ListenerEvent as ListenerEvent
    from runtime.request import Request as Request
    from runtime.response import BaseHTTPResponse as BaseHTTPResponse
    from runtime.response import FileResponse as FileResponse
    from runtime.response import HTTPResponse as HTTPResponse
    from runtime.response import JSONResponse as JSONResponse
    from runtime.response import ResponseStream as ResponseStream
    from runtime.response import StreamingResponse as StreamingResponse
    from runtime.response import empty as empty
    from runtime.response import file as file
    from runtime.response import file_stream as file_stream
    from runtime.response import html as html
    from runtime.response import json as json
    from runtime.response import raw as raw
    from runtime.response import redirect as redirect
    from runtime.response import stream as stream
    from runtime.response import text as text
    from runtime.signals import Event as Event
    from runtime.supervisor.multiplexer import Multiplexer
    from runtime.views import HTTPMethodView as HTTPMethodView
    from runtime.websocket import WebSocketProtocol as WebSocketProtocol


def __getattr__(name: str) -> _typing.Any:
    """``runtime.App`` and the other everyday names, imported when first asked for."""
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__version__ = "0.1.0"


def multiplexer() -> "Multiplexer":
    """The current worker's multiplexer (``app.m``), for any app vivace serves.

    Raises ``RuntimeError`` outside a server worker of a multi-process vivace server.
    """
    from runtime.supervisor.multiplexer import current

    return current()


__all__ = [
    "App",
    "BaseHTTPResponse",
    "Blueprint",
    "BlueprintGroup",
    "Config",
    "ConnInfo",
    "Event",
    "File",
    "FileResponse",
    "HTTPMethodView",
    "HTTPResponse",
    "Headers",
    "JSONResponse",
    "ListenerEvent",
    "Request",
    "ResponseStream",
    "StreamingResponse",
    "WebSocketProtocol",
    "__version__",
    "empty",
    "file",
    "file_stream",
    "html",
    "json",
    "multiplexer",
    "raw",
    "redirect",
    "stream",
    "text",
]
