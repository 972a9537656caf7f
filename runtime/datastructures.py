"""Value types shared by the server and the app model: headers, query arguments, uploads, addresses.

``Headers`` is built by the server from the raw ``(bytes, bytes)`` pairs httptools hands over;
``Headers.from_raw`` only stores the list, and names and values are decoded (latin-1) the first time
anything reads them, so a request whose handler never looks at a header pays almost nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple, TypeVar, overload
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ConnInfo", "File", "Headers", "QueryArgs", "RequestParameters", "split_target"]

_T = TypeVar("_T")

RawHeaders = list[tuple[bytes, bytes]]

# RFC 9110 field-name token; values may not contain CR, LF or NUL (header injection).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"Header names must be str, got {type(name).__name__}")
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(
            f"Invalid header name {name!r}: use letters, digits and !#$%&'*+-.^_`|~ only"
        )
    return name


def _check_value(name: str, value: object) -> str:
    if not isinstance(value, str):
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("latin-1")
        elif isinstance(value, (int, float)):
            value = str(value)
        else:
            raise TypeError(
                f"Header {name!r} value must be str, bytes or a number, got {type(value).__name__}"
            )
    assert isinstance(value, str)
    if _BAD_VALUE.search(value):
        raise ValueError(f"Header {name!r} value contains CR, LF or NUL: {value!r}")
    return value


class Headers:
    """Case-insensitive, multi-valued, ordered HTTP headers.

    ``get`` and ``[]`` give the first value; ``getall`` every value; ``items()`` every pair in the
    order received, with the original spelling of the names.
    """

    __slots__ = ("_dict", "_list", "_raw")

    def __init__(
        self, mapping_or_pairs: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None
    ) -> None:
        self._raw: RawHeaders | None = None
        self._dict: dict[str, list[str]] | None = None
        self._list: list[tuple[str, str]] | None = []
        if mapping_or_pairs:
            pairs = (
                mapping_or_pairs.items()
                if isinstance(mapping_or_pairs, (Mapping, Headers))
                else mapping_or_pairs
            )
            append = self._list.append
            for name, value in pairs:
                _check_name(name)
                append((name, _check_value(name, value)))

    @classmethod
    def from_raw(cls, raw: RawHeaders) -> Headers:
        """Wrap the server's raw pairs; nothing is decoded until a header is read."""
        self = cls.__new__(cls)
        self._raw = raw
        self._dict = None
        self._list = None
        return self

    # -- internal views ------------------------------------------------------------------------

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = self._list
        if pairs is None:
            assert self._raw is not None
            pairs = self._list = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw]
        return pairs

    def _index(self) -> dict[str, list[str]]:
        index = self._dict
        if index is None:
            index = {}
            for name, value in self._pairs():
                key = name.lower()
                if key in index:
                    index[key].append(value)
                else:
                    index[key] = [value]
            self._dict = index
        return index

    def _changed(self) -> None:
        self._raw = None
        self._dict = None

    # -- reading -------------------------------------------------------------------------------

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: _T) -> str | _T: ...
    def get(self, name: str, default: Any = None) -> Any:
        values = self._index().get(name.lower())
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` in order (an empty list when absent)."""
        return list(self._index().get(name.lower(), ()))

    getlist = getall

    def __getitem__(self, name: str) -> str:
        values = self._index().get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index()

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in the original order and spelling."""
        return list(self._pairs())

    def keys(self) -> list[str]:
        """Distinct names (lower case) in order of first appearance."""
        return list(self._index())

    def values(self) -> list[str]:
        return [v for _, v in self._pairs()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        """The number of header lines (a repeated header counts once per line)."""
        if self._list is None and self._raw is not None:
            return len(self._raw)
        return len(self._pairs())

    def __bool__(self) -> bool:
        return bool(self._raw) if self._list is None else bool(self._list)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._index() == other._index()
        if isinstance(other, Mapping):
            index = self._index()
            if len(index) != len(other):
                return False
            for key, value in other.items():
                if not isinstance(key, str):
                    return False
                got = index.get(key.lower())
                if got is None:
                    return False
                expected = value if isinstance(value, list) else [value]
                if got != [str(v) for v in expected]:
                    return False
            return True
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._pairs()!r})"

    def raw(self) -> RawHeaders:
        """The pairs encoded (latin-1) for writing; a new list each call."""
        if self._raw is not None:
            return list(self._raw)
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self._pairs()]

    def copy(self) -> Headers:
        new = Headers()
        new._list = list(self._pairs())
        return new

    # -- writing -------------------------------------------------------------------------------

    def add(self, name: str, value: Any) -> None:
        """Append one more value for ``name`` (keeps existing ones)."""
        _check_name(name)
        pair = (name, _check_value(name, value))
        pairs = self._pairs()
        pairs.append(pair)
        self._raw = None
        if self._dict is not None:
            self._dict.setdefault(name.lower(), []).append(pair[1])

    def __setitem__(self, name: str, value: Any) -> None:
        """Replace every value of ``name`` with ``value``."""
        _check_name(name)
        value = _check_value(name, value)
        key = name.lower()
        pairs = self._pairs()
        kept = [p for p in pairs if p[0].lower() != key]
        kept.append((name, value))
        self._list = kept
        self._changed()

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        if key not in self._index():
            raise KeyError(name)
        self._list = [p for p in self._pairs() if p[0].lower() != key]
        self._changed()

    def pop(self, name: str, default: Any = None) -> Any:
        """Remove every value of ``name``; return the first one (or ``default``)."""
        if name not in self:
            return default
        value = self[name]
        del self[name]
        return value

    def setdefault(self, name: str, value: Any) -> str:
        """Return the first value of ``name``, adding ``value`` first when it is absent."""
        found = self.get(name)
        if found is not None:
            return found
        self.add(name, value)
        return self[name]

    def update(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Replace each name given in ``other`` (like ``dict.update``)."""
        pairs = other.items() if isinstance(other, (Mapping, Headers)) else other
        for name, value in pairs:
            self[name] = value

    def extend(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Add every pair of ``other`` (keeps existing values)."""
        pairs = other.items() if isinstance(other, (Mapping, Headers)) else other
        for name, value in pairs:
            self.add(name, value)


class QueryArgs(Mapping[str, str]):
    """Query-string arguments: ``args["k"]`` and ``args.get("k")`` give the first value,
    ``args.getlist("k")`` every value, ``args.items()`` every (name, value) pair in order.

    Blank values (``?a=&b``) are dropped unless ``keep_blank_values=True``.
    """

    __slots__ = ("_dict", "_pairs")

    def __init__(
        self,
        query: str | Iterable[tuple[str, str]] = "",
        *,
        keep_blank_values: bool = False,
        strict_parsing: bool = False,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> None:
        if isinstance(query, str):
            pairs = (
                parse_qsl(
                    query,
                    keep_blank_values=keep_blank_values,
                    strict_parsing=strict_parsing,
                    encoding=encoding,
                    errors=errors,
                )
                if query
                else []
            )
        else:
            pairs = [(str(k), str(v)) for k, v in query]
        self._pairs: list[tuple[str, str]] = pairs
        index: dict[str, list[str]] = {}
        for key, value in pairs:
            if key in index:
                index[key].append(value)
            else:
                index[key] = [value]
        self._dict = index

    def __getitem__(self, key: str) -> str:
        return self._dict[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def getlist(self, key: str, default: list[str] | None = None) -> list[str]:
        values = self._dict.get(key)
        return list(values) if values is not None else ([] if default is None else default)

    getall = getlist

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Every (name, value) pair in query-string order (repeated names repeat)."""
        return list(self._pairs)

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._dict.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QueryArgs):
            return self._pairs == other._pairs
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QueryArgs({self._pairs!r})"


class File(NamedTuple):
    """An uploaded file from a multipart/form-data body."""

    name: str
    type: str
    body: bytes


class RequestParameters(dict[str, list[Any]]):
    """A dict of lists: ``get`` returns the first value, ``getlist`` all of them (form, files)."""

    def get(self, name: str, default: Any = None) -> Any:
        values = super().get(name)
        return values[0] if values else default

    def getlist(self, name: str, default: list[Any] | None = None) -> list[Any]:
        values = super().get(name)
        return values if values is not None else ([] if default is None else default)

    getall = getlist


class ConnInfo:
    """Facts about one connection, shared by every request on it; ``ctx`` is per connection."""

    __slots__ = (
        "client_ip",
        "client_port",
        "ctx",
        "scheme",
        "server_ip",
        "server_port",
        "ssl",
        "unix",
    )

    def __init__(
        self,
        client_ip: str = "",
        client_port: int = 0,
        server_ip: str = "",
        server_port: int = 0,
        *,
        scheme: str = "http",
        unix: str | None = None,
        ssl: bool = False,
        ctx: SimpleNamespace | None = None,
    ) -> None:
        self.client_ip = client_ip
        self.client_port = client_port
        self.server_ip = server_ip
        self.server_port = server_port
        self.scheme = scheme
        self.unix = unix
        self.ssl = ssl
        self.ctx = SimpleNamespace() if ctx is None else ctx

    @property
    def client(self) -> str:
        """``ip:port`` of the peer (IPv6 in brackets), or the socket path for UNIX sockets."""
        return _join_host(self.client_ip, self.client_port)

    @property
    def server(self) -> str:
        return self.unix or _join_host(self.server_ip, self.server_port)

    def __repr__(self) -> str:
        return (
            f"ConnInfo(client={self.client!r}, server={self.server!r}, scheme={self.scheme!r}, "
            f"ssl={self.ssl})"
        )


def _join_host(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port else host


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """The path and the query string of a request target (``b"/a/b?x=1"`` -> ``b"/a/b"``,
    ``b"x=1"``).

    Also for the forms a client rarely sends: the absolute form (``GET http://host/a?x=1``, which
    RFC 9112 3.2.2 says a server must accept) gives its path and query, and a fragment (``#...``,
    never part of a request target; llhttp lets it through) is dropped, as uvicorn drops it.
    """
    if target[:1] == b"/":
        if 35 in target:  # b"#"
            target = target.partition(b"#")[0]
    elif b"://" in target[:10]:  # absolute form
        parts = urlsplit(target)
        return parts.path or b"/", parts.query
    path, _, query = target.partition(b"?")
    return path, query
