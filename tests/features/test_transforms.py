"""Tests of the per-pump features: closed-form residuals, causal windows, robustness, a plant run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.transforms.build import pump_features, vibration_baseline
from pumptwin.features.transforms.physics import pump_physics
from pumptwin.features.transforms.schema import KEY_COLUMNS, FeatureError, feature_columns, feature_names
from pumptwin.twin.assets import build_registry
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.units import G_M_S2

START = pd.Timestamp("2024-03-01T00:00:00Z")


@pytest.fixture(scope="module")
def fleet():
    network = load_network()
    return network, build_registry(network, 1)


def _rated(network, registry, pump="PS01.P1", flow_m3h=1000.0, speed_rpm=1420.0):
    """Closed-form operating point on the rated curves, written independently of the transform."""
    ph = pump_physics(registry, network)
    i = list(ph.names).index(pump)
    q = flow_m3h / 3600.0
    s = speed_rpm / ph.rated_rpm[i]
    head = s * s * ph.h0_m[i] - ph.r[i] * s ** (2 - ph.n[i]) * q ** ph.n[i]
    x = q / s
    eta = x * (ph.eff_a[i] + ph.eff_b[i] * x + ph.eff_c[i] * x * x)
    rho = network.fluid.density_kg_m3
    power_kw = rho * G_M_S2 * q * head / eta / ph.motor_efficiency[i] / 1e3
    return head, eta, power_kw, rho, ph, i


def _readings(pump, values, n_minutes=120, start=START, quality="good"):
    """One reading per minute of each measure, constant values."""
    ts = start + pd.to_timedelta(np.arange(n_minutes), unit="min")
    frames = [
        pd.DataFrame({"tag": f"{pump}.{m}", "ts": ts, "value": float(v), "quality": quality}) for m, v in values.items()
    ]
    return pd.concat(frames, ignore_index=True)


def _on_curve(network, registry, head_factor=1.0):
    head, _eta, power_kw, rho, _ph, _i = _rated(network, registry)
    suct_bar = 1.0
    disch_bar = suct_bar + head_factor * head * rho * G_M_S2 / 1e5
    values = {
        "STATUS": 1.0,
        "SPEED": 1420.0,
        "FLOW": 1000.0,
        "SUCT_PRESS": suct_bar,
        "DISCH_PRESS": disch_bar,
        "MOTOR_POWER": power_kw,
        "VIB_DE_RMS": 1.0,
        "BRG_DE_TEMP": 50.0,
    }
    return _readings("PS01.P1", values), head


def test_on_curve_residuals_vanish(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    f = pump_features(readings, registry, network)
    last = f.iloc[-1]
    assert set(f["pump_id"]) == {"PS01.P1"}
    assert abs(last["head_residual_m"]) < 1e-6
    assert abs(last["power_residual_pct"]) < 1e-6
    assert abs(last["efficiency_residual"]) < 1e-9
    assert last["percent_bep"] == pytest.approx(100 * 1000 / 3600 / (1420 / 1480 * registry.pumps[0].bep_flow_m3s))


def test_low_head_gives_negative_residual(fleet):
    network, registry = fleet
    readings, head = _on_curve(network, registry, head_factor=0.95)
    last = pump_features(readings, registry, network).iloc[-1]
    assert last["head_residual_m"] == pytest.approx(-0.05 * head, rel=1e-6)
    assert last["head_residual_pct"] == pytest.approx(-5.0, rel=1e-6)
    # the same motor power now buys 5 % less hydraulic power: efficiency down by 5 % of eta
    _, eta, *_ = _rated(network, registry)
    assert last["efficiency_residual"] == pytest.approx(-0.05 * eta, rel=1e-6)


def test_npsh_margin_closed_form(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    last = pump_features(readings, registry, network).iloc[-1]
    _, _, _, rho, ph, i = _rated(network, registry)
    q, s = 1000 / 3600, 1420 / 1480
    v = q / ph.suction_area_m2[i]
    npsha = (
        1e5 / (rho * G_M_S2)
        + (network.atmospheric_pressure_pa - network.fluid.vapour_pressure_pa) / (rho * G_M_S2)
        + v * v / (2 * G_M_S2)
    )
    x = q / s
    npshr = s * s * (ph.npshr_a[i] + ph.npshr_b[i] * x + ph.npshr_c[i] * x * x)
    assert last["npsh_margin_m"] == pytest.approx(npsha - npshr, rel=1e-9)


def test_stopped_pump_has_no_residuals(fleet):
    network, registry = fleet
    values = {"STATUS": 0.0, "SPEED": 0.0, "FLOW": 0.0, "SUCT_PRESS": 1.0, "DISCH_PRESS": 1.0, "VIB_DE_RMS": 0.05}
    f = pump_features(_readings("PS01.P2", values), registry, network)
    assert len(f) > 0
    assert f["head_residual_m"].isna().all()
    assert f["vib_de_baseline_ratio"].isna().all()
    assert (f["running_frac_1h"] == 0).all()
    assert f["flow_m3h_mean_1h"].isna().all()  # process statistics use running intervals only


def test_window_statistics_closed_form(fleet):
    network, registry = fleet
    ts = START + pd.to_timedelta(np.arange(180), unit="min")
    x = 2.0 + 0.5 * np.arange(180) / 60.0  # +0.5 per hour
    readings = pd.concat(
        [
            pd.DataFrame({"tag": "PS01.P1.BRG_DE_TEMP", "ts": ts, "value": x, "quality": "good"}),
            pd.DataFrame({"tag": "PS01.P1.STATUS", "ts": ts, "value": 1.0, "quality": "good"}),
        ]
    )
    f = pump_features(readings, registry, network)
    row = f[f["event_timestamp"] == START + pd.Timedelta("2h")].iloc[0]
    window = x[(ts > START + pd.Timedelta("1h")) & (ts <= START + pd.Timedelta("2h"))]
    assert row["brg_de_temp_c_mean_1h"] == pytest.approx(window.mean())
    assert row["brg_de_temp_c_std_1h"] == pytest.approx(window.std(ddof=1))
    assert row["brg_de_temp_c_max_1h"] == pytest.approx(window.max())
    assert row["brg_de_temp_c_slope_per_h_1h"] == pytest.approx(0.5)
    assert row["brg_de_temp_c_kurt_1h"] == pytest.approx(_pop_kurt(window))
    all_to_now = x[ts <= START + pd.Timedelta("2h")]
    assert row["brg_de_temp_c_mean_24h"] == pytest.approx(all_to_now.mean())


def _pop_kurt(a):
    d = a - a.mean()
    return (d**4).mean() / (d**2).mean() ** 2 - 3.0


def test_features_are_causal(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    full = pump_features(readings, registry, network)
    cut = START + pd.Timedelta("1h")
    early = pump_features(readings[readings["ts"] <= cut], registry, network)
    a = full[full["event_timestamp"] <= cut].reset_index(drop=True)
    cols = [c for c in feature_columns(a) if "baseline" not in c]
    pd.testing.assert_frame_equal(a[list(KEY_COLUMNS) + cols], early[list(KEY_COLUMNS) + cols])


def test_robust_to_order_duplicates_bad_quality(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    clean = pump_features(readings, registry, network)
    bad = readings.sample(200, random_state=0).assign(value=1e4, quality="bad")
    noisy = pd.concat([readings, readings.iloc[:300], bad]).sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(pump_features(noisy, registry, network), clean)


def test_output_contract(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    f = pump_features(readings, registry, network)
    assert list(f.columns) == [*KEY_COLUMNS, *feature_names()]
    assert str(f["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert all(f[c].dtype == np.float64 for c in feature_columns(f))
    assert (f["event_timestamp"].astype("int64") % 600_000_000 == 0).all()


def test_empty_and_unknown_inputs(fleet):
    network, registry = fleet
    empty = pd.DataFrame({"tag": [], "ts": pd.Series([], dtype="datetime64[ns, UTC]"), "value": [], "quality": []})
    assert pump_features(empty, registry, network).empty
    other = _readings("PS99.P1", {"FLOW": 1.0})
    out = pump_features(other, registry, network)
    assert out.empty and list(out.columns) == [*KEY_COLUMNS, *feature_names()]
    with pytest.raises(FeatureError, match="missing columns"):
        pump_features(empty.drop(columns="quality"), registry, network)
    with pytest.raises(FeatureError, match="whole number"):
        pump_features(empty, registry, network, short_window_s=1000.0)


@pytest.fixture(scope="module")
def bearing_day():
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.simulator import Plant

    scenario = shipped_scenario("bearing_failure")
    # the first day: the DE bearing of PS01.P1 is still healthy (wear starts on day 4)
    plant = Plant(dataclasses.replace(scenario, duration_s=86400.0))
    return plant, plant.run()


def test_plant_day(bearing_day):
    plant, readings = bearing_day
    f = pump_features(readings, plant.registry, plant.network)
    running = f[f["running_frac_1h"] == 1.0]
    assert set(running["pump_id"]) >= {"PS01.P1", "PS02.P1"}
    # a healthy pump sits on its rated curves within a few per cent
    assert running["head_residual_pct"].abs().median() < 2.0
    assert running["power_residual_pct"].abs().median() < 3.0
    assert running["vib_de_baseline_ratio"].median() == pytest.approx(1.0, abs=0.05)
    assert (running["npsh_margin_m"] > 0).all()
    stopped = f[f["running_frac_1h"] == 0.0]
    assert len(stopped) > 0 and stopped["head_residual_m"].isna().all()
    assert not math.isnan(f["brg_de_rise_norm_k"].median())


def test_bearing_wear_shows_in_vibration_and_temperature():
    from pumptwin.features.labels import pump_labels
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.simulator import Plant

    base = shipped_scenario("bearing_failure")
    fault = dataclasses.replace(base.faults[0], onset_s=86400.0, failure_s=3 * 86400.0, trip=False)
    plant = Plant(dataclasses.replace(base, duration_s=3 * 86400.0, faults=(fault,)))
    readings = plant.run()
    f = pump_features(readings, plant.registry, plant.network, baseline_s=86400.0)
    late = f[f["event_timestamp"] >= START + pd.Timedelta("66h")].set_index("pump_id")
    worn, healthy = late.loc["PS01.P1"], late.loc["PS02.P1"]
    assert worn["vib_de_baseline_ratio"].median() > 2.0
    assert healthy["vib_de_baseline_ratio"].median() == pytest.approx(1.0, abs=0.1)
    assert worn["brg_de_rise_norm_k"].median() > healthy["brg_de_rise_norm_k"].median() + 3.0
    labelled = pump_labels(f[list(KEY_COLUMNS)], plant.ground_truth().labels)
    worn_rows = labelled["pump_id"] == "PS01.P1"
    after_onset = labelled["event_timestamp"] >= START + pd.Timedelta("1D")
    assert (labelled.loc[worn_rows & after_onset, "anomaly"] == 1).all()
    assert (labelled.loc[~worn_rows | ~after_onset, "anomaly"] == 0).all()


def test_fitted_vibration_baseline_is_reused(fleet):
    network, registry = fleet
    readings, _ = _on_curve(network, registry)
    baseline = vibration_baseline(readings, registry, network)
    assert set(baseline["bearing"]) == {"de"}  # no NDE readings
    row = baseline.iloc[0]
    assert row["pump_id"] == "PS01.P1" and row["vib_norm_mm_s"] == pytest.approx(1.0 / (1420 / 1480) ** 1.5)
    # twice the vibration later on: against the fitted baseline the ratio is 2, not 1
    louder = readings.assign(value=np.where(readings["tag"] == "PS01.P1.VIB_DE_RMS", 2.0, readings["value"]))
    own = pump_features(louder, registry, network)
    fixed = pump_features(louder, registry, network, vib_baseline=baseline)
    assert own["vib_de_baseline_ratio"].dropna().to_numpy() == pytest.approx(1.0)
    assert fixed["vib_de_baseline_ratio"].dropna().to_numpy() == pytest.approx(2.0)
    with pytest.raises(FeatureError, match="missing columns"):
        pump_features(louder, registry, network, vib_baseline=baseline.drop(columns="bearing"))
