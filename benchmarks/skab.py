"""SKAB benchmark: ``python -m benchmarks.skab [--data DIR] [--out CSV]`` is ``pumptwin bench skab``.

The protocol, the settings grid and the leave-one-group-out selection live in the package
(`pumptwin.models.skab_benchmark`), so the installed command runs without this folder.
"""

from __future__ import annotations

import sys

from pumptwin.flows.cli import app

if __name__ == "__main__":
    app(["bench", "skab", *sys.argv[1:]], prog_name="python -m benchmarks.skab")
