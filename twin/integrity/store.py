"""Where the assessed in-line inspection features live between the integrity flow and the what-ifs.

The integrity flow writes the latest assessment of the line's features (the canonical feature
frame of `twin.integrity.ili` plus the columns of `twin.integrity.assessment.assess_features`)
as one Parquet file per line; the what-if flow and the recommender read it to check the pressure
along the line against each feature's safe pressure. Writes go through a temporary file and a
rename, so a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ASSESSED_FILE = "assessed_line{line:02d}.parquet"
"""File name of a line's assessed features in the integrity folder."""


def assessed_path(folder: Path, line: int = 1) -> Path:
    """Path of a line's assessed features in ``folder``."""
    return folder / ASSESSED_FILE.format(line=line)


def write_assessed(assessed: pd.DataFrame, folder: Path, line: int = 1) -> Path:
    """Write a line's assessed features atomically; returns the file written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = assessed_path(folder, line)
    tmp = path.with_suffix(".tmp")
    assessed.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_assessed(folder: Path, line: int = 1) -> pd.DataFrame | None:
    """A line's assessed features, or None when the line has not been assessed."""
    path = assessed_path(folder, line)
    return pd.read_parquet(path) if path.exists() else None
