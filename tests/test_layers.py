"""The product's import graph keeps its layers (docs/design.md, "How data moves").

Read from the source with `ast`, not by importing, so a function-local import counts as much
as a module-level one:

Module names are as installed, `crmsync.<folder>.<module>`.

- `state/` imports nothing else of crmsync; `rules/` and `connectors/` import only `state/`;
  `sync/` may import everything.
- Nothing imports `sandbox/` except the `demo` and `sandbox` commands (sync/cli.py, sync/demo.py).
- No import cycle between product modules, counting function-local imports (an import hidden
  in a function only postpones a cycle to run time). `if TYPE_CHECKING:` imports do not count:
  they never run.
- A function-local import is allowed only for an optional or heavy part, listed in `LAZY`
  with the reason. Anything else belongs at the top of the module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("state", "rules", "connectors", "sync")
OURS = (*PRODUCT, "sandbox")

# Which of our packages each product package may import.
ALLOWED = {
    "state": {"state"},
    "rules": {"rules", "state"},
    "connectors": {"connectors", "state"},
    "sync": {"sync", "state", "rules", "connectors", "sandbox"},
}
SANDBOX_IMPORTERS = {"crmsync.sync.cli", "crmsync.sync.demo"}

# Function-local imports that are allowed: (importing module, imported module prefix) -> why.
LAZY: dict[tuple[str, str], str] = {
    # The CLI loads a command's machinery only when that command runs: `crmsync --help` and
    # a mistyped option stay fast.
    ("crmsync.sync.cli", "crmsync.sync"): "command bodies",
    ("crmsync.sync.cli", "crmsync.rules"): "command bodies (--rule check)",
    ("crmsync.sync.cli", "crmsync.sandbox"): "the sandbox command",
    # The demo needs the emulators and both official clients pointed at them.
    ("crmsync.sync.demo", "crmsync.sandbox"): "the demo command",
    ("crmsync.sync.demo", "simple_salesforce"): "the demo command",
    ("crmsync.sync.demo", "hubspot"): "the demo command",
    ("crmsync.sync.demo", "crmsync.connectors.salesforce.transport"): "the demo command",
    # One CRM's connector (and its SDK) loads only when a config names that CRM.
    ("crmsync.sync.config", "crmsync.connectors.salesforce"): "per-CRM connector import",
    ("crmsync.sync.config", "crmsync.connectors.hubspot"): "per-CRM connector import",
    # rich's live progress bar only on a terminal.
    ("crmsync.sync.run", "crmsync.sync.progress"): "rich progress",
    ("crmsync.sync.plan", "rich"): "rich table rendering of a plan",
    # TODO(write-back split): sync/plan.py's outbox imports go to the module top there.
    ("crmsync.sync.plan", "crmsync.state"): "to be hoisted by the write-back split",
    # JWT bearer auth only: the private key is parsed when that flow is configured.
    ("crmsync.connectors.salesforce.client", "cryptography"): "JWT auth",
    # The optional mail-server check ([rules.bouncing_contact] check_deliverability).
    ("crmsync.rules.bouncing_contacts", "dns"): "optional deliverability check",
    ("crmsync.rules.bouncing_contacts", "idna"): "optional deliverability check",
    ("crmsync.rules.bouncing_contacts", "email_validator"): "optional deliverability check",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module (or module.name), dotted and absolute
    line: int
    local: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in (*PRODUCT, "sandbox"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods["crmsync." + ".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: list[Import] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if node.level:
            base = module.split(".") if is_pkg else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        return [f"{mod}.{a.name}" for a in node.names]

    def visit(node: ast.AST, local: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for b in child.body:
                    visit_one(b, local, True)
                for b in child.orelse:
                    visit_one(b, local, type_only)
                continue
            visit_one(child, local, type_only)

    def visit_one(child: ast.AST, local: bool, type_only: bool) -> None:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for t in targets(child):
                found.append(Import(module, t, child.lineno, local, type_only))
        inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        visit(child, inner, type_only)

    visit(tree, False, False)
    return found


def _resolve(target: str) -> str | None:
    """The product or sandbox module an import target names (longest prefix), or None."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in MODULES:
            return name
    return None


def _pkg(dotted: str) -> str | None:
    """The folder (package) a dotted name of ours lives in: crmsync.<pkg>...; None if not ours."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "crmsync" and len(parts) > 1 else None


def _product_imports() -> list[Import]:
    out = []
    for module, path in MODULES.items():
        if _pkg(module) in PRODUCT:
            out.extend(_imports(module, path))
    return out


IMPORTS = _product_imports()


def test_every_product_package_imports_only_the_layers_below_it():
    wrong = []
    for imp in IMPORTS:
        top = _pkg(imp.target)
        if top not in OURS:
            continue
        src = _pkg(imp.source)
        assert src is not None
        if top not in ALLOWED[src]:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert wrong == []


def test_only_the_demo_and_sandbox_commands_import_the_sandbox():
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if _pkg(imp.target) == "sandbox" and imp.source not in SANDBOX_IMPORTERS
    ]
    assert wrong == []
    # and there they load only when the command runs
    eager = [
        f"{imp.source}:{imp.line}"
        for imp in IMPORTS
        if _pkg(imp.target) == "sandbox" and not imp.local
    ]
    assert eager == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def test_no_import_cycles_even_through_function_local_imports():
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        target = _resolve(imp.target)
        if imp.type_only or target is None or target == imp.source:
            continue
        # `from pkg import name` makes pkg/__init__ run, so the package counts as imported;
        # a submodule import also runs its parents' __init__, which is part of the cycle check
        edges.setdefault(imp.source, set()).add(target)
    assert _cycles(edges) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_local_imports_only_for_optional_parts():
    unexpected = []
    for imp in IMPORTS:
        if not imp.local or imp.type_only:
            continue
        allowed = any(
            imp.source == src and (imp.target == prefix or imp.target.startswith(prefix + "."))
            for src, prefix in LAZY
        )
        if not allowed:
            unexpected.append(f"{imp.source}:{imp.line} imports {imp.target} inside a function")
    assert unexpected == [], "move these to the top of the module, or add them to LAZY with why"


def test_the_walk_finds_imports_of_every_kind():
    """The parser sees module-level, relative, local and TYPE_CHECKING imports."""
    run = [i for i in IMPORTS if i.source == "crmsync.sync.run"]
    assert any(i.target.startswith("crmsync.state.") and not i.local for i in run)
    assert any(i.target == "crmsync.sync.progress.RichProgress" and i.local for i in run)
    assert any(i.local for i in IMPORTS if i.source == "crmsync.sync.cli")
