"""Layering contracts that keep the design honest.

Matrix:
- the emulator is written from the service contract: it imports nothing from o365_mailflow outside itself, except
  the mail-flow rules (routing_rules), which import nothing from the package at all (docs/architecture.md);
- `mailflow validate` stays offline: importing its command does not import the HTTP client or requests;
- the lower layers (specs, stack) import neither the client nor the front doors (cli, providers);
- every public module declares ``__all__``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "o365_mailflow"


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if module_parts[-1] == "__init__":
        module_parts = module_parts[:-1]
        package_parts = module_parts
    else:
        package_parts = module_parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def test_the_emulator_imports_nothing_from_the_client_side_of_the_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            name
            for name in _imports(path)
            if name.startswith("o365_mailflow")
            and not name.startswith(("o365_mailflow.emulator", "o365_mailflow.routing_rules"))
        )
        for path in (PACKAGE / "emulator").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_shared_mail_flow_rules_import_only_the_standard_library() -> None:
    """The emulator's SMTP front door and `mailflow route` share routing_rules; if it imported specs (or anything
    else of ours), the emulator would inherit the client's normalisation through it."""
    imported = _imports(PACKAGE / "routing_rules.py")
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    assert sorted(name for name in imported if name.split(".")[0] not in allowed) == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("specs", ("o365_mailflow.client", "o365_mailflow.cli", "o365_mailflow.providers", "requests")),
        ("stack", ("o365_mailflow.client", "o365_mailflow.cli", "o365_mailflow.providers", "requests")),
    ],
    ids=["specs", "stack"],
)
def test_lower_layers_do_not_import_higher_ones(module: str, forbidden: tuple[str, ...]) -> None:
    imported = _imports(PACKAGE / f"{module}.py")
    assert sorted(name for name in imported if name.startswith(forbidden)) == []


def test_the_validate_command_does_not_load_the_http_stack() -> None:
    code = (
        "import sys, o365_mailflow.cli.validate; "
        "print(sorted(m for m in sys.modules if m in ('requests', 'msal', 'o365_mailflow.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


PUBLIC_MODULES = ["errors", "tenant", "plan", "specs", "stack", "client", "credentials", "snapshot", "routing", "routing_rules"]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=PUBLIC_MODULES)
def test_public_modules_declare_their_exports(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "__all__" in names
