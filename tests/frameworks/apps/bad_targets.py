"""Targets vivace must refuse with one message saying what it found and what it expects."""

from __future__ import annotations

import json  # noqa: F401  (``bad_targets:json`` names a module)

settings = {"debug": True}  # not callable
answer = 42  # not callable


async def two_args(scope: object, receive: object) -> None:
    """A coroutine function with the wrong signature: ASGI 3 takes (scope, receive, send)."""


def four_args(a: object, b: object, c: object, d: object) -> None:
    """No web interface takes four required arguments."""
