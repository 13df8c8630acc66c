"""Fail on an import that breaks the dependency order between the app's packages.

Every import in project/ (module level or inside a function) is read with `ast`:
- a feature package imports only itself, shared modules and features in LOWER layers
  (so there is no cycle between features, and no two features of one layer know each other);
- a shared module (project/*.py) imports no feature;
- a feature listed in PUBLIC is imported by other features through those modules only
  (products' rows are written by products alone: others go through `products.stock`);
- only the composition modules (the app factory, the schema, the seed command) import any.

A lower feature that needs something of a higher one defines a hook the higher one fills
(README, Architecture). Run: python scripts/check_imports.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "project"

# The dependency order, bottom first: a feature may import the features of the layers below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("users",),
    ("auth",),
    ("products", "posts"),
    ("orders", "projects"),
    ("ops", "rpc"),
)
COMPOSITION = {"project", "project.models", "project.seed"}
# The modules other features may import of these features (their models are theirs alone).
PUBLIC: dict[str, frozenset[str]] = {"products": frozenset({"stock", "service", "hooks"})}
LAYER_OF = {feature: level for level, features in enumerate(LAYERS) for feature in features}


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from project import x` or `from project.<feature> import x` may name a submodule:
            # judge each name as one.
            as_submodules = base == "project" or (base.startswith("project.") and base.count(".") == 1)
            names = [f"{base}.{alias.name}" for alias in node.names] if as_submodules else [base]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "project" or name.startswith("project.")]


def feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYER_OF else None


def private_part(target: str, feature: str) -> str | None:
    """The module of `feature` that `target` names if other features may not import it."""
    public = PUBLIC.get(feature)
    parts = target.split(".")
    if public is None or len(parts) < 3 or parts[2] in public:
        return None
    return parts[2]


def problems(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        if module.startswith("project.rpc.generated") or module in COMPOSITION:
            continue
        mine = feature_of(module)
        for line, target in imported_modules(path, module):
            theirs = feature_of(target)
            if theirs is None or theirs == mine:
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            if mine is None:
                found.append(f"{where}: shared module {module} imports feature {theirs} ({target})")
            elif LAYER_OF[theirs] >= LAYER_OF[mine]:
                found.append(
                    f"{where}: {mine} (layer {LAYER_OF[mine]}) imports {theirs} (layer {LAYER_OF[theirs]}); "
                    "only lower layers may be imported: define a hook in the lower feature instead"
                )
            elif (private := private_part(target, theirs)) is not None:
                allowed = ", ".join(sorted(PUBLIC[theirs]))
                found.append(f"{where}: {mine} imports {theirs}.{private}; other features use {allowed} only")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem)
    order = " -> ".join("/".join(layer) for layer in LAYERS)
    print(f"import graph: {len(found)} problem(s); order {order}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
