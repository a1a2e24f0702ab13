"""`feast apply` imports the Feast definitions: they must not pull in the solver, numba or the orchestrator.

(Feast itself imports torch, so torch is not checked.)
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numba", "prefect", "mlflow", "pumptwin.twin.hydraulic.solver", "pumptwin.plant")


def test_definitions_import_neither_the_solver_nor_heavy_libraries():
    code = (
        "import sys, pumptwin.features.definitions\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
