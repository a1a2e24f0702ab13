"""The assessed-feature file: written atomically, read back equal, absent before the first write."""

from pathlib import Path

import pandas as pd

from pumptwin.twin.integrity.store import assessed_path, read_assessed, write_assessed


def test_round_trip_per_line(tmp_path: Path) -> None:
    frame = pd.DataFrame({"feature_id": ["A1", "A2"], "chainage_m": [1200.0, 4300.5], "safe_pa": [5.1e6, 3.2e6]})
    assert read_assessed(tmp_path, 2) is None
    path = write_assessed(frame, tmp_path, 2)
    assert path == assessed_path(tmp_path, 2)
    pd.testing.assert_frame_equal(read_assessed(tmp_path, 2), frame)
    assert read_assessed(tmp_path, 1) is None
    assert not list(tmp_path.glob("*.tmp"))
