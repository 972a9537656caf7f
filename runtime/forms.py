"""Header and body parsers of the request: parameters, Content-Type, cookies, forms, multipart.

Pure functions of bytes and strings (no request, no I/O); ``Request`` calls them lazily, the first
time ``form``, ``files`` or ``cookies`` is read. Malformed input raises ``BadRequest`` (a 400).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from runtime.datastructures import File, RequestParameters
from runtime.exceptions import BadRequest

__all__ = [
    "MULTIPART_MAX_PARTS",
    "MULTIPART_MAX_PART_HEADER",
    "parse_content_type",
    "parse_cookie_header",
    "parse_form",
    "parse_multipart",
]

MULTIPART_MAX_PARTS = 1000
MULTIPART_MAX_PART_HEADER = 16384


def _parse_params(text: str) -> dict[str, str]:
    """``a=1; b="x;y"; c*=UTF-8''%E2%82%AC`` -> dict (names lower case, quotes removed)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t;":
            i += 1
        start = i
        while i < n and text[i] not in "=;":
            i += 1
        name = text[start:i].strip().lower()
        value = ""
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                i += 1
                buf: list[str] = []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1  # only \" and \\ are escapes; browsers send other backslashes raw
                    buf.append(text[i])
                    i += 1
                i += 1
                value = "".join(buf)
            else:
                start = i
                while i < n and text[i] != ";":
                    i += 1
                value = text[start:i].strip()
        if name:
            if name.endswith("*"):
                charset, _, rest = value.partition("'")
                _, _, encoded = rest.partition("'")
                try:
                    value = unquote(encoded, encoding=charset or "utf-8", errors="strict")
                except (LookupError, UnicodeDecodeError):
                    continue
                name = name[:-1]
                params[name] = value
            else:
                params.setdefault(name, value)
    return params


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``"text/html; charset=UTF-8"`` -> ``("text/html", {"charset": "UTF-8"})``."""
    mime, _, rest = value.partition(";")
    return mime.strip().lower(), _parse_params(rest)


def parse_cookie_header(values: list[str]) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in values:
        for item in header.split(";"):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


def parse_multipart(
    body: bytes,
    boundary: bytes,
    *,
    max_parts: int = MULTIPART_MAX_PARTS,
    charset: str = "utf-8",
) -> tuple[RequestParameters, RequestParameters]:
    """Split a multipart/form-data body into (fields, files); malformed input is a 400."""
    if not boundary or len(boundary) > 200:
        raise BadRequest("multipart/form-data boundary must be 1 to 200 characters")
    form = RequestParameters()
    files = RequestParameters()
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise BadRequest("multipart/form-data body does not contain its boundary")
        pos = found + 2 + len(delimiter)
    separator = b"\r\n" + delimiter
    count = 0
    while True:
        if body.startswith(b"--", pos):
            return form, files  # closing delimiter; the epilogue is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise BadRequest("multipart/form-data body is truncated or has a malformed boundary")
        start = line_end + 2
        end = body.find(separator, start)
        if end < 0:
            raise BadRequest("multipart/form-data body ends without its closing boundary")
        count += 1
        if count > max_parts:
            raise BadRequest(f"multipart/form-data body has more than {max_parts} parts")
        _add_part(body[start:end], form, files, charset)
        pos = end + len(separator)


def _add_part(part: bytes, form: RequestParameters, files: RequestParameters, charset: str) -> None:
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("multipart/form-data part without a blank line after its headers")
    if len(head) > MULTIPART_MAX_PART_HEADER:
        raise BadRequest("multipart/form-data part headers are too large")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n") if head else ():
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest(f"multipart/form-data part has a malformed header line {line!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise BadRequest("multipart/form-data part without a Content-Disposition header")
    kind, params = parse_content_type(disposition)
    field = params.get("name")
    if kind != "form-data" or field is None:
        raise BadRequest(f"multipart/form-data part with a bad Content-Disposition: {disposition}")
    part_type = headers.get("content-type")
    filename = params.get("filename")
    if filename is not None:
        files.setdefault(field, []).append(
            File(filename, part_type or "application/octet-stream", content)
        )
        return
    encoding = charset
    if part_type:
        encoding = parse_content_type(part_type)[1].get("charset", charset)
    try:
        text = content.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Form field {field!r} is not valid {encoding} text: {exc}") from exc
    form.setdefault(field, []).append(text)


def parse_form(body: bytes, content_type: str) -> tuple[RequestParameters, RequestParameters]:
    """``(fields, files)`` of an urlencoded or multipart/form-data body (else both empty)."""
    form = RequestParameters()
    files = RequestParameters()
    mime, params = parse_content_type(content_type)
    if mime == "application/x-www-form-urlencoded":
        charset = params.get("charset", "utf-8")
        try:
            text = body.decode(charset)
        except (LookupError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Form body is not valid {charset} text: {exc}") from exc
        for key, value in parse_qsl(text, keep_blank_values=True, encoding=charset):
            form.setdefault(key, []).append(value)
    elif mime == "multipart/form-data":
        boundary = params.get("boundary")
        if not boundary:
            raise BadRequest("multipart/form-data body without a boundary parameter")
        form, files = parse_multipart(body, boundary.encode("latin-1"))
    return form, files
