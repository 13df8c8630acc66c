"""scripts/check_imports.py: the layer order and the modules a feature keeps to itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_imports.py"
_spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
assert _spec is not None and _spec.loader is not None
check_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_imports)


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def test_the_project_keeps_the_order():
    assert check_imports.problems() == []


@pytest.mark.parametrize(
    "source",
    [
        "from project.products.models import Product\n",
        "from project.products import models\n",
        "import project.products.models\n",
        "def f():\n    from project.products.sync import run\n",
    ],
)
def test_another_feature_may_not_reach_into_products(tmp_path, source):
    root = tree(tmp_path, {"orders/service.py": source})
    [problem] = check_imports.problems(root)
    assert "orders imports products." in problem and "stock" in problem


@pytest.mark.parametrize(
    "source",
    [
        "from project.products import stock\n",
        "from project.products.stock import take\n",
        "from project.products.service import invalidate_cache\n",
        "from project.products.hooks import install_held_units\n",
        "from project.users.models import User\n",
    ],
)
def test_the_public_modules_and_lower_features_are_allowed(tmp_path, source):
    root = tree(
        tmp_path, {"orders/service.py": source, "products/models.py": "from project.products import stock\n"}
    )
    assert check_imports.problems(root) == []


def test_a_lower_feature_may_not_import_a_higher_one(tmp_path):
    root = tree(tmp_path, {"products/service.py": "from project.orders import service\n"})
    [problem] = check_imports.problems(root)
    assert "products (layer 2) imports orders (layer 3)" in problem


def test_a_composition_module_may_import_any_model(tmp_path):
    root = tree(tmp_path, {"models.py": "from project.products.models import Product\n"})
    assert check_imports.problems(root) == []
