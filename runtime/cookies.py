"""Response cookies: ``Cookie`` (one ``Set-Cookie`` line) and ``CookieJar`` (a response's cookies).

Names must be RFC 6265 tokens and values cookie-octets (optionally in double quotes); anything else
is rejected with a ``ValueError`` saying what to change, instead of being silently mangled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

__all__ = ["Cookie", "CookieJar"]

_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(
    r'[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*|"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*"'
)
_ATTR = re.compile(r"[^\x00-\x1f\x7f;]*")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


class Cookie:
    """One cookie to set; ``encode()`` renders the ``Set-Cookie`` value."""

    __slots__ = (
        "comment",
        "domain",
        "expires",
        "httponly",
        "key",
        "max_age",
        "partitioned",
        "path",
        "samesite",
        "secure",
        "value",
    )

    def __init__(
        self,
        key: str,
        value: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        max_age: int | None = None,
        expires: datetime | None = None,
        httponly: bool = False,
        samesite: str | None = "Lax",
        partitioned: bool = False,
        comment: str | None = None,
    ) -> None:
        if not isinstance(key, str) or _NAME.fullmatch(key) is None:
            raise ValueError(
                f"Invalid cookie name {key!r}: use letters, digits and !#$%&'*+-.^_`|~ only"
            )
        if not isinstance(value, str):
            raise TypeError(f"Cookie {key!r} value must be a str, got {type(value).__name__}")
        if _VALUE.fullmatch(value) is None:
            raise ValueError(
                f"Invalid value for cookie {key!r}: {value!r} contains a space, comma, semicolon, "
                "backslash, double quote or non-ASCII character; encode it first, e.g. with "
                "urllib.parse.quote(value)"
            )
        for attr, text in (("path", path), ("domain", domain), ("comment", comment)):
            if text is not None and _ATTR.fullmatch(text) is None:
                raise ValueError(f"Cookie {key!r} {attr} {text!r} contains ';' or a control char")
        if samesite is not None:
            normal = _SAMESITE.get(str(samesite).lower())
            if normal is None:
                raise ValueError(
                    f"Cookie {key!r}: samesite must be 'Lax', 'Strict', 'None' or None, "
                    f"got {samesite!r}"
                )
            samesite = normal
            if samesite == "None" and not secure:
                raise ValueError(f"Cookie {key!r}: samesite='None' requires secure=True")
        if partitioned and not secure:
            raise ValueError(f"Cookie {key!r}: partitioned=True requires secure=True")
        if key.startswith("__Secure-") and not secure:
            raise ValueError(f"Cookie {key!r}: the __Secure- prefix requires secure=True")
        if key.startswith("__Host-") and (not secure or path != "/" or domain is not None):
            raise ValueError(
                f"Cookie {key!r}: the __Host- prefix requires secure=True, path='/' and no domain"
            )
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise TypeError(f"Cookie {key!r}: max_age must be an int number of seconds")
        if expires is not None and not isinstance(expires, datetime):
            raise TypeError(f"Cookie {key!r}: expires must be a datetime")
        self.key = key
        self.value = value
        self.path = path
        self.domain = domain
        self.secure = secure
        self.max_age = max_age
        self.expires = expires
        self.httponly = httponly
        self.samesite = samesite
        self.partitioned = partitioned
        self.comment = comment

    def encode(self) -> str:
        out = [f"{self.key}={self.value}"]
        if self.path:
            out.append(f"Path={self.path}")
        if self.domain:
            out.append(f"Domain={self.domain}")
        if self.max_age is not None:
            out.append(f"Max-Age={self.max_age}")
        if self.expires is not None:
            expires = self.expires
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=timezone.utc)
            from email.utils import format_datetime  # on first use (a cookie with an expiry)

            out.append(f"Expires={format_datetime(expires.astimezone(timezone.utc), usegmt=True)}")
        if self.secure:
            out.append("Secure")
        if self.httponly:
            out.append("HttpOnly")
        if self.samesite:
            out.append(f"SameSite={self.samesite}")
        if self.partitioned:
            out.append("Partitioned")
        if self.comment:
            out.append(f"Comment={self.comment}")
        return "; ".join(out)

    __str__ = encode

    def __repr__(self) -> str:
        return f"<Cookie {self.encode()!r}>"


class CookieJar:
    """The cookies a response sets, one ``Set-Cookie`` header each, in the order added."""

    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        self._cookies: list[Cookie] = []

    def add_cookie(
        self,
        key: str,
        value: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        max_age: int | None = None,
        expires: datetime | None = None,
        httponly: bool = False,
        samesite: str | None = "Lax",
        partitioned: bool = False,
        comment: str | None = None,
    ) -> Cookie:
        """Set a cookie; one with the same key, path and domain is replaced."""
        cookie = Cookie(
            key,
            value,
            path=path,
            domain=domain,
            secure=secure,
            max_age=max_age,
            expires=expires,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
            comment=comment,
        )
        self._remove(key, path, domain)
        self._cookies.append(cookie)
        return cookie

    def get_cookie(self, key: str, path: str = "/", domain: str | None = None) -> Cookie | None:
        for cookie in self._cookies:
            if (cookie.key, cookie.path, cookie.domain) == (key, path, domain):
                return cookie
        return None

    def delete_cookie(
        self, key: str, *, path: str = "/", domain: str | None = None, secure: bool = True
    ) -> None:
        """Tell the browser to drop a cookie (an empty value with ``Max-Age=0``)."""
        self._remove(key, path, domain)
        self._cookies.append(
            Cookie(
                key,
                "",
                path=path,
                domain=domain,
                secure=secure,
                max_age=0,
                samesite=None,
            )
        )

    def _remove(self, key: str, path: str, domain: str | None) -> None:
        self._cookies = [
            c for c in self._cookies if (c.key, c.path, c.domain) != (key, path, domain)
        ]

    def __iter__(self) -> Iterator[Cookie]:
        return iter(self._cookies)

    def __len__(self) -> int:
        return len(self._cookies)

    def __bool__(self) -> bool:
        return bool(self._cookies)

    def __contains__(self, key: object) -> bool:
        return any(c.key == key for c in self._cookies)

    def __getitem__(self, key: str) -> Cookie:
        for cookie in self._cookies:
            if cookie.key == key:
                return cookie
        raise KeyError(key)

    def header_values(self) -> list[str]:
        return [c.encode() for c in self._cookies]

    def __repr__(self) -> str:
        return f"CookieJar({self._cookies!r})"
