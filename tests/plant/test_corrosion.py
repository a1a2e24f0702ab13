from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.corrosion import (
    BAD_ROW_KINDS,
    POPULATION_COLUMNS,
    CorrosionError,
    CorrosionZone,
    draw_population,
    grow,
    ili_export,
    reference_population,
)
from pumptwin.twin.integrity.ili import read_ili
from pumptwin.twin.integrity.pipe import packaged_integrity_file, reference_markers

DATE = pd.Timestamp("2026-05-01", tz="UTC")

MARKERS = pd.DataFrame(
    {
        "name": ["Launcher A", "AGM-1", "MLV-2", "AGM-3", "Receiver B"],
        "chainage_m": [1000.0, 3400.0, 6100.0, 8800.0, 11_000.0],
        "kind": ["launcher", "marker", "valve", "marker", "receiver"],
    }
)


def small_line(seed: int = 3) -> pd.DataFrame:
    zone = CorrosionZone(4000.0, 5000.0, density_factor=8.0, rate_factor=2.0, surface="internal", kind="low_spot")
    return draw_population(
        10_000.0,
        np.random.default_rng(seed),
        wall_m=0.0079,
        start_chainage_m=1000.0,
        density_per_km=15.0,
        depth_rate_median_m_per_year=0.08e-3,
        zones=[zone],
    )


def test_a_population_has_its_columns_and_stays_on_the_line() -> None:
    pop = small_line()
    assert tuple(pop.columns) == POPULATION_COLUMNS
    assert 100 < len(pop) < 400
    assert pop["feature_id"].is_unique and pop["chainage_m"].is_monotonic_increasing
    assert pop["chainage_m"].between(1000.0, 11_000.0).all()
    assert (pop["depth_m"] <= 0.8 * pop["wall_m"]).all() and (pop["depth_m"] >= 0).all()
    assert pop["clock_h"].between(0.0, 12.0, inclusive="left").all()
    assert set(pop["surface"]) <= {"internal", "external"}
    assert (pop["depth_rate_m_per_year"] > 0).all() and (pop["length_rate_m_per_year"] > 0).all()
    in_zone = pop[pop["chainage_m"].between(4000.0, 5000.0)]
    outside = pop[~pop["chainage_m"].between(4000.0, 5000.0)]
    assert len(in_zone) / 1.0 > 3 * len(outside) / 9.0  # clustered: denser per km in the zone
    assert (in_zone["surface"] == "internal").all()
    assert in_zone["depth_rate_m_per_year"].median() > outside["depth_rate_m_per_year"].median()


def test_the_same_seed_gives_the_same_population() -> None:
    pd.testing.assert_frame_equal(small_line(5), small_line(5))
    assert not small_line(5).equals(small_line(6))


@pytest.mark.parametrize("years", [0.5, 3.0, 40.0])
def test_growth_is_monotone_and_capped_at_the_wall(years: float) -> None:
    pop = small_line()
    older = grow(pop, years)
    oldest = grow(pop, 2 * years)
    assert (older["depth_m"] >= pop["depth_m"]).all() and (oldest["depth_m"] >= older["depth_m"]).all()
    assert (older["length_m"] >= pop["length_m"]).all()
    assert (oldest["depth_m"] <= oldest["wall_m"]).all()
    expected = np.minimum(pop["depth_m"] + pop["depth_rate_m_per_year"] * years, pop["wall_m"])
    np.testing.assert_allclose(older["depth_m"], expected)
    earlier = grow(pop, -years)
    assert (earlier["depth_m"] <= pop["depth_m"]).all() and (earlier["depth_m"] >= 0).all()
    pd.testing.assert_frame_equal(pop, small_line())  # the input is not changed


def test_bad_settings_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(CorrosionError, match="length_m"):
        draw_population(-1.0, rng, wall_m=0.008)
    with pytest.raises(CorrosionError, match="wall"):
        draw_population(1000.0, rng, wall_m=-0.008)
    with pytest.raises(CorrosionError, match="end must be after start"):
        CorrosionZone(5.0, 1.0)
    with pytest.raises(CorrosionError, match="units"):
        ili_export(small_line(), DATE, rng, units="cubits", markers=MARKERS)
    with pytest.raises(CorrosionError, match="years"):
        grow(small_line(), float("nan"))


def export(pop: pd.DataFrame, seed: int, **kwargs: object) -> pd.DataFrame:
    return ili_export(
        pop,
        DATE,
        np.random.default_rng(seed),
        markers=MARKERS,
        launch_chainage_m=1000.0,
        end_chainage_m=11_000.0,
        **kwargs,
    )


def test_the_export_looks_like_a_vendors_list() -> None:
    pop = small_line()
    out = export(pop, 1, threshold_frac=0.1, units="metric")
    assert "Log Distance [m]" in out.columns and "Depth [%]" in out.columns
    assert not set(pop["feature_id"]) & set(out["Feature ID"])  # the true ids are hidden
    welds = out[out["Event"] == "Girth Weld"]
    numbers = welds["GW No."].astype(int).to_numpy()
    assert numbers[0] == 10 and (np.diff(numbers) == 10).all()
    gaps = np.diff(welds["Log Distance [m]"].astype(float).to_numpy())
    assert gaps.min() > 11.0 and gaps.max() < 13.0
    ml = out[out["Event"] == "Metal Loss"]
    assert (ml["Depth [%]"].astype(float) >= 10).all()
    assert len(ml) < len(pop)  # shallow features are below the threshold
    assert set(out.loc[out["Comment"] != "", "Comment"]) == set(MARKERS["name"])
    assert out.attrs["run_date"].startswith("2026-05-01")
    imperial = export(pop, 1, units="imperial")
    assert "Log Dist. (ft)" in imperial.columns and "Peak Depth (%WT)" in imperial.columns


@pytest.mark.parametrize("units", ["metric", "imperial", "column"])
def test_an_export_round_trips_through_the_loader(tmp_path: Path, units: str) -> None:
    pop = small_line()
    out = export(pop, 7, units=units, odometer_scale=1.003, odometer_offset_m=4.0, bad_rows=8)
    path = tmp_path / f"run_{units}.csv"
    out.to_csv(path, index=False)
    run = read_ili(path, date=DATE, markers=MARKERS, launch_chainage_m=1000.0)
    # every bad row and only those are quarantined, with their reasons
    assert len(run.quarantined) == 8
    reasons = " | ".join(run.quarantined["reason"])
    for key in ("depth over 100 %", "negative depth", "missing length", "unparseable number", "unparseable clock"):
        assert key in reasons
    assert "unknown feature type" in reasons and "duplicate feature id" in reasons
    assert ("unknown unit" in reasons) == (units == "column")
    # features, welds and chainage
    event_col = {"metric": "Event", "imperial": "Feature Type", "column": "Identification"}[units]
    n_welds = int(out[event_col].isin(["Girth Weld", "GW", "Weld"]).sum())
    assert len(run.welds) == n_welds
    ml = run.features[run.features["feature_type"] == "metal_loss"]
    assert len(ml) + len(run.quarantined) == int(out[event_col].isin(["Metal Loss", "CORR", "ML"]).sum()) + 1
    truth = pop["chainage_m"].to_numpy()
    err = np.array([np.min(np.abs(truth - c)) for c in ml["chainage_m"]])
    assert err.max() < 1.0
    assert run.references["used"].sum() == len(MARKERS)
    assert ml["depth_frac"].between(0.1, 1.0).all() and (ml["length_m"] > 0).all()
    assert ml["weld_number"].notna().all()


def test_sizing_noise_has_the_stated_spread() -> None:
    pop = small_line()
    pop = pop.assign(depth_m=0.4 * pop["wall_m"])
    out = export(pop, 11, depth_sd_frac=0.078, threshold_frac=0.0)
    ml = out[out["Event"] == "Metal Loss"]
    depth = ml["Depth [%]"].astype(float).to_numpy() / 100
    assert len(depth) == len(pop)
    assert np.mean(depth) == pytest.approx(0.4, abs=0.02)
    assert np.std(depth) == pytest.approx(0.078, rel=0.2)


def test_the_reference_population() -> None:
    pop = reference_population(0)
    assert tuple(pop.columns) == POPULATION_COLUMNS
    assert 200 <= len(pop) <= 500
    frac = pop["depth_m"] / pop["wall_m"]
    assert 3 <= int(frac.between(0.4, 0.6).sum()) <= 15
    assert (frac > 0.65).sum() == 1  # only the named feature is that deep
    demo = pop.set_index("feature_id").loc["DEMO-ML-061"]
    assert 61_000 <= demo["chainage_m"] <= 63_000
    assert demo["clock_h"] == pytest.approx(6.0) and demo["surface"] == "external"
    assert 0.75 <= demo["depth_m"] / demo["wall_m"] < 0.80
    assert demo["wall_m"] == pytest.approx(0.0071) and demo["length_m"] >= 1.0
    pd.testing.assert_frame_equal(pop, reference_population(0))
    other = reference_population(1)
    assert not other.equals(pop) and "DEMO-ML-061" in set(other["feature_id"])
    assert pop["chainage_m"].between(200.0, 120_200.0).all()


def test_the_reference_export_maps_onto_the_reference_markers(tmp_path: Path) -> None:
    markers = reference_markers(packaged_integrity_file())
    pop = reference_population(0)
    section = pop[pop["chainage_m"].between(60_200.0, 80_000.0)]
    out = ili_export(
        section,
        DATE,
        np.random.default_rng(2),
        launch_chainage_m=60_200.0,
        end_chainage_m=80_100.0,
        odometer_scale=0.997,
    )
    path = tmp_path / "ps2_2026-05-01.csv"
    out.to_csv(path, index=False)
    run = read_ili(path, markers=markers, launch_chainage_m=60_200.0)
    assert set(run.references["name"]) == {"PS2 receiver", "PS2 launcher", "AGM-070", "AGM-080"}
    ml = run.features[run.features["feature_type"] == "metal_loss"]
    near = ml.iloc[(ml["chainage_m"] - 61_420.0).abs().argsort()[:1]]
    assert abs(float(near["chainage_m"].iloc[0]) - 61_420.0) < 1.0
    assert float(near["length_m"].iloc[0]) > 1.5
    assert run.date == pd.Timestamp("2026-05-01", tz="UTC")


def test_bad_row_kinds_are_listed() -> None:
    assert len(BAD_ROW_KINDS) == 8 and "unknown unit" in BAD_ROW_KINDS
