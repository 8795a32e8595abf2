"""The committed completion scripts match the CLI, and the bash one really completes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ctl.cli.completion_cmd import GENERATORS, REPO_COMPLETIONS, generate
from ctl.cli.main import app


@pytest.mark.parametrize("shell", sorted(GENERATORS))
def test_committed_scripts_are_current(shell: str) -> None:
    path = REPO_COMPLETIONS / GENERATORS[shell][1]
    assert path.exists(), f"{path} missing: run 'centaurusctl completion --write'"
    assert path.read_text() == generate(shell, app), f"{path} is stale: run 'centaurusctl completion --write'"


def _complete(words: list[str]) -> list[str]:
    script = REPO_COMPLETIONS / "centaurusctl.bash"
    arr = " ".join(f"'{w}'" for w in words)
    cmd = f'source {script}; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _centaurusctl; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, timeout=20)
    return out.stdout.split()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_kinds_and_options() -> None:
    assert _complete(["centaurusctl", "app"]) == ["apply"]
    assert set(_complete(["centaurusctl", "get", "deplo"])) == {"deploy", "deployment", "deployments"}
    assert "use-context" in _complete(["centaurusctl", "config", "use"])
    assert "--output" in _complete(["centaurusctl", "get", "--out"])
    assert _complete(["centaurusctl", "nosuchcommand", "x"]) == []
