"""Constants and unit factors live in `twin.units` only; UTC moments are read by `twin.times` only."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from pumptwin.twin import units
from pumptwin.twin.times import STAMP_FORMAT, UtcTimeError, to_utc, utc_or_none, utc_stamp

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("twin", "features", "models", "flows", "plant", "agents", "infra")
CONSTANTS = {9.80665, 998.2, 86_400.0, 3_600.0, 101_325.0, 2_339.0, 1e5}
"""Values that are facts kept in `twin.units`: a module-level name bound to one of them is a copy."""
FACT_NAME = re.compile(r"(^|_)(G|GRAVITY|DENSITY|DAY|HOUR|BAR|PA_PER|M3H|SECONDS|RHO)(_|$)")


def module_constants(path: Path) -> list[tuple[int, str, object]]:
    """(line, name, value) of every module-level NAME = <number> in a file."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        value = node.value
        if isinstance(value, ast.Constant) and type(value.value) in (int, float):
            out += [(node.lineno, t.id, value.value) for t in targets if isinstance(t, ast.Name)]
    return out


def test_no_module_keeps_its_own_copy_of_a_constant() -> None:
    copies = [
        f"{path.relative_to(REPO_ROOT)}:{line} {name} = {value}"
        for package in PACKAGES
        if (REPO_ROOT / package).is_dir()
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if path != REPO_ROOT / "twin" / "units.py"
        for line, name, value in module_constants(path)
        if float(value) in CONSTANTS and FACT_NAME.search(name)
    ]
    assert not copies, "import these from pumptwin.twin.units instead:\n" + "\n".join(copies)


def test_the_copy_finder_finds_a_copy(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("DAY_S = 86_400.0\nG_M_S2: float = 9.80665\nWINDOW_S = 3600.0\n")
    found = [(n, v) for _, n, v in module_constants(sample) if float(v) in CONSTANTS and FACT_NAME.search(n)]
    assert found == [("DAY_S", 86_400.0), ("G_M_S2", 9.80665)]


def test_unit_factors_are_what_their_names_say() -> None:
    assert units.HOUR_S == 60 * units.MINUTE_S and units.DAY_S == 24 * units.HOUR_S and units.WEEK_S == 7 * units.DAY_S
    assert 2.5 * units.PA_PER_BAR == 250_000.0 and units.PA_PER_MPA == 10 * units.PA_PER_BAR
    assert 1.0 * units.M3H_PER_M3S == 3600.0  # 1 m3/s is 3600 m3/h
    assert pytest.approx(9.81456) == units.G_EPANET_M_S2 and units.G_M_S2 == 9.80665


def test_to_utc_reads_and_converts() -> None:
    assert to_utc("2026-11-01T01:00+01:00") == pd.Timestamp("2026-11-01T00:00Z")
    assert to_utc(datetime(2026, 11, 1, 0, 0)) == pd.Timestamp("2026-11-01T00:00Z")  # naive is UTC
    assert to_utc(datetime(2026, 11, 1, 2, tzinfo=timezone(timedelta(hours=2)))).hour == 0
    assert str(to_utc(pd.Timestamp("2026-11-01")).tz) == "UTC"
    assert utc_or_none(None) is None
    with pytest.raises(UtcTimeError, match="start must be timezone-aware"):
        to_utc("2026-11-01T00:00", naive_is_utc=False, what="start")
    with pytest.raises(ValueError, match="cannot read 'yesterday'"):
        to_utc("yesterday")


def test_utc_stamp_names_the_utc_time() -> None:
    assert utc_stamp("2026-03-01T13:00:00.5+01:00") == "20260301T120000500000Z"
    now = pd.Timestamp.now(tz="UTC")
    stamped = pd.to_datetime(utc_stamp(), format=STAMP_FORMAT).tz_localize("UTC")
    assert abs((stamped - now).total_seconds()) < 60
