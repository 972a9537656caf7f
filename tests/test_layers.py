"""The layers of docs/architecture.md, as import-linter contracts (``[tool.importlinter]`` in
pyproject.toml), checked on the tree and shown to catch an inserted upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in ("runtime", "repl"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tree


@pytest.mark.timeout(180)
def test_the_layer_contracts_hold(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        ("routing.py", "import runtime.server.http", "runtime's layers only point down"),
        ("proto/h1.py", "import runtime.request", "the protocol core and the app model"),
        ("supervisor/manager.py", "import runtime.routing", "the supervisor knows what it serves"),
        ("server/serve.py", "import repl.session", "runtime never imports the console"),
        ("request.py", "from runtime.proto import h1", "the app model never sees the wire"),
    ],
)
def test_an_inserted_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, upward: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / "runtime" / module
    path.write_text(path.read_text() + f"\n{upward}  # inserted by the test\n")
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout[result.stdout.index("Broken contracts") :]
    assert contract in " ".join(broken.split()), result.stdout
