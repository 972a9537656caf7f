"""``--proxy-headers``: the client address and scheme reported by trusted proxies.

uvicorn's semantics: the headers are used only when the connection comes from an address of
``--forwarded-allow-ips`` (default ``127.0.0.1``; ``*`` trusts every peer; networks such as
``10.0.0.0/8`` work too). The client is the right-most address of ``X-Forwarded-For`` that is
not itself a trusted proxy (the left-most when all are), the scheme the last value of
``X-Forwarded-Proto``. An RFC 7239 ``Forwarded`` header, when present, is used instead of both
(its ``for=`` and ``proto=`` parameters, read the same way).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "DEFAULT_ALLOW_IPS",
    "TrustedProxies",
    "apply_to_scope",
    "forwarded",
    "forwarded_address",
    "trusted_proxies",
]

DEFAULT_ALLOW_IPS = ("127.0.0.1",)

_SCHEMES = frozenset({"http", "https", "ws", "wss"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The addresses whose forwarding headers are believed."""

    def __init__(self, allow: Iterable[str] = DEFAULT_ALLOW_IPS) -> None:
        self.everyone = False
        self.networks: list[Network] = []
        self.literals: set[str] = set()
        for item in allow:
            for entry in (part.strip() for part in item.split(",")):
                if not entry:
                    continue
                if entry == "*":
                    self.everyone = True
                    continue
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    self.literals.add(entry)  # a unix socket path or a name: compared as text

    @staticmethod
    def check(allow: Iterable[str]) -> None:
        """``ValueError`` for an entry that is neither ``*``, an address nor a network."""
        for item in allow:
            for entry in (part.strip() for part in item.split(",")):
                if entry and entry != "*":
                    try:
                        ipaddress.ip_network(entry, strict=False)
                    except ValueError:
                        raise ValueError(
                            f"--forwarded-allow-ips: {entry!r} is not an IP address or network "
                            "(as in 127.0.0.1, 10.0.0.0/8 or *)"
                        ) from None

    def trusts(self, host: str) -> bool:
        if self.everyone:
            return True
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def apply_to_scope(self, scope: dict[str, Any]) -> None:
        """The ASGI scope's ``client`` and ``scheme`` as a trusted proxy reports them."""
        apply_to_scope(scope, self)

    def client(self, hops: list[str]) -> str | None:
        """The right-most hop that is not a trusted proxy (the left-most when all are)."""
        index = self.pick(hops)
        return None if index is None else hops[index]

    def pick(self, hops: list[str]) -> int | None:
        """The index in ``hops`` of :meth:`client`'s choice."""
        if not hops:
            return None
        if not self.everyone:
            for index in range(len(hops) - 1, -1, -1):
                if not self.trusts(hops[index]):
                    return index
        return 0


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def _node(value: str) -> tuple[str, int]:
    """A ``for=`` node or ``X-Forwarded-For`` entry as address and port (0 when it has none):
    ``"[2001:db8::1]:4711"`` -> ``("2001:db8::1", 4711)``, ``1.2.3.4`` -> ``("1.2.3.4", 0)``."""
    value = _unquote(value)
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value[1:], 0
        host, rest = value[1:end], value[end + 1 :]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
        rest = ":" + port
    else:
        return value, 0
    port = rest[1:] if rest.startswith(":") else ""
    # ASCII digits only: str.isdigit() also takes "²" (a Latin-1 header byte), which int() refuses
    if port.isascii() and port.isdigit() and len(port) <= 5 and int(port) < 65536:
        return host, int(port)
    return host, 0


def forwarded(
    peer: str, get_all: Callable[[str], list[str]], trusted: TrustedProxies
) -> tuple[str | None, str | None]:
    """``(client, scheme)`` the proxy headers report for a connection from ``peer``, each
    ``None`` when not reported or not trusted. ``get_all(name)`` returns every value of a header
    (lower-case name)."""
    address, proto = forwarded_address(peer, get_all, trusted)
    return (None if address is None else address[0]), proto


def forwarded_address(
    peer: str, get_all: Callable[[str], list[str]], trusted: TrustedProxies
) -> tuple[tuple[str, int] | None, str | None]:
    """:func:`forwarded` with the client's port too, as the proxy gave it (0 when it gave
    none): the ASGI scope's ``client``."""
    if not trusted.trusts(peer):
        return None, None
    elements = [e for value in get_all("forwarded") for e in value.split(",") if e.strip()]
    nodes: list[tuple[str, int]] = []
    if elements:
        protos: list[str] = []
        for element in elements:
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                name = name.strip().lower()
                if name == "for" and value:
                    nodes.append(_node(value))
                elif name == "proto" and value:
                    protos.append(_unquote(value).lower())
    else:
        # an entry may carry a port (1.2.3.4:5555, [2001:db8::1]:4711), kept as uvicorn does
        nodes = [_node(h) for v in get_all("x-forwarded-for") for h in v.split(",") if h.strip()]
        protos = [p.strip().lower() for v in get_all("x-forwarded-proto") for p in v.split(",")]
    proto = protos[-1] if protos and protos[-1] in _SCHEMES else None
    index = trusted.pick([host for host, _ in nodes])
    return (None if index is None else nodes[index]), proto


_CACHE: dict[object, TrustedProxies] = {}


def trusted_proxies(allow: str | Iterable[str]) -> TrustedProxies:
    """``TrustedProxies`` for a ``FORWARDED_ALLOW_IPS`` value (a comma-separated string or a
    list), made once per distinct value."""
    key: object = allow if isinstance(allow, str) else tuple(allow)
    found = _CACHE.get(key)
    if found is None:
        found = TrustedProxies([allow] if isinstance(allow, str) else allow)
        if len(_CACHE) < 64:
            _CACHE[key] = found
    return found


def apply_to_scope(scope: dict[str, Any], trusted: TrustedProxies) -> None:
    """An ASGI scope's ``client`` and ``scheme`` as the trusted proxy reports them (uvicorn's
    ``ProxyHeadersMiddleware``): ``client`` becomes ``(host, port)``, the port the proxy gave
    with the address, else 0."""
    client = scope.get("client")
    peer = client[0] if client else ""
    headers: list[tuple[bytes, bytes]] = scope["headers"]

    def get_all(name: str) -> list[str]:
        key = name.encode("latin-1")
        return [value.decode("latin-1") for header, value in headers if header == key]

    address, proto = forwarded_address(peer, get_all, trusted)
    if address is not None and address[0]:
        scope["client"] = address
    if proto:
        scope["scheme"] = "https" if proto in ("https", "wss") else "http"
