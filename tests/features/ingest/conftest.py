"""Fixtures for ingestion tests: tiny readings and a recorder that stands in for `time.sleep`."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


class SleepRecorder:
    """Stands in for `time.sleep`: records the waits, sleeps not at all."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def readings(
    tags: tuple[str, ...] = ("PS01.P1.FLOW_M3S", "PS01.P1.VIB_DE_RMS", "PS02.P1.FLOW_M3S"),
    start: str = "2026-11-01T23:58:00Z",
    periods: int = 4,
    freq: str = "1min",
    value0: float = 0.0,
) -> pd.DataFrame:
    """Readings of `tags` every `freq` from `start`, in the contract's shape.

    Example (defaults): 12 rows, crossing midnight into 2026-11-02:

    | tag              | ts                        | value | quality |
    |------------------|---------------------------|-------|---------|
    | PS01.P1.FLOW_M3S | 2026-11-01 23:58:00+00:00 | 0.0   | good    |
    | PS01.P1.FLOW_M3S | 2026-11-01 23:59:00+00:00 | 1.0   | good    |
    """
    stamps = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    frames = [
        pd.DataFrame(
            {
                "tag": tag,
                "ts": stamps,
                "value": value0 + k * 100 + pd.RangeIndex(periods).to_numpy(dtype=float),
                "quality": "good",
            }
        )
        for k, tag in enumerate(tags)
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def make_readings() -> Callable[..., pd.DataFrame]:
    return readings
