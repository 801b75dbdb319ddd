"""Helpers for the diagram tests: Mermaid's own parser (node + the packages of tests/graph/mermaid) and Graphviz.

Both are test-tier tools installed by .ci/install-mermaid and .ci/install-graphviz. Outside CI a missing tool skips
the test with the command that installs it; in CI (CI=true) it fails, so a green run always parsed and drew.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MERMAID_DIR = Path(__file__).parent / "mermaid"


def _missing(what: str, fix: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: {fix} must run before pytest")
    pytest.skip(f"{what} is not installed here (run {fix})")


def mermaid_parse(tmp_path: Path, *diagrams: str) -> list[dict[str, object]]:
    """Mermaid's parser verdict on each diagram: {"ok": bool, "type"|"error": ...}."""
    node = shutil.which("node")
    if node is None or not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        _missing("Mermaid's parser (node and tests/graph/mermaid/node_modules)", ".ci/install-mermaid")
    files = []
    for i, text in enumerate(diagrams):
        path = tmp_path / f"diagram{i}.mmd"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    done = subprocess.run([str(node), str(MERMAID_DIR / "parse.mjs"), *files], capture_output=True, text=True,
                          timeout=120, check=False)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(diagrams), done.stderr
    return results


def require_dot() -> None:
    if shutil.which("dot") is None:
        _missing("Graphviz's dot", ".ci/install-graphviz")


# The scratch project on an emulated tenant (tests/impact/conftest.py) serves the graph tests too.
from impact.conftest import project  # noqa: E402,F401
