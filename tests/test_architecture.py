"""Layering rules that import-linter also enforces, checked on the source text.

The core (`twin`, `features`, `models`, `agents`) never imports prefect or mlflow; only
`models/registry.py` imports mlflow. The twin never imports feast or haystack. Importing the core
and the settings does no work: no folder appears, no orchestrator or tracking server is loaded.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ("twin", "features", "models", "agents")
MLFLOW_BOUNDARY = REPO_ROOT / "models" / "registry.py"


def forbidden_for(path: Path) -> set[str]:
    """Top-level packages that the module at `path` must not import."""
    package = path.relative_to(REPO_ROOT).parts[0]
    forbidden = {"prefect", "mlflow"}
    if path == MLFLOW_BOUNDARY:
        forbidden.discard("mlflow")
    if package == "twin":
        forbidden |= {"feast", "haystack"}
    return forbidden


def imported_top_level(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def core_modules() -> list[Path]:
    return sorted(
        path
        for package in CORE_PACKAGES
        if (REPO_ROOT / package).is_dir()
        for path in (REPO_ROOT / package).rglob("*.py")
    )


def test_imported_top_level_finds_every_import_form():
    source = "import prefect\nimport mlflow.pyfunc as m\nfrom feast import FeatureStore\nfrom . import x\n"
    assert imported_top_level(source, "<test>") == [(1, "prefect"), (2, "mlflow"), (3, "feast")]


def test_core_does_not_import_orchestration_or_tracking():
    modules = core_modules()
    assert modules, "no core modules found: is REPO_ROOT right?"
    violations = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in modules
        for line, name in imported_top_level(path.read_text(encoding="utf-8"), str(path))
        if name in forbidden_for(path)
    ]
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_mlflow_boundary_is_the_only_exception():
    assert forbidden_for(MLFLOW_BOUNDARY) == {"prefect"}
    assert forbidden_for(REPO_ROOT / "models" / "train.py") == {"prefect", "mlflow"}
    assert forbidden_for(REPO_ROOT / "twin" / "physics.py") == {"prefect", "mlflow", "feast", "haystack"}


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_core_package_exists_with_a_docstring(package):
    init = REPO_ROOT / package / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{package}/__init__.py needs a docstring"


def test_import_has_no_side_effects(tmp_path):
    code = (
        "import json, sys\n"
        "import twin, features, models, agents, flows, flows.settings\n"
        "heavy = ('prefect', 'mlflow', 'feast', 'haystack')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPTWIN_") and k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], "importing the core or the settings loaded a heavy service library"
    assert list(tmp_path.iterdir()) == [], "importing created files in the working directory"
