"""The project's own promises: the README's commands, CI, and the import layering."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_readme_starts_with_the_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    run, test = commands[0], commands[1]
    assert "\n" not in run and "\n" not in test
    assert "pip install" in run and "vivace examples." in run and "--dev" in run
    assert "pip install" in test and ".[test]" in test and "pytest" in test
    # nothing but prose comes before the first command
    before = (ROOT / "README.md").read_text().split("```bash")[0]
    assert "```" not in before


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert test_command in lines


def test_readme_example_target_exists() -> None:
    run = _readme_commands()[0]
    target = re.search(r"vivace (\S+)", run)
    assert target is not None
    module = target.group(1).split(":")[0]
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()


# --- layering (docs/architecture.md) ------------------------------------------------------------

# Modules of each layer; a module may import only from its own layer or below.
LAYERS: list[set[str]] = [
    {"exceptions", "config", "params", "log", "datastructures", "types"},
    {"proto"},
    {
        "app",
        "routing",
        "request",
        "response",
        "cookies",
        "blueprints",
        "middleware",
        "errorpages",
        "handlers",
        "lifecycle",
        "signals",
        "websocket",
        "simple",
        "loader",
        "options",
    },
    {"server", "asgi", "testing"},
    {"supervisor"},
    {"cli", "launch", "__main__"},
]


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "runtime" or len(parts) < 2:
        return None
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    return None


def _runtime_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, is_type_checking_only) for every runtime/repl import at module level."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []

    def visit(nodes: list[ast.stmt], type_only: bool, in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.body, True, in_function)
                visit(node.orelse, type_only, in_function)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append((alias.name, type_only or in_function))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((node.module, type_only or in_function))
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list) and children and isinstance(children[0], ast.AST):
                    nested_fn = in_function or isinstance(
                        node, (ast.FunctionDef, ast.AsyncFunctionDef)
                    )
                    visit([c for c in children if isinstance(c, ast.stmt)], type_only, nested_fn)
                    if field == "handlers":
                        for handler in children:
                            visit(handler.body, type_only, nested_fn)

    visit(tree.body, False, False)
    return found


def test_runtime_never_imports_upward_or_repl_at_module_level() -> None:
    problems = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        own = _layer_of(module)
        for imported, lazy in _runtime_imports(path):
            if imported.split(".")[0] == "repl" and not (lazy and module == "runtime.cli"):
                problems.append(f"{module} imports {imported}: only runtime.cli may, lazily")
            target = _layer_of(imported)
            if own is None or target is None or lazy:
                continue
            if target > own:
                problems.append(f"{module} (layer {own}) imports {imported} (layer {target})")
    assert problems == []
