"""FastAPI in the console: ``openapi``, a summary of every operation of the console's ``app``.

``openapi`` is a table (method, path, operation id, request model, response model) read from the
schema FastAPI generates, at each use (routes added in the console show). ``openapi.schema`` is
the whole schema as a dict; ``openapi["create_item"]`` is one operation, by operation id.

Generating the schema here leaves ``app.openapi_schema`` as it was (FastAPI caches it on first
use). ``app.state`` (what the lifespan start-up made in the console's process) and
``app.dependency_overrides`` need nothing from vivace: ``do()`` sends its requests through this
very ``app``, so an override set at the prompt is honoured by the next ``do()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from repl.native import Section, framework_object

__all__ = ["OpenAPI", "Operation", "fastapi_section"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class Operation(NamedTuple):
    """One row of ``openapi``."""

    method: str
    path: str
    operation_id: str
    request: str
    response: str


def _schema_name(schema: Any) -> str:
    """``Item``, ``list[Item]``, ``Item | None``, ``string`` for a JSON schema."""
    if not isinstance(schema, dict):
        return ""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            names = [_schema_name(option) for option in options]
            return " | ".join(n for n in names if n)
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_schema_name(schema.get('items')) or 'any'}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {_schema_name(schema['additionalProperties']) or 'any'}]"
    if isinstance(kind, str):
        return "null" if kind == "null" else kind
    return str(schema.get("title", ""))


def _content_name(content: Any) -> str:
    if not isinstance(content, dict) or not content:
        return ""
    media, body = next(iter(content.items()))
    name = _schema_name(body.get("schema") if isinstance(body, dict) else None) or "any"
    return name if media == "application/json" else f"{name} ({media})"


def _response(responses: Any) -> str:
    if not isinstance(responses, dict):
        return ""
    codes = sorted(str(code) for code in responses)
    chosen = next((c for c in codes if c.startswith("2")), codes[0] if codes else None)
    if chosen is None:
        return ""
    answer = responses[chosen] if chosen in responses else responses.get(int(chosen))
    name = _content_name(answer.get("content") if isinstance(answer, dict) else None)
    return f"{chosen} {name}" if name else chosen


def operations(schema: dict[str, Any]) -> list[Operation]:
    rows = []
    for path, item in (schema.get("paths") or {}).items():
        for method in METHODS:
            operation = item.get(method) if isinstance(item, dict) else None
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody")
            request = _content_name(body.get("content")) if isinstance(body, dict) else ""
            rows.append(
                Operation(
                    method.upper(),
                    path,
                    str(operation.get("operationId", "")),
                    request,
                    _response(operation.get("responses")),
                )
            )
    return rows


def _table(rows: list[Operation]) -> str:
    header = ("method", "path", "operation id", "request", "response")
    body = [tuple(r) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class OpenAPI:
    """The console's ``openapi``: the operations of the current FastAPI ``app``."""

    def __init__(self, target: Callable[[], object]) -> None:
        self._target = target

    def _app(self) -> Any:
        app = framework_object(self._target(), "fastapi")
        if app is None or not callable(getattr(app, "openapi", None)):
            raise TypeError(f"openapi: the console's app is not a FastAPI app: {self._target()!r}")
        return app

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAPI schema FastAPI generates for the app (its cache left as it was)."""
        app = self._app()
        cached = app.openapi_schema
        try:
            schema: dict[str, Any] = app.openapi()
        finally:
            if cached is None:
                app.openapi_schema = None
        return schema

    def __call__(self) -> list[Operation]:
        """A snapshot: one ``Operation`` per method of each path."""
        return operations(self.schema)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self())

    def __len__(self) -> int:
        return len(self())

    def __getitem__(self, key: int | str) -> Operation:
        rows = self()
        if isinstance(key, int):
            return rows[key]
        for row in rows:
            if row.operation_id == key:
                return row
        known = ", ".join(r.operation_id for r in rows) or "none"
        raise KeyError(f"no operation with id {key!r}; operation ids: {known}")

    def __repr__(self) -> str:
        try:
            schema = self.schema
        except Exception as exc:
            return f"openapi: the schema could not be generated: {type(exc).__name__}: {exc}"
        rows = operations(schema)
        info = schema.get("info") or {}
        title = f"{info.get('title', '')} {info.get('version', '')}".strip()
        count = f"{len(rows)} operation{'s' if len(rows) != 1 else ''}"
        if not rows:
            return f"no operations (OpenAPI {schema.get('openapi', '')}, {title})"
        return _table(rows) + f"\n{count} (OpenAPI {schema.get('openapi', '')}, {title})"


def fastapi_section(target: Callable[[], object]) -> list[Section]:
    names: dict[str, Any] = {"openapi": OpenAPI(target)}
    lines = ["  openapi  method, path, operation id, request and response model of each operation"]
    notes = [
        "app.state is what the lifespan start-up made in this process; "
        "app.dependency_overrides[dep] = fake\napplies to the next do() (the workers keep theirs)."
    ]
    return [Section("FastAPI:", names, lines, notes, source="FastAPI")]
