"""The project's own promises: the README's commands, CI, and the import layering."""

from __future__ import annotations

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
