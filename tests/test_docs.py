"""Every ```python block of every page in docs/ runs.

Each block runs in a fresh namespace with an empty app registry (App names are unique per
process). Blocks whose info string contains ``needs-server`` are skipped: they start a real server.
``architecture.md`` is the contributors' page of internal contracts; its blocks are signatures, not
programs, so it is left out.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from runtime.testing import reset_app_registry

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOT_USER_DOCS = {"architecture.md"}
_BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name in NOT_USER_DOCS:
            continue
        text = page.read_text()
        for match in _BLOCK.finditer(text):
            info, code = match.group(1), match.group(2)
            if "needs-server" in info:
                continue
            line = text.count("\n", 0, match.start()) + 2
            found.append((page.name, line, code))
    return found


BLOCKS = _blocks()


def test_the_docs_have_examples() -> None:
    pages = {page for page, _, _ in BLOCKS}
    assert {"index.md", "quickstart.md", "blueprints.md", "middleware-and-errors.md"} <= pages


@pytest.mark.parametrize(
    ("page", "line", "code"), BLOCKS, ids=[f"{page}:{line}" for page, line, _ in BLOCKS]
)
def test_docs_example_runs(page: str, line: int, code: str) -> None:
    reset_app_registry()
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}_{line}"}
    try:
        exec(compile(code, f"{DOCS / page}:{line}", "exec"), namespace)
    finally:
        reset_app_registry()
    # an example must not leave a loop set or tasks behind
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
