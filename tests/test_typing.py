"""The package type-checks with mypy under [tool.mypy] in pyproject.toml (every function typed, strict optional).

Run by the suite, so CI and the README's test command fail on any type error, like on a failing test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_error_in_the_package() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "o365_mailflow"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
