"""Tests of the simulated inspection rounds: what a technician's instruments read on a visit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.health import Mode
from pumptwin.plant.rounds import (
    DIRECTION_FACTORS,
    THERMOGRAPHY_COLUMNS,
    VIBRATION_COLUMNS,
    VISUAL_COLUMNS,
    RoundsError,
    RouteInstruments,
    export_route_files,
    level_of,
    route_readings,
    true_condition,
)
from pumptwin.plant.scenario import FaultSpec, OperationsSpec, Scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.plant.simulator import Plant
from pumptwin.twin.inspection.routes import load_route

START = pd.Timestamp("2024-01-01T00:00:00Z")
DAY_S = 86_400.0


def _plant(faults: tuple[FaultSpec, ...] = ()) -> Plant:
    scenario = Scenario(
        name="rounds",
        start=START,
        duration_s=2 * DAY_S,
        step_s=600.0,
        seed=5,
        operations=OperationsSpec(daily_swing=0.0, nomination_s=0.0),
        faults=faults,
        sensors=SensorConfig.ideal(),
        truth_period_s=600.0,
    )
    plant = Plant(scenario)
    plant.advance(DAY_S)
    return plant


@pytest.fixture(scope="module")
def faulty() -> Plant:
    """PS01.P1 with a worn DE bearing, PS01.P2 with a leaking seal, PS02.P1 with a clogged strainer (all from 6 h)."""
    at = 6 * 3600.0
    return _plant(
        (
            FaultSpec(Mode.BEARING_WEAR, "PS01.P1", at, at, "step", 1.0, False),
            FaultSpec(Mode.SEAL_FAILURE, "PS01.P2", at, at, "step", 40.0, False),
            FaultSpec(Mode.STRAINER_CLOG, "PS02.P1", at, at, "step", 0.8, False),
        )
    )


@pytest.fixture(scope="module")
def healthy() -> Plant:
    """The same fleet without faults."""
    return _plant()


def test_frames_are_canonical(healthy: Plant) -> None:
    frames = route_readings(healthy, ["PS01.P1", "PS02.P2"], healthy.now, np.random.default_rng(1))
    assert tuple(frames["vibration"].columns) == VIBRATION_COLUMNS
    assert tuple(frames["thermography"].columns) == THERMOGRAPHY_COLUMNS
    assert tuple(frames["visual"].columns) == VISUAL_COLUMNS
    assert len(frames["vibration"]) == 2 * 6 and len(frames["thermography"]) == 2 * 3 and len(frames["visual"]) == 2 * 4
    assert set(frames["vibration"]["point"]) == {"DE", "NDE"} and set(frames["vibration"]["direction"]) == {
        "H",
        "V",
        "A",
    }
    assert (frames["vibration"]["ts"] == healthy.now).all()
    assert frames["visual"]["severity"].between(0, 4).all()


def test_healthy_readings_are_noisy_but_unbiased(healthy: Plant) -> None:
    truth = true_condition(healthy).set_index("asset").loc["PS01.P1"]
    assert bool(truth["running"])
    overall, spot = [], []
    for seed in range(300):
        frames = route_readings(healthy, ["PS01.P1"], healthy.now, np.random.default_rng(seed))
        vib = frames["vibration"].set_index(["point", "direction"])
        overall.append(float(vib.at[("DE", "H"), "overall_mm_s"]))
        th = frames["thermography"].set_index("component")
        spot.append(float(th.at["DE bearing", "spot_c"]))
    overall_a, spot_a = np.array(overall), np.array(spot)
    assert overall_a.std() > 0.01 and spot_a.std() > 0.5
    se_v = overall_a.std() / np.sqrt(overall_a.size)
    assert abs(overall_a.mean() - truth["de_overall_mm_s"] * DIRECTION_FACTORS["H"]) < 4 * se_v
    assert abs(spot_a.mean() - truth["bearing_de_c"]) < 4 * spot_a.std() / np.sqrt(spot_a.size)
    # a healthy pump shows no finding
    frames = route_readings(healthy, ["PS01.P1"], healthy.now, np.random.default_rng(0))
    assert frames["vibration"]["overall_mm_s"].max() < 4.5
    assert frames["visual"]["severity"].max() < 2


def test_bands_add_up_to_the_overall(healthy: Plant) -> None:
    truth = true_condition(healthy)
    for prefix in ("de", "nde"):
        bands = truth[[f"{prefix}_band_{b}_mm_s" for b in ("low", "1x", "2x", "high")]].to_numpy()
        np.testing.assert_allclose(np.sqrt((bands**2).sum(axis=1)), truth[f"{prefix}_overall_mm_s"])


def test_route_readings_reflect_true_faults(faulty: Plant, healthy: Plant) -> None:
    rng = np.random.default_rng(3)
    frames = route_readings(faulty, ["PS01.P1", "PS01.P2", "PS02.P1"], faulty.now, rng)
    vib = frames["vibration"]
    de = vib[(vib["asset"] == "PS01.P1") & (vib["point"] == "DE") & (vib["direction"] == "H")]
    assert float(de["overall_mm_s"].iloc[0]) > 6.0  # bearing damage 1: ISO zone D
    assert float(de["band_high_mm_s"].iloc[0]) > float(de["band_1x_mm_s"].iloc[0])
    th = frames["thermography"].set_index(["asset", "component"])
    base = route_readings(healthy, ["PS01.P1"], healthy.now, np.random.default_rng(3))["thermography"]
    assert (
        th.at[("PS01.P1", "DE bearing"), "delta_k"]
        > float(base.set_index("component").at["DE bearing", "delta_k"]) + 10
    )
    visual = frames["visual"]
    seal = visual[(visual["asset"] == "PS01.P2") & visual["finding"].str.startswith("mechanical seal")]
    assert int(seal["severity"].iloc[0]) >= 3 and seal["photo_ref"].iloc[0].endswith(".jpg")
    strainer = visual[(visual["asset"] == "PS02.P1") & visual["finding"].str.startswith("suction strainer")]
    assert int(strainer["severity"].iloc[0]) >= 2


def test_determinism_by_seed(faulty: Plant) -> None:
    a = route_readings(faulty, ["PS01.P1", "PS02.P2"], faulty.now, np.random.default_rng(11))
    b = route_readings(faulty, ["PS01.P1", "PS02.P2"], faulty.now, np.random.default_rng(11))
    c = route_readings(faulty, ["PS01.P1", "PS02.P2"], faulty.now, np.random.default_rng(12))
    for kind in a:
        pd.testing.assert_frame_equal(a[kind], b[kind])
    assert not np.allclose(a["vibration"]["overall_mm_s"], c["vibration"]["overall_mm_s"])
    perfect = RouteInstruments(0.0, 0.0, 0.0, 0.0, 0.0)
    p1 = route_readings(faulty, ["PS01.P1"], faulty.now, np.random.default_rng(1), instruments=perfect)
    p2 = route_readings(faulty, ["PS01.P1"], faulty.now, np.random.default_rng(2), instruments=perfect)
    pd.testing.assert_frame_equal(p1["vibration"], p2["vibration"])


def test_errors(healthy: Plant) -> None:
    with pytest.raises(RoundsError, match="plant's time"):
        route_readings(healthy, ["PS01.P1"], healthy.now - pd.Timedelta(days=1), np.random.default_rng(0))
    with pytest.raises(RoundsError, match="not pumps"):
        route_readings(healthy, ["PS09.P1"], healthy.now, np.random.default_rng(0))
    with pytest.raises(RoundsError, match="vib_noise_rel"):
        RouteInstruments(vib_noise_rel=-0.1)
    scenario = Scenario(name="fresh", start=START, duration_s=DAY_S, step_s=600.0)
    with pytest.raises(RoundsError, match="not run yet"):
        true_condition(Plant(scenario))


def test_level_of() -> None:
    assert level_of(0.1, (1.0, 5.0, 20.0, 50.0)) == 0
    assert level_of(5.0, (1.0, 5.0, 20.0, 50.0)) == 2
    assert level_of(99.0, (1.0, 5.0, 20.0, 50.0)) == 4
    assert level_of(float("nan"), (1.0,)) == 0


def test_exported_files_load_back(faulty: Plant, tmp_path) -> None:  # noqa: ANN001
    frames = route_readings(faulty, ["PS01.P1", "PS01.P2"], faulty.now, np.random.default_rng(4))
    paths = export_route_files(frames, tmp_path)
    assert sorted(p.name.split("_")[0] for p in paths) == ["thermography", "vibration", "visual"]
    header = paths[0].read_text(encoding="utf-8").splitlines()[0]
    assert "Overall (mm/s)" in header
    assets = [p.name for p in faulty.registry.pumps]
    for path in paths:
        kind = path.name.split("_")[0]
        batch = load_route(path, assets, now=faulty.now + pd.Timedelta(hours=1))
        loaded = batch.frame(kind)  # type: ignore[arg-type]
        assert batch.quarantined.empty
        assert len(loaded) == len(frames[kind])
        if kind == "vibration":
            np.testing.assert_allclose(loaded["overall_mm_s"], frames[kind]["overall_mm_s"], atol=1e-3)
        if kind == "thermography":
            np.testing.assert_allclose(loaded["delta_k"], frames[kind]["delta_k"], atol=2e-3)
        if kind == "visual":
            assert list(loaded["severity"]) == list(frames[kind]["severity"])
