"""State estimation against closed forms, synthetic tags and the plant simulator's hidden truth."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.plant.health import EFFICIENCY_LOSS_PER_WEAR, motor_input
from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import GroundTruth, Plant
from pumptwin.twin.assets import BAR_PA, M3H_PER_M3S, Registry, build_registry
from pumptwin.twin.health.estimation import (
    Estimate,
    EstimationError,
    PumpEstimate,
    TwinCalibration,
    calibrated_network,
    initial_calibration,
    line_segments,
    motor_shaft_power_w,
    pipe_friction_loss_m,
    resample_readings,
    update_calibration,
)
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.hydraulic.pumps import fit_efficiency_curve, fit_head_curve
from pumptwin.twin.units import G_M_S2

START = pd.Timestamp("2024-03-01T00:00:00Z")
DAY = 86_400.0


def rational_excitation(flow_ratio: np.ndarray) -> np.ndarray:
    """A generating process unlike the twin's polynomial: x^2 / (1 + x^2 / 6) (7 / 6), x = (r - 1) / 0.3."""
    x = (flow_ratio - 1.0) / 0.3
    return x * x / (1.0 + x * x / 6.0) * (7.0 / 6.0)


def power_law_load(speed: np.ndarray, flow_ratio: np.ndarray) -> np.ndarray:
    """A bearing load unlike the twin's: s^1.5 (0.6 + 0.4 (1 + 1.5 (r - 1)^2)), 1 at rated speed and the BEP."""
    return speed**1.5 * (0.6 + 0.4 * (1.0 + 1.5 * (flow_ratio - 1.0) ** 2))


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network()


@pytest.fixture(scope="module")
def registry(network: Network) -> Registry:
    return build_registry(network, 1)


# --------------------------------------------------------------------------------------------
# Synthetic tags built in code
# --------------------------------------------------------------------------------------------


def synthetic_readings(
    network: Network,
    registry: Registry,
    wear: dict[str, float],
    loss: dict[str, float],
    n: int = 60,
    start: pd.Timestamp = START,
    seed: int = 0,
    vib_gain: float = 1.0,
    rise_k: float | np.ndarray = 36.0,
    speed_range: tuple[float, float] = (0.85, 1.0),
    stopped: tuple[str, ...] = ("P3",),
) -> pd.DataFrame:
    """Noiseless tags of station PS01 (P1, P2 running, P3 stopped by default) over ``n`` minutes.

    Example rows: ``PS01.P1.FLOW, 2024-03-01 00:00, 1012.3, good``.
    """
    rng = np.random.default_rng(seed)
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    head_curve = fit_head_curve(network.curve("PC1"))
    eff_curve = fit_efficiency_curve(network.curve("EF1"))
    ts = start + pd.to_timedelta(np.arange(n) * 60, unit="s")
    speed = rng.uniform(*speed_range, n)
    head = rng.uniform(0.75, 0.9, n) * head_curve.h0_m * speed**2
    suction_bar = np.full(n, 1.0)
    rows: list[tuple[str, pd.Timestamp, float]] = []
    for asset in ("P1", "P2", "P3"):
        name = f"PS01.{asset}"
        spec = registry.pumps[registry.pump_index(name)]
        on = asset not in stopped
        k = 1.0 - wear.get(name, 0.0)
        q = np.asarray([float(head_curve.flow_at_head_m3s(h, s * k)) for h, s in zip(head, speed, strict=True)])
        eta = eff_curve.efficiency(q / (speed * k), 1.0) * (1.0 - loss.get(name, 0.0))
        shaft = rho_g * q * head / eta
        elec, _ = motor_input(shaft, spec.motor_rated_w, spec.motor_efficiency, spec.motor_power_factor, 6600.0)
        values = {
            "STATUS": np.full(n, 1.0 if on else 0.0),
            "SPEED": speed * spec.rated_speed_rpm if on else np.zeros(n),
            "FLOW": q * M3H_PER_M3S if on else np.zeros(n),
            "SUCT_PRESS": suction_bar - 0.05 if on else suction_bar,
            "STRAINER_DP": np.full(n, 0.05) if on else np.zeros(n),
            "DISCH_PRESS": suction_bar + head * rho_g / BAR_PA if on else suction_bar,
            "MOTOR_POWER": elec / 1e3 if on else np.zeros(n),
        }
        if on:
            ratio = q / (spec.bep_flow_m3s * speed)
            x = rational_excitation(ratio)
            values["VIB_DE_RMS"] = vib_gain * np.sqrt(speed**4 + 0.25 * speed**2 + 1.44 * speed**4 * x**2)
            values["BRG_DE_TEMP"] = 20.0 + rise_k * power_law_load(speed, ratio)
        for measure, v in values.items():
            rows.extend((f"{name}.{measure}", t, float(x)) for t, x in zip(ts, v, strict=True))
    rows.extend(("PS01.SITE.AMBIENT_TEMP", t, 20.0) for t in ts[::10])
    df = pd.DataFrame(rows, columns=["tag", "ts", "value"])
    return df.assign(quality="good")


def test_synthetic_wear_and_loss_recovered_exactly(network: Network, registry: Registry) -> None:
    readings = synthetic_readings(network, registry, {"PS01.P1": 0.04}, {"PS01.P1": 0.05})
    cal = update_calibration(None, readings, registry, network)
    p1, p2 = cal.pump("PS01.P1"), cal.pump("PS01.P2")
    assert p1.impeller_wear.value == pytest.approx(0.04, abs=2e-4)
    assert p1.efficiency_loss.value == pytest.approx(0.05, abs=2e-3)
    assert p2.impeller_wear.value == pytest.approx(0.0, abs=2e-4)
    assert p2.efficiency_loss.value == pytest.approx(0.0, abs=2e-3)
    assert p1.impeller_wear.sd < 0.05  # below the prior
    assert p1.degradation().impeller_wear == pytest.approx(0.04, abs=2e-4)


def test_vibration_baseline_and_thermal_resistance(network: Network, registry: Registry) -> None:
    """A baseline learnt on normal data flags 50 % more vibration, and a hotter bearing drifts."""
    cal = None
    steady = (0.95, 0.96)
    for day in range(3):
        readings = synthetic_readings(
            network, registry, {}, {}, start=START + pd.Timedelta(days=day), speed_range=steady
        )
        cal = update_calibration(cal, readings, registry, network)
    assert cal is not None
    normal = cal.pump("PS01.P1")
    assert abs(normal.vib_excess_de_mm_s) < 0.02
    assert normal.thermal_de.value == pytest.approx(36.0, rel=0.01)
    assert normal.thermal_drift_de == pytest.approx(0.0, abs=0.01)
    later = START + pd.Timedelta(days=3)
    bad = synthetic_readings(network, registry, {}, {}, start=later, vib_gain=1.5, rise_k=45.0, speed_range=steady)
    worse = update_calibration(cal, bad, registry, network).pump("PS01.P1")
    assert worse.vib_excess_de_mm_s == pytest.approx(0.5 * normal.vib_de_mm_s, rel=0.1)
    assert worse.vib_de == normal.vib_de  # a faulty window does not teach the baseline
    assert worse.thermal_drift_de == pytest.approx(0.25, abs=0.03)


def test_a_head_loss_shared_by_a_stations_pumps_is_not_wear(network: Network, registry: Registry) -> None:
    """Both running pumps of PS01 lose the same head at once (a starved suction): neither is taken as worn."""
    cal = update_calibration(None, synthetic_readings(network, registry, {}, {}), registry, network)
    later = START + pd.Timedelta(hours=1)
    both = synthetic_readings(network, registry, {"PS01.P1": 0.05, "PS01.P2": 0.05}, {}, start=later)
    shared = update_calibration(cal, both, registry, network)
    for pump in ("PS01.P1", "PS01.P2"):
        assert shared.pump(pump).impeller_wear.value == pytest.approx(0.0, abs=2e-3)
        assert shared.pump(pump).efficiency_loss.value == pytest.approx(0.0, abs=5e-3)
    one = synthetic_readings(network, registry, {"PS01.P1": 0.05}, {}, start=later)
    alone = update_calibration(cal, one, registry, network)
    assert alone.pump("PS01.P1").impeller_wear.value == pytest.approx(0.05, abs=0.005)  # one pump's loss is its own


def test_a_cold_start_does_not_set_the_bearing_reference_low(network: Network, registry: Registry) -> None:
    """A standby the twin has not seen run starts cold: its bearing warms with a 40 min lag and no alarm follows."""
    cal = update_calibration(
        None, synthetic_readings(network, registry, {}, {}, stopped=("P1", "P3")), registry, network
    )
    started = START + pd.Timedelta(hours=1)
    steady = (0.95, 0.96)
    for w in range(24):  # 6 h in the twin's 15 min windows
        t_s = w * 900.0 + np.arange(15) * 60.0
        rise = 36.0 * (1.0 - np.exp(-t_s / 2400.0))
        window = synthetic_readings(
            network,
            registry,
            {},
            {},
            n=15,
            start=started + pd.Timedelta(seconds=w * 900),
            rise_k=rise,
            speed_range=steady,
        )
        cal = update_calibration(cal, window, registry, network)
        p1 = cal.pump("PS01.P1")
        assert p1.running_since_ts == started
        if w < 7:  # the first 2 h count for nothing thermal
            assert math.isnan(p1.thermal_de.value)
    assert p1.thermal_ref_de_k == pytest.approx(36.0, rel=0.08)
    assert abs(p1.thermal_drift_de) < 0.08


def test_stopped_pump_keeps_its_estimate_and_grows_uncertain(network: Network, registry: Registry) -> None:
    readings = synthetic_readings(network, registry, {}, {})
    cal = update_calibration(None, readings, registry, network)
    later = synthetic_readings(network, registry, {}, {}, start=START + pd.Timedelta(days=1))
    cal2 = update_calibration(cal, later, registry, network)
    p3_before, p3_after = cal.pump("PS01.P3"), cal2.pump("PS01.P3")
    assert p3_after.impeller_wear.value == p3_before.impeller_wear.value == 0.0
    assert p3_after.impeller_wear.sd > p3_before.impeller_wear.sd
    assert p3_after.running_fraction == 0.0
    assert cal2.pump("PS01.P1").running_fraction == 1.0


def test_bad_quality_nan_and_missing_tags_are_ignored(network: Network, registry: Registry) -> None:
    readings = synthetic_readings(network, registry, {"PS01.P1": 0.03}, {})
    rng = np.random.default_rng(1)
    bad = rng.random(len(readings)) < 0.1
    corrupted = readings.copy()
    corrupted.loc[bad, "value"] = 1e6  # wild values, flagged bad
    corrupted.loc[bad, "quality"] = "bad"
    corrupted.loc[rng.random(len(readings)) < 0.05, "value"] = np.nan
    corrupted = corrupted[corrupted["tag"] != "PS01.P2.MOTOR_POWER"]  # a tag that never arrives
    cal = update_calibration(None, corrupted, registry, network)
    assert cal.pump("PS01.P1").impeller_wear.value == pytest.approx(0.03, abs=5e-4)
    assert cal.pump("PS01.P2").efficiency_loss == Estimate(0.0, 0.1)  # prior: no power data


def test_more_data_gives_smaller_uncertainty(network: Network, registry: Registry) -> None:
    rng = np.random.default_rng(3)
    readings = synthetic_readings(network, registry, {"PS01.P1": 0.02}, {}, n=240)
    noisy = readings.assign(value=readings["value"] * (1.0 + 2e-3 * rng.standard_normal(len(readings))))
    short = noisy[noisy["ts"] < START + pd.Timedelta(minutes=20)]
    sd_short = update_calibration(None, short, registry, network).pump("PS01.P1").impeller_wear.sd
    sd_long = update_calibration(None, noisy, registry, network).pump("PS01.P1").impeller_wear.sd
    assert sd_long < 0.6 * sd_short < 0.05


def test_empty_and_old_windows_change_nothing(network: Network, registry: Registry) -> None:
    readings = synthetic_readings(network, registry, {}, {})
    cal = update_calibration(None, readings, registry, network)
    assert update_calibration(cal, readings.iloc[:0], registry, network) is cal
    assert update_calibration(cal, readings, registry, network) is cal  # already folded in
    assert cal.ts == START + pd.Timedelta(minutes=60)


def test_bad_readings_raise(network: Network, registry: Registry) -> None:
    with pytest.raises(EstimationError, match="columns"):
        update_calibration(None, pd.DataFrame({"tag": [], "ts": []}), registry, network)
    with pytest.raises(EstimationError, match="period"):
        resample_readings(pd.DataFrame({"tag": [], "ts": [], "value": []}), period_s=0.0)
    cal = initial_calibration(registry)
    with pytest.raises(EstimationError, match="PS09"):
        cal.pump("PS09.P1")
    with pytest.raises(EstimationError, match="line 7"):
        calibrated_network(network, cal, line=7)


SPEC = build_registry(load_network(), 1).pumps[0]


@settings(max_examples=50, deadline=None)
@given(st.floats(1e3, 900e3))
def test_motor_inversion_is_exact(shaft_w: float) -> None:
    spec = SPEC
    elec, _ = motor_input(shaft_w, spec.motor_rated_w, spec.motor_efficiency, spec.motor_power_factor, 6600.0)
    assert float(motor_shaft_power_w(elec, spec)) == pytest.approx(shaft_w, rel=1e-9)


def test_segments_of_the_reference_line(network: Network, registry: Registry) -> None:
    known = ["PS1-S", "PS1-D", "PS2-S", "PS2-D", "DEL-IN", "ORIGIN", "TERMINAL"]
    names = {s.name for s in line_segments(network, known)}
    assert names == {"PS1-S>ORIGIN", "PS1-D>PS2-S", "PS2-D>DEL-IN", "DEL-IN>TERMINAL"}
    seg = next(s for s in line_segments(network, known) if s.name == "PS1-D>PS2-S")
    assert len(seg.pipes) == 12
    assert all(sign == 1.0 for _, sign in seg.pipes)


def test_calibrated_network_applies_wear_and_friction(network: Network, registry: Registry) -> None:
    cal = initial_calibration(registry)
    pumps = dict(cal.pumps)
    pumps["PS02.P2"] = replace(pumps["PS02.P2"], impeller_wear=Estimate(0.05, 0.001))
    line = replace(cal.lines[1], friction_multiplier=Estimate(1.2, 0.01), flow_m3s=0.5)
    cal = TwinCalibration(START, pumps, {1: line})
    out = calibrated_network(network, cal)
    pump = next(p for p in out.pumps if p.id == "PS2-P2")
    assert pump.head_curve is not None
    worn = fit_head_curve(out.curve(pump.head_curve))
    clean = fit_head_curve(network.curve("PC2"))
    assert worn.h0_m == pytest.approx(0.95**2 * clean.h0_m, rel=1e-6)
    assert next(p for p in out.pumps if p.id == "PS2-P1").head_curve == "PC2"
    pipe0, pipe1 = network.pipes[1], out.pipes[1]
    ratio = pipe_friction_loss_m(out, pipe1, 0.5) / pipe_friction_loss_m(network, pipe0, 0.5)
    assert float(ratio) == pytest.approx(1.2, rel=1e-6)
    assert network.pipes[1].roughness == pytest.approx(4.5e-5)  # the input is untouched


# --------------------------------------------------------------------------------------------
# Against the plant's hidden truth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    """Estimates of one run, window by window."""

    ends: list[pd.Timestamp]
    wear: list[float]
    wear_sd: list[float]
    loss: list[float]
    final: TwinCalibration
    truth: GroundTruth
    onset: pd.Timestamp
    failure: pd.Timestamp


def run_and_track(  # noqa: PLR0913
    duration_s: float,
    onset_s: float,
    failure_s: float,
    step_s: float,
    window: str,
    network: Network | None = None,
    offsets: dict[str, float] | None = None,
) -> Track:
    base = shipped_scenario("impeller_wear")
    fault = replace(base.faults[0], onset_s=onset_s, failure_s=failure_s)
    scenario = replace(base, duration_s=duration_s, step_s=step_s, faults=(fault,))
    plant = Plant(scenario, network)
    readings = plant.run()
    for tag, offset in (offsets or {}).items():
        readings.loc[readings["tag"] == tag, "value"] += offset
    nominal = load_network()
    cal: TwinCalibration | None = None
    ends, wear, sd, loss = [], [], [], []
    for _, window_readings in readings.groupby(readings["ts"].dt.floor(window), sort=True):
        cal = update_calibration(cal, window_readings, plant.registry, nominal)
        pe = cal.pump("PS02.P2")
        ends.append(cal.ts)
        wear.append(pe.impeller_wear.value)
        sd.append(pe.impeller_wear.sd)
        loss.append(pe.efficiency_loss.value)
    assert cal is not None
    start = scenario.start
    return Track(
        ends,
        wear,
        sd,
        loss,
        cal,
        plant.ground_truth(),
        start + pd.Timedelta(seconds=onset_s),
        start + pd.Timedelta(seconds=failure_s),
    )


def true_wear(track: Track, at: pd.Timestamp) -> float:
    pumps = track.truth.pumps
    series = pumps[pumps["asset"] == "PS02.P2"].set_index("ts")["impeller_wear"]
    return float(np.interp(at.value, series.index.asi8, series.to_numpy()))


def check_wear_tracks_truth(track: Track, window: pd.Timedelta) -> int:
    """Every window after the fault is halfway: estimate within 10 % of the truth's magnitude."""
    halfway = track.onset + (track.failure - track.onset) / 2
    checked = 0
    for end, w in zip(track.ends, track.wear, strict=True):
        mid = end - window / 2
        if mid < halfway:
            continue
        truth = true_wear(track, mid)
        assert abs(w - truth) <= 0.1 * truth, f"{end}: estimated wear {w:.5f}, truth {truth:.5f}"
        checked += 1
    return checked


@pytest.fixture(scope="module")
def short_wear() -> Track:
    """Impeller wear over 4 of 5 days at 2-min steps, estimated in 2-hour windows."""
    return run_and_track(5 * DAY, 0.5 * DAY, 4.5 * DAY, 120.0, "2h")


def test_wear_within_10_percent_of_truth_once_halfway(short_wear: Track) -> None:
    assert check_wear_tracks_truth(short_wear, pd.Timedelta(hours=2)) >= 20


def test_efficiency_loss_follows_wear(short_wear: Track) -> None:
    truth = EFFICIENCY_LOSS_PER_WEAR * true_wear(short_wear, short_wear.ends[-1])
    assert short_wear.loss[-1] == pytest.approx(truth, rel=0.1)


def test_healthy_pumps_estimated_near_zero(short_wear: Track) -> None:
    running = [p for p in short_wear.final.pumps.values() if p.n_samples > 0 and p.pump != "PS02.P2"]
    assert len(running) == 3
    for p in running:
        assert abs(p.impeller_wear.value) < 0.002, p
        assert abs(p.efficiency_loss.value) < 0.01, p
    standby: list[PumpEstimate] = [p for p in short_wear.final.pumps.values() if p.n_samples == 0]
    assert {p.pump for p in standby} == {"PS01.P3", "PS02.P3"}


def test_uncertainty_shrinks_from_the_prior(short_wear: Track) -> None:
    assert short_wear.wear_sd[0] < 0.05 / 10
    assert max(short_wear.wear_sd) < 0.05 / 10


def test_friction_multiplier_is_one_on_the_nominal_network(short_wear: Track) -> None:
    m = short_wear.final.lines[1].friction_multiplier
    assert m.value == pytest.approx(1.0, abs=0.01)
    assert m.sd < 0.01
    assert short_wear.final.lines[1].maop_margin > 0


def test_line_state_and_thermal_baseline(short_wear: Track) -> None:
    line = short_wear.final.lines[1]
    assert 0.3 < line.flow_m3s < 1.0
    assert set(line.meter_bias_m3s) == {m.tag for m in build_registry(load_network(), 1).meters if m.measure == "FLOW"}
    pe = short_wear.final.pump("PS01.P1")
    assert 15.0 < pe.thermal_de.value < 60.0  # K per unit load, near the rated rise
    assert abs(pe.vib_excess_de_mm_s) < 0.5


def test_friction_change_recovered_on_a_synthetic_line(network: Network) -> None:
    """Pipes 15 % longer scale the friction loss by exactly 1.15 (Darcy-Weisbach); a meter reads 25 m3/h high."""
    longer = replace(network, pipes=tuple(replace(p, length_m=1.15 * p.length_m) for p in network.pipes))
    offsets = {"LINE01.L060_065.FLOW": 25.0}
    track = run_and_track(0.5 * DAY, 0.4 * DAY, 0.45 * DAY, 120.0, "2h", network=longer, offsets=offsets)
    line = track.final.lines[1]
    m = line.friction_multiplier
    assert m.value == pytest.approx(1.15, abs=0.015)
    assert m.sd < 0.01
    bias = line.meter_bias_m3s["LINE01.L060_065.FLOW"]
    assert bias.value * M3H_PER_M3S == pytest.approx(25.0, abs=3.0)
    assert bias.sd * M3H_PER_M3S < 3.0
    others = [b.value for t, b in line.meter_bias_m3s.items() if t not in ("LINE01.L060_065.FLOW", "LINE01.SUC1.FLOW")]
    assert max(abs(b) for b in others) * M3H_PER_M3S < 3.0


@pytest.mark.slow
def test_shipped_impeller_wear_scenario_within_10_percent() -> None:
    scenario = shipped_scenario("impeller_wear")
    fault = scenario.faults[0]
    track = run_and_track(scenario.duration_s, fault.onset_s, fault.failure_s, scenario.step_s, "1h")
    assert check_wear_tracks_truth(track, pd.Timedelta(hours=1)) >= 200
    assert math.isfinite(track.final.pump("PS02.P2").efficiency_loss.value)


def test_condition_models_learnt_from_the_plant(short_wear: Track) -> None:
    """The twin's own forms, learnt from the plant's richer physics: small residuals, no false excess or drift."""
    running = [p for p in short_wear.final.pumps.values() if p.n_samples > 0]
    for p in running:
        assert p.vib_de.weight > 100 and p.vib_nde.weight > 100
        assert p.vib_de.noise_mm_s < 0.1 * p.vib_de_mm_s, p.pump  # the polynomial explains the plant's vibration
        assert abs(p.vib_excess_de_mm_s) < 0.1 * p.vib_de_mm_s, p.pump
        assert abs(p.thermal_drift_de) < 0.1, p.pump
        assert 20.0 < p.thermal_de.value < 70.0
        assert p.bearing_de.weight > 0
        assert 40.0 < p.winding.value < 160.0  # K at rated current
        assert abs(p.winding_drift) < 0.1, p.pump  # its reference learnt, no false drift
        assert p.seal.weight > 0 and p.seal_leak_l_h >= 0
        assert p.strainer_k.value > 0 and abs(p.strainer_drift) < 0.1
