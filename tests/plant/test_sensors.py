"""Sensor realism: each effect appears at its configured rate, and ideal sensors change nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.sensors import (
    BAD,
    GOOD,
    QUESTIONABLE,
    SUBSTITUTED,
    ReadingBlock,
    SensorConfig,
    SensorError,
    SensorState,
    apply_sensors,
    readings_frame,
    tag_table,
)
from pumptwin.twin.assets import TagSpec

START_NS = pd.Timestamp("2024-01-01T00:00:00Z").value
K = 4000
QUIET = SensorConfig.ideal()


def specs(n: int = 20, slow: int = 0) -> list[TagSpec]:
    out = [TagSpec(f"PS01.P{i}.FLOW", "PS01", f"P{i}", "FLOW", "m3/h", -100.0, 2000.0, 1.0) for i in range(n - slow)]
    out += [
        TagSpec(f"PS02.P{i}.BRG_DE_TEMP", "PS02", f"P{i}", "BRG_DE_TEMP", "degC", -40.0, 150.0, 5.0)
        for i in range(slow)
    ]
    return out


def run(config: SensorConfig, tags: list[TagSpec], k: int = K, seed: int = 0) -> tuple[ReadingBlock, np.ndarray]:
    table = tag_table(tags, 1.0, config, np.random.default_rng(seed))
    true = np.tile(np.linspace(100.0, 120.0, len(tags)), (k, 1)) + np.linspace(0, 1, k)[:, None]
    block, _ = apply_sensors(
        true, 0, START_NS, 1.0, table, config, SensorState.initial(table), np.random.default_rng(seed + 1)
    )
    return block, true


def test_ideal_sensors_pass_true_values() -> None:
    tags = specs(10, slow=3)
    block, true = run(QUIET, tags)
    frame = readings_frame(block, [t.tag for t in tags])
    assert (frame["quality"] == "good").all()
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    k = ((frame["ts"] - frame["ts"].iloc[0]).dt.total_seconds()).to_numpy().astype(int)
    np.testing.assert_array_equal(frame["value"].to_numpy(), true[k, block.tag])
    counts = frame.groupby("tag").size()
    assert counts["PS01.P0.FLOW"] == K
    assert counts["PS02.P0.BRG_DE_TEMP"] == K // 5  # sampled every 5 s
    assert not frame.duplicated(["tag", "ts"]).any()
    assert frame.groupby("tag")["ts"].apply(lambda s: s.is_monotonic_increasing).all()


def test_rates_of_data_path_faults() -> None:
    rate = 0.02
    config = SensorConfig(
        noise_scale=0.0,
        quantise=False,
        drift_fraction=0.0,
        stuck_per_tag_day=0.0,
        outage_per_station_day=0.0,
        dropout_rate=rate,
        spike_rate=0.0,
        duplicate_rate=rate,
        out_of_order_rate=rate,
        questionable_rate=rate,
        bad_rate=rate,
        substituted_rate=rate,
    )
    tags = specs(20)
    block, _ = run(config, tags)
    frame = readings_frame(block, [t.tag for t in tags])
    scheduled = K * len(tags)
    unique = frame.drop_duplicates(["tag", "ts"])
    assert 1 - len(unique) / scheduled == pytest.approx(rate, abs=0.003)
    assert (len(frame) - len(unique)) / scheduled == pytest.approx(rate * (1 - rate), abs=0.003)
    late = frame.groupby("tag")["ts"].transform(lambda s: s < s.cummax())
    assert late.mean() == pytest.approx(rate * (1 - rate), abs=0.004)
    shares = unique["quality"].value_counts(normalize=True)
    for name in ("questionable", "bad", "substituted"):
        assert shares[name] == pytest.approx(rate, abs=0.003)
    assert unique.loc[unique["quality"] == "bad", "value"].isna().all()
    assert unique.loc[unique["quality"] != "bad", "value"].notna().all()


def test_instrument_effects() -> None:
    tags = specs(20)
    config = SensorConfig(
        noise_scale=1.0,
        quantise=True,
        drift_fraction=0.0,
        stuck_per_tag_day=0.0,
        outage_per_station_day=0.0,
        dropout_rate=0.0,
        spike_rate=0.01,
        duplicate_rate=0.0,
        out_of_order_rate=0.0,
        questionable_rate=0.0,
        bad_rate=0.0,
        substituted_rate=0.0,
    )
    block, true = run(config, tags)
    err = block.value - true.reshape(-1)[np.arange(block.size)]
    spikes = np.abs(err) > 0.1 * 2100
    assert spikes.mean() == pytest.approx(0.01, abs=0.002)
    noise = err[~spikes]
    assert 1.5 < noise.std() < 3.0  # 2 m3/h + 0.3 % of ~110 m3/h
    np.testing.assert_allclose(block.value[~spikes] * 10, np.round(block.value[~spikes] * 10), atol=1e-6)


def test_stuck_values_drift_and_outages() -> None:
    tags = specs(20)
    base = SensorConfig.ideal()
    stuck = run(replace(base, stuck_per_tag_day=200.0, stuck_mean_s=60.0), tags)[0]
    values = stuck.value.reshape(K, -1)
    frozen = (np.diff(values, axis=0) == 0).mean()
    assert 0.05 < frozen < 0.35  # true values change every step, so equal neighbours come from stuck episodes
    drift = run(replace(base, drift_fraction=1.0, drift_per_day=1.0), tags)
    err = drift[0].value.reshape(K, -1) - drift[1]
    assert np.abs(err[-1]).mean() > np.abs(err[10]).mean() * 50
    out = run(replace(base, outage_per_station_day=50.0, outage_mean_s=300.0), tags)[0]
    assert out.size < K * len(tags)
    missing_steps = K - np.unique(out.ts_ns).size
    assert missing_steps > 0  # whole station silent at those times


def test_seeded_and_validated() -> None:
    tags = specs(5)
    a = run(SensorConfig(), tags, k=500, seed=4)[0]
    b = run(SensorConfig(), tags, k=500, seed=4)[0]
    c = run(SensorConfig(), tags, k=500, seed=5)[0]
    np.testing.assert_array_equal(a.value, b.value)
    assert not np.array_equal(a.value, c.value)
    assert {GOOD, QUESTIONABLE, BAD, SUBSTITUTED} >= set(np.unique(a.quality).tolist())
    with pytest.raises(SensorError, match="dropout_rate"):
        SensorConfig(dropout_rate=1.5)
    with pytest.raises(SensorError, match="noise_scale"):
        SensorConfig(noise_scale=-1.0)
