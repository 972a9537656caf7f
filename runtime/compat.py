"""What differs between the supported Pythons (3.10 to 3.13), in one place."""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["assert_never"]

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # pragma: no cover - Python 3.10

    def assert_never(arg: NoReturn, /) -> NoReturn:
        """``typing.assert_never`` of Python 3.11: a branch the type checker proved unreachable."""
        raise AssertionError(f"Expected code to be unreachable, but got: {arg!r}")
