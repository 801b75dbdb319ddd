"""Layering contracts that keep the design honest.

Matrix:
- every module of the package sits in one layer of :data:`LAYERS` and imports (at module level, inside a
  function, or for typing only) nothing from a layer above its own;
- the runtime import graph (late imports included, typing-only imports not) has no circle;
- a function-level import in the core (outside the cli, emulator and render packages, whose commands and
  server are loaded on demand by design) says why it is late on its line or the comment line above it: only a
  heavy dependency deliberately deferred, never a circle dodged;
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
from dataclasses import dataclass
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
    imported = {name for path in _sources(module) for name in _imports(path)}
    assert sorted(name for name in imported if name.startswith(forbidden)) == []


def _sources(module: str) -> list[Path]:
    """The files of a module: ``<module>.py``, or every file of the package ``<module>/``."""
    single = PACKAGE / f"{module}.py"
    return [single] if single.exists() else sorted((PACKAGE / module).rglob("*.py"))


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
    undeclared = []
    for path in _sources(module):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        if "__all__" not in names:
            undeclared.append(path.name)
    assert undeclared == []


# ------------------------------------------------------------------------------------------------ the layers

# Bottom first. A module may import its own layer and the ones below. A package's submodules sit in its layer (the
# specs package's kinds, rules, tables and engine are all "data"). The stack loader builds TenantConfig, so the
# tenant's plain data sits with it; the factory that opens a client for it (connect) sits with the client.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("data", frozenset({"o365_mailflow", "errors", "patterns", "routing_rules", "shapes", "specs", "stack", "tenant"})),
    ("tenant access", frozenset({"client", "credentials", "snapshot", "connect", "transport", "token_source", "service_errors"})),
    ("reasoning", frozenset({"routing", "plan"})),
    ("consequences", frozenset({"impact", "graph"})),
    ("actions", frozenset({"apply", "export", "pulumi_plan", "doctor", "reconcile"})),
    ("front ends", frozenset({"render", "cli", "providers", "docgen"})),
)
# The emulator is written from the service contract: it imports its own modules and routing_rules only; the client
# side reaches it through the one factory (connect) and the CLI's `mailflow emulator` / test-relay commands.
EMULATOR = "emulator"
EMULATOR_USERS = frozenset({"connect", "cli"})
LATE_IMPORT_EXEMPT = ("cli", "emulator", "render")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted relative to the package ("plan", "cli.reconcile")
    target: str  # imported package module, same form; "o365_mailflow" for the package itself
    line: int
    late: bool  # inside a function
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "o365_mailflow"


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(dotted: str) -> str | None:
    """The package module an absolute import names (the longest prefix that is a module), or None."""
    if dotted == "o365_mailflow":
        return "o365_mailflow"
    if not dotted.startswith("o365_mailflow."):
        return None
    parts = dotted[len("o365_mailflow."):].split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in MODULES:
            return name
    return "o365_mailflow"


def _edges(name: str, path: Path) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["o365_mailflow", *name.split(".")] if path.name == "__init__.py" and name != "o365_mailflow" else (
        ["o365_mailflow"] if name == "o365_mailflow" else ["o365_mailflow", *name.split(".")[:-1]])
    edges: list[Edge] = []

    def visit(node: ast.AST, late: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True, typing_only)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), late, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), late, typing_only)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for dotted in _targets(child):
                    target = _resolve(dotted)
                    if target is not None and target != name:
                        edges.append(Edge(name, target, child.lineno, late, typing_only))
            else:
                visit(child, late, typing_only)

    def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        # `from . import server` names a submodule; `from .specs import SPECS` names the module specs
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in _dotted_modules() else base for alias in node.names]

    visit(tree, False, False)
    return edges


def _dotted_modules() -> set[str]:
    return {f"o365_mailflow.{m}" for m in MODULES if m != "o365_mailflow"}


EDGES = [edge for name, path in MODULES.items() for edge in _edges(name, path)]


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    for index, (_, members) in enumerate(LAYERS):
        if module in members or top in members:
            return index
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if m.split(".")[0] != EMULATOR and _layer(m) is None)
    assert unplaced == [], "add each module to a layer in tests/test_architecture.py LAYERS"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{e.source}:{e.line} imports {e.target} ({LAYERS[_layer(e.source)][0]} -> {LAYERS[_layer(e.target)][0]})"
        for e in EDGES
        if e.source.split(".")[0] != EMULATOR and e.target.split(".")[0] != EMULATOR
        and _layer(e.target) > _layer(e.source)  # type: ignore[operator]
    )
    assert upward == []


def test_the_emulator_is_independent_of_the_client_side() -> None:
    inward = sorted(f"{e.source}:{e.line} imports {e.target}" for e in EDGES
                    if e.source.split(".")[0] == EMULATOR and e.target.split(".")[0] not in (EMULATOR, "routing_rules"))
    outward = sorted(f"{e.source}:{e.line} imports {e.target}" for e in EDGES
                     if e.target.split(".")[0] == EMULATOR and e.source.split(".")[0] not in (EMULATOR, *EMULATOR_USERS))
    assert (inward, outward) == ([], [])


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def _runtime(edges: list[Edge]) -> list[Edge]:
    """Imports that run (not typing-only); a package's __init__ importing its own submodules is how a package is
    built, not a circle."""
    return [e for e in edges if not e.typing_only
            and not (e.source.split(".")[0] == e.target.split(".")[0] and "." not in e.source)]


def test_the_runtime_import_graph_has_no_circle() -> None:
    assert _cycles(_runtime(EDGES)) == []


def test_the_cycle_check_sees_late_imports() -> None:
    """The check must not be blind to a circle hidden in a function (the way plan <-> routing was)."""
    fake = [Edge("plan", "routing", 1, False, False), Edge("routing", "plan", 9, True, False)]
    assert _cycles(_runtime(fake)) == [["plan", "routing"]]
    assert _cycles(_runtime([*fake[:1], Edge("routing", "plan", 9, True, True)])) == []


def _has_reason(lines: list[str], line: int) -> bool:
    """``# late:`` on the import's line, or on the comment line above its block of imports."""
    at = line - 1
    if "# late:" in lines[at]:
        return True
    while at > 0 and lines[at - 1].strip().startswith(("from ", "import ")):
        at -= 1
        if "# late:" in lines[at]:
            return True
    return at > 0 and lines[at - 1].strip().startswith("# late:")


def test_late_imports_in_the_core_say_why() -> None:
    unexplained = []
    for name, path in MODULES.items():
        if name.split(".")[0] in LATE_IMPORT_EXEMPT:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not _has_reason(lines, node.lineno):
                    unexplained.append(f"{name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert sorted(set(unexplained)) == []
