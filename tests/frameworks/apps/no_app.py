"""A module with no ``app`` (nor anything servable) in it."""

from __future__ import annotations

GREETING = "hello"
