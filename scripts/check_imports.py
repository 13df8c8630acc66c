"""Fail on an import that breaks the dependency order between the app's packages.

Every import in project/ (module level or inside a function) is read with `ast`:
- a feature package imports only itself, shared modules and features in LOWER layers
  (so there is no cycle between features, and no two features of one layer know each other);
- a shared module (project/*.py) imports no feature;
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
            # `from project import x` may name a submodule: judge each name as one.
            names = [f"{base}.{alias.name}" for alias in node.names] if base == "project" else [base]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "project" or name.startswith("project.")]


def feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYER_OF else None


def problems() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        if module.startswith("project.rpc.generated") or module in COMPOSITION:
            continue
        mine = feature_of(module)
        for line, target in imported_modules(path, module):
            theirs = feature_of(target)
            if theirs is None or theirs == mine:
                continue
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if mine is None:
                found.append(f"{where}: shared module {module} imports feature {theirs} ({target})")
            elif LAYER_OF[theirs] >= LAYER_OF[mine]:
                found.append(
                    f"{where}: {mine} (layer {LAYER_OF[mine]}) imports {theirs} (layer {LAYER_OF[theirs]}); "
                    "only lower layers may be imported: define a hook in the lower feature instead"
                )
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
