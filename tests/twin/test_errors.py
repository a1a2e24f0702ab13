"""Every error class pumptwin defines derives from the one base, `twin.errors.PumptwinError`."""

from __future__ import annotations

import ast
from pathlib import Path

from pumptwin.twin.errors import PumptwinError

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("twin", "features", "models", "flows", "plant", "agents", "infra")


def error_classes(source: str) -> dict[str, list[str]]:
    """Module-level classes named ``...Error`` and the names of their bases."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
            found[node.name] = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
    return found


def project_errors() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")) if (REPO_ROOT / package).is_dir() else []:
            for name, bases in error_classes(path.read_text(encoding="utf-8")).items():
                out[f"{path.relative_to(REPO_ROOT)}:{name}"] = bases
    return out


def test_every_project_error_derives_from_the_base() -> None:
    errors = project_errors()
    assert len(errors) > 20
    names = {key.split(":")[1] for key in errors}
    orphans = [
        key
        for key, bases in errors.items()
        if key != "twin/errors.py:PumptwinError"
        and "PumptwinError" not in bases
        and not any(b in names and b != key.split(":")[1] for b in bases)
    ]
    assert orphans == [], "derive these from pumptwin.twin.errors.PumptwinError (keeping their built-in base)"


def test_the_check_finds_an_orphan() -> None:
    source = "class GoodError(PumptwinError, ValueError): ...\nclass BadError(ValueError): ...\n"
    assert error_classes(source) == {"GoodError": ["PumptwinError", "ValueError"], "BadError": ["ValueError"]}


def test_the_base_is_an_exception_and_carries_its_message() -> None:
    class Sample(PumptwinError, ValueError):
        pass

    err = Sample("pump 'P9' does not exist")
    assert isinstance(err, ValueError) and isinstance(err, Exception) and str(err) == "pump 'P9' does not exist"
