import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.models.ensemble import CalibratedEnsemble
from pumptwin.models.fleet import FleetDetector
from pumptwin.models.monitoring import (
    DETECTOR_COLUMNS,
    INPUTS,
    SOURCE_FEATURES,
    TIME_COLUMN,
    MonitorConfig,
    MonitoringError,
    ToleranceScaler,
    add_detector_inputs,
    build_pump_detector,
    describe,
    detector_inputs,
    sister_mean,
)

T0 = pd.Timestamp("2024-03-01", tz="UTC")
ROWS_PER_DAY = 144


def test_tolerance_scaler_clips_against_the_direction_of_deterioration():
    X = np.array([[0.0, 10.0, 5.0], [0.2, 10.0, 5.0], [-0.2, 10.0, 5.0], [0.0, 10.0, 5.0]])
    scaler = ToleranceScaler([1.0, 0.5, 2.0], [1, -1, 0]).fit(X)
    np.testing.assert_allclose(scaler.median_, [0.0, 10.0, 5.0])
    assert scaler.scale_[1] == 0.5 and scaler.scale_[2] == 2.0  # tolerance floors a zero spread
    z = scaler.transform(np.array([[3.0, 11.0, 1.0], [-3.0, 9.0, 9.0]]))
    np.testing.assert_allclose(z, [[3.0 / scaler.scale_[0], 0.0, -2.0], [0.0, -2.0, 2.0]])
    with pytest.raises(MonitoringError, match="tolerances"):
        ToleranceScaler([1.0], [1]).fit(X)
    with pytest.raises(MonitoringError, match="positive"):
        ToleranceScaler([1.0, 0.0, 1.0], [1, 1, 1]).fit(X)


def test_trend_baseline_follows_a_drift_and_widens_by_the_slope_uncertainty():
    # Training: 5 days of an input drifting by 0.1 per day, no noise; time (h) is the last column.
    t = np.arange(5 * ROWS_PER_DAY) / 6.0
    X = np.column_stack([1.0 + 0.1 * t / 24.0, t])
    scaler = ToleranceScaler([0.5], [0], trend=True, correlated_rows=144).fit(X)
    assert scaler.slope_[0] == pytest.approx(0.1 / 24.0)
    assert scaler.scale_[0] == 0.5  # a perfect line: the tolerance is the scale
    # 30 days later the drift has gone on: no deviation
    later = np.array([[1.0 + 0.1 * 35.0, 35.0 * 24.0]])
    assert scaler.transform(later)[0, 0] == pytest.approx(0.0, abs=1e-9)
    # a step off the line is divided by the prediction band at that time (closed form)
    dt = 35.0 * 24.0 - scaler.t_mid_h_
    sxx = np.sum((t - t.mean()) ** 2)
    band = np.sqrt(0.5**2 + (0.5 * np.sqrt(144 / sxx) * dt) ** 2)
    step = later + np.array([[2.0, 0.0]])
    assert scaler.transform(step)[0, 0] == pytest.approx(2.0 / band)
    with pytest.raises(MonitoringError, match="more than one time"):
        ToleranceScaler([0.5], [0], trend=True).fit(np.array([[1.0, 5.0], [1.1, 5.0]]))


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 1000.0), st.floats(1.0, 1000.0))
def test_prediction_band_never_narrower_than_the_tolerance(offset_h, step):
    rng = np.random.default_rng(0)
    t = np.arange(300) / 6.0
    X = np.column_stack([rng.normal(0.0, 0.1, 300), t])
    scaler = ToleranceScaler([1.0], [0], trend=True).fit(X)
    row = np.array([[scaler.median_[0] + scaler.slope_[0] * (t[-1] + offset_h - scaler.t_mid_h_) + step,
                     t[-1] + offset_h]])  # fmt: skip
    assert 0 < scaler.transform(row)[0, 0] <= step / 1.0 + 1e-9


def _source(n: int, seed: int, pump: str = "PS01.P1", start: pd.Timestamp = T0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = {
        "brg_de_temp_c_mean_24h": 55.0,
        "brg_nde_temp_c_mean_24h": 50.0,
        "winding_temp_c_mean_24h": 90.0,
        "vib_de_baseline_ratio_mean_24h": 1.0,
        "vib_nde_baseline_ratio_mean_24h": 1.0,
        "seal_leak_l_h_mean_24h": 1.0,
        "strainer_dp_bar_mean_24h": 0.2,
        "head_residual_pct_mean_24h": 0.0,
        "efficiency_residual_mean_24h": 0.0,
        "npsh_margin_m_mean_24h": 10.0,
    }
    frame = pd.DataFrame({c: v + 0.05 * INPUTS.get(c, INPUTS["brg_de_minus_nde_k"]).tolerance
                          * rng.normal(size=n) for c, v in base.items()})  # fmt: skip
    frame.insert(0, "event_timestamp", pd.date_range(start, periods=n, freq="10min"))
    frame.insert(0, "pump_id", pump)
    frame["running_frac_1h"] = 1.0
    return frame


def _station(n: int, seed: int) -> pd.DataFrame:
    """Two sister pumps of one station, P1 then P2 (same times)."""
    return pd.concat([_source(n, seed, "PS01.P1"), _source(n, seed + 100, "PS01.P2")], ignore_index=True)


def test_sister_pumps_cancel_a_common_mode_change_and_keep_one_pumps_fault():
    frame = pd.concat([_station(4, 1), _source(4, 9, "PS02.P1")], ignore_index=True)
    head = "head_residual_pct_mean_24h"
    frame[head] = [1.0, 1.0, 3.0, 3.0, 0.0, 0.0, 2.0, 0.0, 5.0, 5.0, 5.0, 5.0]
    frame.loc[3, "running_frac_1h"] = 0.5  # P1 stopped at the last time
    np.testing.assert_allclose(sister_mean(frame, head)[:8], [0.0, 0.0, 2.0, 0.0, 1.0, 1.0, 3.0, np.nan])
    out = detector_inputs(frame)[head].to_numpy()
    # both pumps 2 % up together (time 2): no change; P1 alone 3 % up (time 3): 3; no sister running: NaN
    np.testing.assert_allclose(out[:8], [1.0, 1.0, 1.0, 3.0, -1.0, -1.0, -1.0, np.nan])
    assert np.isnan(out[8:]).all()  # PS02.P1 has no sister at all


def test_detector_inputs_cancel_a_common_temperature_offset_and_carry_time_in_hours():
    frame = _station(3, 1)
    frame = frame[frame["pump_id"] == "PS01.P1"].copy()
    frame[["brg_de_temp_c_mean_24h", "brg_nde_temp_c_mean_24h", "winding_temp_c_mean_24h"]] = [
        [50.0, 45.0, 80.0], [55.0, 50.0, 85.0], [60.0, 55.0, 90.0]]  # fmt: skip
    out = detector_inputs(frame)
    assert list(out.columns) == list(DETECTOR_COLUMNS)
    assert out["brg_de_minus_nde_k"].tolist() == [5.0, 5.0, 5.0]
    assert out["winding_minus_brg_nde_k"].tolist() == [35.0, 35.0, 35.0]
    np.testing.assert_allclose(np.diff(out[TIME_COLUMN]), 1.0 / 6.0)
    assert out[TIME_COLUMN].iloc[0] == pytest.approx(T0.value / 3.6e12)
    added = add_detector_inputs(frame.set_index(pd.Index([7, 7, 8])))  # a repeated index is kept row by row
    assert len(added) == 3 and added["brg_de_minus_nde_k"].tolist() == [5.0, 5.0, 5.0]
    with pytest.raises(MonitoringError, match="seal_leak"):
        detector_inputs(frame.drop(columns="seal_leak_l_h_mean_24h"))


def _fleet(config: MonitorConfig) -> FleetDetector:
    return FleetDetector(build_pump_detector(config), DETECTOR_COLUMNS, inputs=add_detector_inputs)


def test_a_drifting_sensor_does_not_alarm_but_a_fault_does():
    n_train, n_test = 5 * ROWS_PER_DAY, 30 * ROWS_PER_DAY
    n = n_train + n_test
    frame = _station(n, 2)
    p1 = (frame["pump_id"] == "PS01.P1").to_numpy()
    # P1's seal-leak transmitter drifts 0.2 L/h per day from the start: already visible in training
    frame.loc[p1, "seal_leak_l_h_mean_24h"] += 0.2 * np.arange(n) / ROWS_PER_DAY
    train = frame[frame["event_timestamp"] < T0 + pd.Timedelta(days=5)]
    trend = _fleet(MonitorConfig()).fit(train)
    constant = _fleet(MonitorConfig(trend=False)).fit(train)
    assert trend.score(frame)["score"].notna().all()
    assert not trend.score(frame)["alarm"].any()
    assert constant.score(frame)["alarm"][p1].any()  # a median baseline reads drift as a fault
    # P2's seal failing from day 10: +10 L/h (5 tolerances) over 5 days
    faulty = frame.copy()
    grow = np.clip((np.arange(n) - 10 * ROWS_PER_DAY) / (5 * ROWS_PER_DAY), 0.0, 1.0)
    faulty.loc[~p1, "seal_leak_l_h_mean_24h"] += 10.0 * grow
    alarm = trend.score(faulty)["alarm"].to_numpy()
    p2_alarm = alarm[~p1]
    assert p2_alarm[10 * ROWS_PER_DAY :].any() and not p2_alarm[: 10 * ROWS_PER_DAY].any()
    assert not alarm[p1].any()
    restored = pickle.loads(pickle.dumps(trend))
    np.testing.assert_array_equal(restored.score(faulty)["alarm"], alarm)


def test_detector_never_alarms_below_the_cusum_boundary_and_autoencoder_is_a_second_member():
    detector = build_pump_detector(MonitorConfig(target_far=0.01, min_run=3))
    assert isinstance(detector, CalibratedEnsemble)
    assert detector.min_scale == 1.0 and detector.min_threshold == 1.0 and detector.min_run == 3
    assert len(detector.detectors) == 1
    with_ae = build_pump_detector(MonitorConfig(autoencoder=True))
    assert len(with_ae.detectors) == 2 and with_ae.fusion == "max"
    assert "WindowAutoencoder" in describe(MonitorConfig(autoencoder=True))
    assert set(SOURCE_FEATURES) >= {"seal_leak_l_h_mean_24h", "brg_nde_temp_c_mean_24h"}
