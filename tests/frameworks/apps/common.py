"""What every framework app of this directory shares: the streamed body, the lifespan token,
the scope summary ``GET /headers`` returns and the disconnect trace.

The apps run in the server's own processes (vivace workers, uvicorn), so what they observe
across processes goes through files in ``FRAMEWORK_TRACE_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

#: what the failing lifespans of ``raw_asgi`` and ``fastapi_app`` say
RAW_STARTUP_FAILURE = "raw app: the database at db.invalid:5432 is unreachable"
RAW_STARTUP_EXCEPTION = "raw app: cannot open the connection pool"
FASTAPI_STARTUP_FAILURE = "fastapi app: cannot reach the database at db.invalid:5432"

#: ``GET /stream`` sends CHUNKS chunks of CHUNK_SIZE bytes each
CHUNKS = 100
CHUNK_SIZE = 1024


def chunk(i: int) -> bytes:
    return (f"{i:04d}" * (CHUNK_SIZE // 4)).encode()


def chunks() -> Iterator[bytes]:
    for i in range(CHUNKS):
        yield chunk(i)


async def achunks() -> AsyncIterator[bytes]:
    for i in range(CHUNKS):
        yield chunk(i)


def token() -> str:
    """What a lifespan startup stores: names the process it ran in."""
    return f"lifespan-in-{os.getpid()}"


def state_body(value: object) -> dict[str, object]:
    return {"token": value, "pid": os.getpid()}


def trace_dir() -> Path | None:
    folder = os.environ.get("FRAMEWORK_TRACE_DIR")
    return Path(folder) if folder else None


def record(name: str, text: str = "") -> None:
    """Leave ``name`` in the trace directory (the tests wait for it). Written whole, then
    renamed into place: a test that sees the file exist reads all of it, never an empty file
    caught between its creation and its write."""
    folder = trace_dir()
    if folder is not None:
        partial = folder / f".{name}.{os.getpid()}.partial"
        partial.write_text(text)
        os.replace(partial, folder / name)


def probe_started(key: str) -> None:
    """The disconnect probe is running: the client may go away now."""
    record(f"probe-started-{key}")


def disconnected(key: str) -> None:
    record(f"disconnect-{key}", str(os.getpid()))


def scope_summary(scope: Mapping[str, Any]) -> dict[str, object]:
    """The request facts ``GET /headers`` returns for an ASGI framework (JSON-safe)."""
    client = scope.get("client")
    return {
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "scheme": scope["scheme"],
        "root_path": scope.get("root_path", ""),
        "path": scope["path"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "http_version": scope["http_version"],
        "method": scope["method"],
        "client_host": client[0] if client else None,
        "client_port_is_int": isinstance(client[1], int) if client else None,
    }


def environ_summary(environ: Mapping[str, Any]) -> dict[str, object]:
    """The request facts ``GET /headers`` returns for a WSGI app."""
    headers = [
        [key[5:].replace("_", "-").lower(), value]
        for key, value in sorted(environ.items())
        if key.startswith("HTTP_")
    ]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append([key.replace("_", "-").lower(), environ[key]])
    return {
        "headers": headers,
        "scheme": environ["wsgi.url_scheme"],
        "root_path": environ.get("SCRIPT_NAME", ""),
        "path": environ.get("PATH_INFO", ""),
        "query_string": environ.get("QUERY_STRING", ""),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "method": environ["REQUEST_METHOD"],
        "client_host": environ.get("REMOTE_ADDR"),
    }
