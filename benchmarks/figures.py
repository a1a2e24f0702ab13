"""Where a benchmark writes its figures: ``<PUMPTWIN_HOME>/bench/<name>.json`` unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_figures(record: dict[str, Any], name: str, out: Path | None = None) -> Path:
    """Write a benchmark's JSON record (to ``out``, default ``<bench_dir>/<name>.json``); return the path."""
    if out is None:
        from pumptwin.flows.settings import get_settings

        out = Path(get_settings().bench_dir) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return out
