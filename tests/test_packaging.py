"""The project installs as one namespace, `pumptwin.*`, and its models load beside other packages.

The wheel test builds the project's wheel, installs it into a fresh virtual environment beside a
dummy distribution that owns a top-level `models` package (as other projects do), logs and
registers a detector there, and loads it from MLflow in a new process. Dependencies come from the
test's own environment through a path file; the project itself only from the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("twin", "plant", "features", "models", "flows", "agents", "infra", "control")


def setuptools_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Every package folder under the design card's folders, by its installed name."""
    found = {}
    for folder in FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO)
            found["pumptwin." + ".".join(rel.parts)] = init.parent
    return found


def test_every_package_folder_is_installed_under_pumptwin():
    config = setuptools_config()
    assert sorted(config["packages"]) == sorted(package_folders())
    assert all(name.startswith("pumptwin.") for name in config["packages"])
    assert config["package-dir"] == {f"pumptwin.{folder}": folder for folder in FOLDERS}


def test_benchmarks_and_tests_are_not_installed():
    packages = setuptools_config()["packages"]
    assert not any(p.split(".")[1] in {"benchmarks", "tests"} for p in packages)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the sources, so setuptools' build folder neither lands in the work tree nor
    # carries modules that no longer exist into the wheel.
    src = out / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(".venv", ".git", ".pumptwin", "build", "*.egg-info", "__pycache__", ".*_cache"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (found,) = out.glob("pumptwin-*.whl")
    return found


def test_wheel_holds_one_top_level_package_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pumptwin"}
    assert "pumptwin/twin/networks/reference_pipeline.inp" in names
    assert "pumptwin/plant/scenarios/developing_faults.yaml" in names
    assert "pumptwin/features/feature_store.yaml" in names


def dummy_models_wheel(folder: Path) -> Path:
    """A wheel of `othermodels`, a distribution that owns a top-level `models` package."""
    src = folder / "othermodels"
    (src / "models").mkdir(parents=True)
    (src / "models" / "__init__.py").write_text('"""Another project\'s models."""\nOWNER = "othermodels"\n')
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "othermodels"
            version = "1.0"
            [tool.setuptools]
            packages = ["models"]
            """
        )
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(src)],
        check=True,
        capture_output=True,
    )
    (found,) = folder.glob("othermodels-*.whl")
    return found


TRAIN = """
import numpy as np, pandas as pd
from pumptwin.models.detectors import PcaT2QDetector
from pumptwin.models.registry import Lineage, Tracking, log_training_run
from datetime import UTC, datetime, timedelta
import sys
root = sys.argv[1]
t0 = datetime(2026, 1, 1, tzinfo=UTC)
x = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
x.to_parquet(f"{root}/x.parquet")
lineage = Lineage("svc", ("view",), t0, t0 + timedelta(days=1), t0 + timedelta(days=1), t0 + timedelta(days=2),
                  200, 0, "sha256:0", None)
log_training_run(Tracking(f"sqlite:///{root}/mlflow.db", f"{root}/artifacts"), experiment="packaging",
                 model=PcaT2QDetector(n_components=2).fit(x), params={}, metrics={}, plots={}, lineage=lineage,
                 input_example=x.head(3), registered_name="packaged-detector")
"""

LOAD = """
import sys, numpy as np, pandas as pd
import models
assert models.OWNER == "othermodels", models.__file__
from pumptwin.models.registry import Tracking, load_model
root = sys.argv[1]
model = load_model(Tracking(f"sqlite:///{root}/mlflow.db", f"{root}/artifacts"), "packaged-detector", version=1)
x = pd.read_parquet(f"{root}/x.parquet")
assert type(model).__module__ == "pumptwin.models.detectors", type(model).__module__
assert np.all(np.isfinite(model.decision_function(x)))
import pumptwin.models
assert "site-packages" in pumptwin.models.__file__, pumptwin.models.__file__
print("loaded", type(model).__name__)
"""


def test_registered_model_loads_from_the_wheel_beside_another_models_package(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Dependencies from this environment, after the fresh one's own packages on sys.path. Its
    # editable hook is a .pth file that only site directories run, so it is not active there.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    subprocess.run([*install, str(wheel), str(dummy_models_wheel(tmp_path))], check=True, capture_output=True)

    store = tmp_path / "store"
    store.mkdir()
    for script in (TRAIN, LOAD):
        done = subprocess.run(
            [str(python), "-c", script, str(store)], capture_output=True, text=True, cwd=tmp_path, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded PcaT2QDetector" in done.stdout
