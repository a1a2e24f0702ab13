"""Leak detection: compensated balance, CUSUM alarms, location and rate, on the line simulator's data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.line_dynamics import (
    InitialConditions,
    LeakSpec,
    LineSpec,
    Operation,
    simulate_line,
    start_stop_operations,
)
from pumptwin.twin.leak.detection import (
    LeakConfig,
    LeakError,
    LeakMonitor,
    LineModel,
    MeterLayout,
    NoiseModel,
    fit_noise_model,
    line_pack_weights,
    locate_leak,
    monitor_frame,
    pressure_residuals,
    summarise_alarm,
)

G = 9.80665
LINE = LineSpec(profile=((0.0, 50.0), (12_000.0, 85.0), (25_000.0, 70.0), (38_000.0, 110.0), (50_000.0, 95.0)))
METERS = 11
HOUR = 3600.0


def line_model() -> LineModel:
    return LineModel(
        LINE.length_m,
        LINE.diameter_m,
        LINE.roughness_m,
        LINE.wave_speed_m_s,
        LINE.density_kg_m3,
        LINE.kinematic_viscosity_m2_s,
        LINE.profile,
    )


def layout() -> MeterLayout:
    return MeterLayout.numbered((0.0, 12_500.0, 25_000.0, 37_500.0, 50_000.0))


@pytest.fixture(scope="module")
def trained() -> LeakConfig:
    """Noise model learned on 36 h of leak-free running with shutdowns and speed and pressure changes."""
    ops = [
        *start_stop_operations(3 * HOUR, 4 * HOUR, speed=0.85),
        Operation(6.5 * HOUR, pump_speed=0.95, ramp_s=60.0),
        Operation(8.5 * HOUR, pump_speed=0.8, ramp_s=90.0),
        Operation(12 * HOUR, delivery_pressure_pa=8e5, ramp_s=120.0),
        *start_stop_operations(15 * HOUR, 18 * HOUR, speed=1.0),
        Operation(22 * HOUR, pump_speed=0.75, ramp_s=120.0),
        Operation(26 * HOUR, delivery_pressure_pa=4e5, ramp_s=120.0),
        Operation(30 * HOUR, pump_speed=0.9, ramp_s=60.0),
    ]
    run = simulate_line(LINE, 36 * HOUR, operations=ops, dt_s=2.5, seed=1, meter_seed=METERS)
    config = LeakConfig(line_model(), layout())
    noise = fit_noise_model(config, run.readings)
    return LeakConfig(config.line, config.meters, noise=noise)


def test_line_pack_weights_integrate_the_line() -> None:
    line = line_model()
    w = line_pack_weights(line, (0.0, 12_500.0, 25_000.0, 37_500.0, 50_000.0))
    assert w.sum() == pytest.approx(line.area_m2 * line.length_m / (line.density_kg_m3 * line.wave_speed_m_s**2))
    # transmitters not at the ends: flat extrapolation gives the ends their share
    w2 = line_pack_weights(line, (10_000.0, 40_000.0))
    assert w2[0] == pytest.approx(w2[1] * 25_000.0 / 25_000.0)
    assert w2.sum() == pytest.approx(w.sum())


def test_compensated_balance_closed_form() -> None:
    """Constant flows, pressures rising linearly: imbalance = q_in - q_out - sum(w) dp/dt."""
    t = np.arange(0.0, 3 * HOUR, 5.0)
    rate = 50.0  # Pa/s
    frame = pd.DataFrame({"flow_in_m3s": 0.30, "flow_out_m3s": 0.29}, index=pd.Index(t, name="t_s"))
    for k in range(5):
        frame[f"pressure_{k}_pa"] = 2e6 - 3e5 * k + rate * t
    config = LeakConfig(line_model(), layout())
    out = monitor_frame(config, frame)
    expected = 0.01 - line_pack_weights(config.line, config.meters.pressure_positions_m).sum() * rate
    for w in config.windows_s:
        col = out[f"imbalance_{w:g}_m3s"].dropna()
        assert len(col) > 0
        assert np.allclose(col, expected, rtol=1e-9, atol=1e-12)
    assert not out["alarm"].any()  # untrained: residuals only


def test_noise_model_learned_from_leak_free_data(trained: LeakConfig) -> None:
    noise = trained.noise
    assert noise is not None
    assert noise.friction_scale == pytest.approx(1.0, abs=0.02)
    assert all(0 < s < 1e-3 for s in noise.sigma_m3s)
    assert all(h >= 10.0 for h in noise.cusum_h)


def test_detects_a_one_percent_leak_within_ten_minutes(trained: LeakConfig) -> None:
    run = simulate_line(LINE, 3 * HOUR, leak=LeakSpec(20_000.0, 1.5 * HOUR, 0.01), dt_s=2.5, seed=5, meter_seed=METERS)
    frame = monitor_frame(trained, run.readings)
    summary = summarise_alarm(frame, after_s=900.0)
    assert 1.5 * HOUR <= summary.alarm_time_s <= 1.5 * HOUR + 600.0
    true_rate = run.truth["leak_m3s"].iloc[-1]
    assert summary.leak_rate_m3s == pytest.approx(true_rate, rel=0.10)
    assert abs(summary.leak_position_m - 20_000.0) < 3_000.0


def test_silent_on_leak_free_start_stop(trained: LeakConfig) -> None:
    ops = [
        *start_stop_operations(2 * HOUR, 3.5 * HOUR, speed=0.95),
        Operation(5 * HOUR, pump_speed=0.85, ramp_s=120.0),
        Operation(5.5 * HOUR, delivery_pressure_pa=7e5, ramp_s=120.0),
    ]
    run = simulate_line(LINE, 7 * HOUR, operations=ops, dt_s=2.5, seed=6, meter_seed=METERS)
    frame = monitor_frame(trained, run.readings)
    assert not frame["alarm"].any()
    # the transient did inflate the uncertainty: z stays small while the line pack moves
    assert frame["unsteadiness_m3"].max() > 10 * frame["unsteadiness_m3"].median()


@pytest.mark.parametrize("position_m", [8_000.0, 30_000.0, 44_000.0])
def test_locates_a_five_percent_leak(trained: LeakConfig, position_m: float) -> None:
    run = simulate_line(
        LINE, 2.5 * HOUR, leak=LeakSpec(position_m, 1.5 * HOUR, 0.05), dt_s=2.5, seed=8, meter_seed=METERS
    )
    summary = summarise_alarm(monitor_frame(trained, run.readings), after_s=900.0)
    assert abs(summary.leak_position_m - position_m) < 1_000.0
    assert summary.leak_rate_m3s == pytest.approx(run.truth["leak_m3s"].iloc[-1], rel=0.03)


@pytest.mark.parametrize("x_leak", [3_000.0, 25_000.0, 47_000.0])
def test_gradient_intersection_closed_form(x_leak: float) -> None:
    line = line_model()
    q_in, q_out = 0.32, 0.30
    rg = line.density_kg_m3 * G
    s_in = float(line.friction_slope(q_in))
    s_out = float(line.friction_slope(q_out))
    h_leak = 400.0
    h_in = h_leak + s_in * x_leak
    h_out = h_leak - s_out * (line.length_m - x_leak)
    p_in = (h_in - line.elevation_m(0.0)) * rg
    p_out = (h_out - line.elevation_m(line.length_m)) * rg
    x = locate_leak(line, (0.0, line.length_m), p_in, p_out, q_in, q_out)
    assert x == pytest.approx(x_leak, abs=1e-6)
    assert math.isnan(locate_leak(line, (0.0, line.length_m), p_in, p_out, q_in, q_in))


def test_streaming_matches_batch_and_timestamps(trained: LeakConfig) -> None:
    run = simulate_line(
        LINE, 2.5 * HOUR, leak=LeakSpec(35_000.0, 1.5 * HOUR, 0.02), dt_s=2.5, seed=9, meter_seed=METERS
    )
    a = monitor_frame(trained, run.readings, chunk_s=HOUR)
    b = monitor_frame(trained, run.readings, chunk_s=317.0)
    assert a["alarm_time_s"].dropna().iloc[0] == b["alarm_time_s"].dropna().iloc[0]
    pd.testing.assert_series_equal(a["cusum_300"], b["cusum_300"])
    stamped = run.readings.copy()
    stamped.index = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(stamped.index, unit="s")
    monitor = LeakMonitor(trained)
    status = monitor.update(stamped)
    assert status.alarm
    assert status.alarm_time_s - pd.Timestamp("2024-01-01", tz="UTC").timestamp() == a["alarm_time_s"].dropna().iloc[0]


def test_pressure_residuals_grow_downstream_of_a_leak(trained: LeakConfig) -> None:
    quiet = simulate_line(LINE, HOUR, dt_s=2.5, seed=3, meter_seed=METERS)
    leaky = simulate_line(LINE, HOUR, leak=LeakSpec(10_000.0, 60.0, 0.05), dt_s=2.5, seed=3, meter_seed=METERS)
    r0 = pressure_residuals(trained, quiet.readings).iloc[-120:].mean()
    r1 = pressure_residuals(trained, leaky.readings).iloc[-120:].mean()
    assert abs(r0["pressure_4_pa"]) < 1e4
    assert r1["pressure_4_pa"] - r0["pressure_4_pa"] > 5e4
    assert r1["flow_residual_m3s"] > 0.8 * leaky.truth["leak_m3s"].iloc[-1]


def test_missing_meter_is_an_error(trained: LeakConfig) -> None:
    run = simulate_line(LINE, 600.0, dt_s=2.5)
    with pytest.raises(LeakError, match="pressure_2_pa"):
        LeakMonitor(trained).update(run.readings.drop(columns="pressure_2_pa"))


def test_unsorted_or_duplicated_index_is_an_error(trained: LeakConfig) -> None:
    readings = simulate_line(LINE, 600.0, dt_s=2.5).readings
    with pytest.raises(LeakError, match="increase"):
        LeakMonitor(trained).update(readings.iloc[::-1])
    with pytest.raises(LeakError, match="increase"):
        LeakMonitor(trained).update(pd.concat([readings.iloc[:10], readings.iloc[9:20]]))


def test_streamed_chunks_must_move_forward(trained: LeakConfig) -> None:
    readings = simulate_line(LINE, 600.0, dt_s=2.5).readings
    monitor = LeakMonitor(trained)
    monitor.update(readings.iloc[:60])
    with pytest.raises(LeakError, match="not after"):
        monitor.update(readings.iloc[50:80])


def test_nan_rows_are_dropped_and_long_gaps_flagged(trained: LeakConfig) -> None:
    readings = simulate_line(LINE, 4 * HOUR, dt_s=2.5, seed=4, meter_seed=METERS).readings.copy()
    t = readings.index.to_numpy()
    readings.loc[(t > 5_000) & (t < 5_010), "flow_out_m3s"] = np.nan  # short: bridged
    readings.loc[(t > 8_000) & (t < 8_600), "pressure_1_pa"] = np.nan  # long: windows skipped
    out = monitor_frame(trained, readings)
    assert not out["alarm"].any()
    assert not out["data_ok"].loc[8_600:9_000].all()
    assert out["data_ok"].iloc[-1]
    assert out["data_ok"].loc[5_400:7_000].all()


def test_untrained_fit_needs_enough_steady_data() -> None:
    readings = simulate_line(LINE, 1_800.0, dt_s=2.5).readings
    with pytest.raises(LeakError, match="steady"):
        fit_noise_model(LeakConfig(line_model(), layout()), readings)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: MeterLayout((0.0, 1.0), ("a",)), "columns"),
        (lambda: MeterLayout((5.0, 1.0), ("a", "b")), "increase"),
        (lambda: LineModel(-1.0, 0.5), "length_m"),
        (lambda: LeakConfig(line_model(), layout(), windows_s=(30.0,)), "eval_s"),
        (
            lambda: LeakConfig(line_model(), layout(), noise=NoiseModel(0.0, 0.0, (1.0,), (1.0,), (1.0,), (1.0,))),
            "one per window",
        ),
        (lambda: LeakConfig(line_model(), MeterLayout.numbered((0.0, 60_000.0))), "within"),
    ],
)
def test_bad_config_names_the_value(build: object, match: str) -> None:
    with pytest.raises(LeakError, match=match):
        build()  # type: ignore[operator]


def test_leak_during_shut_in_is_seen_through_line_pack(trained: LeakConfig) -> None:
    ops = start_stop_operations(1.5 * HOUR, 6 * HOUR)
    run = simulate_line(
        LINE,
        4 * HOUR,
        initial=InitialConditions(),
        operations=ops,
        leak=LeakSpec(25_000.0, 2.5 * HOUR, 0.01),
        dt_s=2.5,
        seed=12,
        meter_seed=METERS,
    )
    frame = monitor_frame(trained, run.readings)
    alarm = frame["alarm_time_s"].dropna()
    assert len(alarm) and 2.5 * HOUR <= alarm.iloc[0] <= 3.0 * HOUR
    # no flow, no hydraulic gradient: the leak is not located
    assert frame["leak_position_m"].isna().all()


def test_noise_model_learns_the_spread_of_meter_changes(trained: LeakConfig) -> None:
    noise = trained.noise
    assert noise is not None
    # 2 kPa white transmitter noise over two 900 s windows of 5 s samples
    expected_m = 2_000.0 / (LINE.density_kg_m3 * G) * math.sqrt(2.0 / 180.0)
    assert len(noise.head_change_sd_m) == 5
    assert all(0.6 * expected_m < s < 1.6 * expected_m for s in noise.head_change_sd_m)
    # the flow meters' change is set by their repeatability and slow drift, well under 0.1 %
    assert 2e-5 < noise.flow_change_sd_frac < 1e-3


@pytest.mark.parametrize("position_m", [10_000.0, 31_000.0])
def test_profile_location_of_a_one_percent_leak(trained: LeakConfig, position_m: float) -> None:
    run = simulate_line(
        LINE, 3 * HOUR, leak=LeakSpec(position_m, 1.5 * HOUR, 0.01), dt_s=2.5, seed=21, meter_seed=METERS
    )
    truth = run.leak_node_position_m
    profile = summarise_alarm(monitor_frame(trained, run.readings), after_s=900.0)
    ends_cfg = dataclasses.replace(trained, location_method="ends")
    ends = summarise_alarm(monitor_frame(ends_cfg, run.readings), after_s=900.0)
    assert profile.alarm_time_s == ends.alarm_time_s
    assert profile.leak_rate_m3s == ends.leak_rate_m3s
    assert abs(profile.leak_position_m - truth) < 1_500.0
    assert profile.leak_position_m != ends.leak_position_m


def test_profile_location_needs_learnt_spreads(trained: LeakConfig) -> None:
    assert trained.noise is not None
    bare = dataclasses.replace(trained.noise, head_change_sd_m=(), flow_change_sd_frac=math.nan)
    run = simulate_line(LINE, 3 * HOUR, leak=LeakSpec(20_000.0, 1.5 * HOUR, 0.02), dt_s=2.5, seed=22, meter_seed=METERS)
    fallback = summarise_alarm(monitor_frame(dataclasses.replace(trained, noise=bare), run.readings), 900.0)
    ends = summarise_alarm(monitor_frame(dataclasses.replace(trained, location_method="ends"), run.readings), 900.0)
    assert fallback.leak_position_m == pytest.approx(ends.leak_position_m)


def test_unknown_location_method_is_an_error() -> None:
    with pytest.raises(LeakError, match="location_method"):
        LeakConfig(line_model(), layout(), location_method="nearest")


def test_noise_model_calibrates_each_segment(trained: LeakConfig) -> None:
    noise = trained.noise
    assert noise is not None
    assert len(noise.segment_friction_scale) == 4
    assert all(s == pytest.approx(1.0, abs=0.05) for s in noise.segment_friction_scale)
    assert all(abs(d) < 1.0 for d in noise.segment_head_offset_m)
    assert len(noise.head_model_sd_m) == 5
    assert all(0 < s < 0.2 for s in noise.head_model_sd_m)


def test_leak_after_a_speed_change_is_located_without_a_baseline(trained: LeakConfig) -> None:
    ops = [Operation(1.5 * HOUR - 120.0, pump_speed=0.85, ramp_s=60.0)]
    run = simulate_line(
        LINE,
        3 * HOUR,
        initial=InitialConditions(pump_speed=0.95),
        operations=ops,
        leak=LeakSpec(36_000.0, 1.5 * HOUR, 0.02),
        dt_s=2.5,
        seed=23,
        meter_seed=METERS,
    )
    truth = run.leak_node_position_m
    profile = summarise_alarm(monitor_frame(trained, run.readings), after_s=900.0)
    ends = summarise_alarm(monitor_frame(dataclasses.replace(trained, location_method="ends"), run.readings), 900.0)
    assert math.isfinite(profile.alarm_time_s)
    assert abs(profile.leak_position_m - truth) < 1_500.0
    assert profile.leak_position_m != ends.leak_position_m
