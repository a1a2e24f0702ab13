"""The integrity flow on two simulated ILI exports of 10 km of the reference line, five years apart.

The plant draws the corrosion (plus two deep features: one past 80 % of the wall, one of 60 %) and
writes the vendor's exports (`pumptwin.plant.corrosion.ili_export`, three bad rows in the later
one) into the ILI drop folder of a ``PUMPTWIN_HOME`` in tmp_path, with a third file the loader
refuses. The steps are checked on their own (runs read, bad rows and the bad file quarantined, the
pipe and pressures at a chainage, files written); the flow runs once under the Prefect harness.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.flows import integrity_steps as steps
from pumptwin.flows.settings import Settings
from pumptwin.plant.corrosion import draw_population, grow, ili_export
from pumptwin.twin.integrity.store import read_assessed

WALL = 0.0087
DATES = (pd.Timestamp("2019-05-01", tz="UTC"), pd.Timestamp("2024-05-01", tz="UTC"))


def population() -> pd.DataFrame:
    """About 50 drawn features over km 0.2-10.2, plus DEEP-1 (92 % of wall) and DEEP-2 (60 %)."""
    pop = draw_population(
        10_000.0,
        np.random.default_rng(5),
        wall_m=WALL,
        density_per_km=5.0,
        start_chainage_m=200.0,
        depth_rate_median_m_per_year=1e-4,
    )
    deep = pd.DataFrame(
        {
            "feature_id": ["DEEP-1", "DEEP-2"],
            "chainage_m": [4321.0, 7654.0],
            "clock_h": [6.0, 5.5],
            "depth_m": [0.92 * WALL, 0.60 * WALL],
            "length_m": [0.2, 0.15],
            "width_m": [0.1, 0.1],
            "surface": ["external", "internal"],
            "wall_m": [WALL, WALL],
            "depth_rate_m_per_year": [3e-4, 3e-4],
            "length_rate_m_per_year": [1e-3, 1e-3],
        }
    )
    return pd.concat([pop, deep], ignore_index=True).sort_values("chainage_m", ignore_index=True)


def write_exports(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pop = population()
    rng = np.random.default_rng(7)
    for k, (p, date) in enumerate(((grow(pop, -5.0), DATES[0]), (pop, DATES[1]))):
        export = ili_export(
            p,
            date,
            rng,
            depth_sd_frac=0.03,
            odometer_scale=1.002 - 0.003 * k,
            odometer_offset_m=2.0 * k,
            launch_chainage_m=200.0,
            end_chainage_m=10_200.0,
            bad_rows=3 * k,
        )
        export.to_csv(folder / f"line1_{date:%Y-%m-%d}.csv", index=False)
    (folder / "garbage_2024-06-01.csv").write_text("nothing,to,see\n1,2,3\n", encoding="utf-8")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PUMPTWIN_HOME", str(home))
    write_exports(home / "integrity" / "ili")
    return home


def test_runs_read_with_bad_rows_and_a_refused_file_quarantined(home: Path) -> None:
    settings = Settings()
    read = steps.read_runs(settings)
    assert [pd.Timestamp(r.date) for r in read.runs] == list(DATES)
    assert len(read.refused) == 1 and read.refused[0][0].endswith("garbage_2024-06-01.csv")
    q = home / "quarantine" / "ili"
    assert (q / "garbage_2024-06-01.csv").is_file() and not (
        home / "integrity" / "ili" / "garbage_2024-06-01.csv"
    ).exists()
    assert (q / "garbage_2024-06-01.csv.reason.txt").read_text(encoding="utf-8").strip() == read.refused[0][1]
    newest = read.runs[-1]
    rows = pd.read_csv(read.quarantine[newest.run_id])
    assert len(rows) == 3 and rows["reason"].str.len().min() > 0 and "row" in rows
    # a path that cannot be read is refused with its reason, and nothing is assessed
    gone = steps.read_runs(settings, str(home / "nowhere.csv"))
    assert gone.runs == () and len(gone.refused) == 1 and (q / "nowhere.csv.reason.txt").is_file()
    assert "No ILI run could be assessed" in steps.integrity_markdown(gone, None, {}, 1)
    assert steps.summary(gone, None, {})["assessed_run"] is None


def test_pipe_maop_and_pressure_at_a_chainage(home: Path) -> None:
    profile = steps.line_profile(Settings())
    ids, maop, operating = steps.locate(np.array([60_200.0, 2_700.0, np.nan]), profile)
    assert ids[:2] == ["L060-065", "L000-005"]  # on a boundary: the pipe downstream (PS2 discharge)
    k = profile.pipe_ids.index("L000-005")
    frac = (2_700.0 - profile.start_m[k]) / (profile.end_m[k] - profile.start_m[k])
    assert operating[1] == pytest.approx(profile.p_start_pa[k] + frac * (profile.p_end_pa[k] - profile.p_start_pa[k]))
    assert maop[0] == pytest.approx(2.6e6) and maop[1] == pytest.approx(3.1e6)
    assert ids[2] == profile.pipe_ids[int(np.nanargmin(profile.maop_pa))] and maop[2] == np.nanmin(profile.maop_pa)
    assert operating[2] == max(profile.p_start_pa.max(), profile.p_end_pa.max())
    ps2 = profile.pipe_ids.index("L060-065")
    assert operating[0] == profile.p_start_pa[ps2] > profile.p_end_pa[ps2 - 1]  # PS2's discharge, not its suction


def test_assess_grow_rank_and_write(home: Path) -> None:
    settings = Settings()
    read = steps.read_runs(settings)
    result = steps.assess_runs(settings, read, steps.line_profile(settings))
    assert result.growth is not None and result.growth.count("matched") > 20
    ml = result.assessed[result.assessed["feature_type"] == "metal_loss"]
    assert ml["pipe_id"].notna().all() and (ml["safe_pa"] > 0).all()
    assert ml["remaining_life_years"].notna().all()
    top = result.dig.iloc[0]
    assert top["category"] == "immediate" and top["chainage_m"] == pytest.approx(
        4321.0, abs=25.0
    )  # one marker: odometer scale error left
    paths = steps.write_outputs(settings, result, 1)
    stored = read_assessed(settings.integrity_dir, 1)
    assert stored is not None and len(stored) == len(result.assessed) and "pipe_id" in stored
    assert pd.read_csv(paths["dig_list"], dtype=str)["feature_id"].iloc[0] == top["feature_id"]
    assert paths["report"].parent == home / "integrity" / "reports"
    assert paths["report"].read_text(encoding="utf-8").startswith("---\nid: ILI-LINE01-")
    assert paths["growth"].is_file() and paths["segments"].is_file()


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.slow
def test_flow_smoke(home: Path, harness: None) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from pumptwin.flows.integrity import integrity

    out = integrity(line=1)
    assert len(out["runs"]) == 2 and len(out["refused"]) == 1
    assert out["growth"]["matched"] > 20 and out["counts"]["immediate"] >= 1
    assert Path(out["files"]["report"]).is_file() and Path(out["files"]["assessed"]).is_file()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["integrity-line-01"])))
    assert found and out["top"][0] in str(max(found, key=lambda a: str(a.created)).data)
    # one export given by path: assessed alone, no growth, the file left where it is
    one = integrity(line=1, path=str(home / "integrity" / "ili" / "line1_2024-05-01.csv"))
    assert one["growth"] is None and one["runs"] == [out["runs"][-1]]


def test_half_life_age_is_the_youngest_pipes_or_the_stated_default() -> None:
    from pumptwin.twin.integrity.pipe import PipeProperties

    when = pd.Timestamp("2026-05-01", tz="UTC")
    old = PipeProperties("X42", 290e6, 415e6, 0.0071, 0.66, installed_year=1968)
    young = PipeProperties("X52", 360e6, 460e6, 0.0079, 0.66, installed_year=1981)
    age, note = steps.corrosion_age_years([old, young], when)
    assert age == 45.0 and "1981" in note
    age, note = steps.corrosion_age_years([PipeProperties("X52", 360e6, 460e6, 0.0079, 0.66)], when)
    assert age == steps.DEFAULT_PIPE_AGE_YEARS and "assumed" in note
