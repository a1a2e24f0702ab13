import numpy as np
import pandas as pd
import pytest

from pumptwin.models.training import (
    ANOMALY_FEATURES,
    RUNNING_COLUMN,
    TrainConfig,
    TrainingError,
    baseline_mask,
    feature_matrix_columns,
    time_split,
    train_anomaly,
    train_diagnosis,
    train_ttf,
)

N = 1400  # rows per pump, 10-minute cadence: about 9.7 days
DAY_S = 86_400.0
HEAD = "head_residual_pct_mean_24h"


def _pump(name: str, seed: int, mode: str | None, onset: int = 700, failure: int = 1300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    load = rng.normal(size=(N, 1))
    # 24 h means are smooth: their healthy spread lies well inside the detector's tolerances
    X = 0.05 * load + 0.03 * rng.normal(size=(N, len(ANOMALY_FEATURES)))
    anomaly = np.zeros(N, dtype=int)
    ttf = np.full(N, np.nan)
    modes = np.array(["healthy"] * N, dtype=object)
    if mode is not None:
        grow = np.clip((np.arange(N) - onset) / (failure - onset), 0, None)
        # at failure: vibration ratio up by 1 (4 tolerances), or head residual down by 8 % (4 tolerances)
        column, change = {"bearing_wear": ("vib_de_baseline_ratio_mean_24h", 1.0), "impeller_wear": (HEAD, -8.0)}[mode]
        X[:, ANOMALY_FEATURES.index(column)] += change * grow**1.5
        anomaly[onset:] = 1
        modes[onset:] = mode
        ttf[onset:failure] = (failure - np.arange(onset, failure)) * 600.0
    frame = pd.DataFrame(X, columns=list(ANOMALY_FEATURES))
    frame.insert(0, "event_timestamp", pd.date_range("2024-03-01", periods=N, freq="10min", tz="UTC"))
    frame.insert(0, "pump_id", name)
    frame[RUNNING_COLUMN] = 1.0
    frame["anomaly"] = anomaly
    frame["mode"] = modes
    frame["ttf_s"] = ttf
    frame["failed"] = np.arange(N) >= failure if mode is not None else False
    return frame


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    return pd.concat(
        [
            _pump("PS01.P1", 1, "bearing_wear", onset=500, failure=1000),
            _pump("PS01.P2", 2, None),
            _pump("PS02.P1", 3, "impeller_wear", onset=600, failure=1300),
            _pump("PS02.P2", 4, "bearing_wear", onset=900, failure=1350),
        ],
        ignore_index=True,
    )


def test_time_split_cuts_the_span_and_refuses_bad_fractions(labelled):
    split = time_split(labelled["event_timestamp"], 0.6)
    span = labelled["event_timestamp"].max() - labelled["event_timestamp"].min()
    assert abs((split.train_end - split.train_start) - span * 0.6) < pd.Timedelta(seconds=1)
    assert split.heldout_start == split.train_end and "/" in split.window
    with pytest.raises(TrainingError):
        time_split(labelled["event_timestamp"], 1.0)
    with pytest.raises(TrainingError, match="single instant"):
        time_split(labelled["event_timestamp"].iloc[:1], 0.5)


def test_anomaly_family_alarms_on_faults_and_its_gate_evaluates_any_model(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    # the synthetic features have no filling windows: the baseline is the training window's first six
    # days, chosen without labels, so it holds the slow start of the faults of PS01.P1 and PS02.P1, as
    # it would in the field
    config = TrainConfig(autoencoder=False, target_far=0.01, min_run=3, warmup_s=0.0)
    result = train_anomaly(labelled, split, config, tmp_path)
    assert result.metrics["recall"] > 0.5
    assert result.metrics["precision"] > 0.8
    assert result.metrics["f1"] == pytest.approx(result.evaluate(result.model))
    assert set(result.plots) >= {"confusion_matrix", "precision_recall"}
    assert all(p.is_file() for p in result.plots.values())
    assert result.gate_metric == "f1" and result.higher_is_better
    assert list(result.input_example.columns[:2]) == ["pump_id", "event_timestamp"]


def test_anomaly_family_with_autoencoder_is_reproducible(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    small = labelled[labelled["pump_id"].isin(["PS01.P1", "PS01.P2"])]
    config = TrainConfig(autoencoder=True, target_far=0.01, min_run=3, seed=3)
    a = train_anomaly(small, split, config, tmp_path / "a")
    b = train_anomaly(small, split, config, tmp_path / "b")
    sa, sb = a.model.score(small)["score"].to_numpy(), b.model.score(small)["score"].to_numpy()
    np.testing.assert_array_equal(sa, sb)


def test_diagnosis_and_ttf_families_learn_from_the_training_window(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    config = TrainConfig(autoencoder=False)
    diagnosis = train_diagnosis(labelled, split, config, tmp_path)
    assert set(diagnosis.model.classes_) == {"healthy", "bearing_wear", "impeller_wear"}
    assert diagnosis.metrics["accuracy"] > 0.6
    ttf = train_ttf(labelled, split, config, tmp_path)
    assert ttf.metrics["median_abs_error_h"] == pytest.approx(ttf.evaluate(ttf.model))
    assert not ttf.higher_is_better and "ttf" in ttf.plots


def test_missing_columns_or_no_faults_are_clear_errors(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    with pytest.raises(TrainingError, match="lacks column"):
        train_anomaly(labelled.drop(columns="mode"), split, TrainConfig(), tmp_path)
    with pytest.raises(TrainingError, match="anomaly features"):
        train_anomaly(labelled.drop(columns=ANOMALY_FEATURES[0]), split, TrainConfig(), tmp_path)
    healthy = labelled[labelled["pump_id"] == "PS01.P2"]
    with pytest.raises(TrainingError, match="two classes"):
        train_diagnosis(healthy, split, TrainConfig(), tmp_path)
    with pytest.raises(TrainingError, match="developing faults"):
        train_ttf(healthy, split, TrainConfig(), tmp_path)


def test_anomaly_family_skips_the_warm_up_of_the_long_windows(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    cold = train_anomaly(labelled, split, TrainConfig(min_run=3, warmup_s=0.0, baseline_s=3 * DAY_S), tmp_path / "c")
    warm = train_anomaly(labelled, split, TrainConfig(min_run=3, warmup_s=DAY_S, baseline_s=3 * DAY_S), tmp_path / "w")
    assert cold.train_rows == warm.train_rows == 4 * 3 * 144  # three days of 10-minute rows per pump
    first = labelled["event_timestamp"].min()
    assert cold.input_example["event_timestamp"].min() == first
    assert warm.input_example["event_timestamp"].min() == first + pd.Timedelta(days=1)


def test_anomaly_baseline_is_chosen_without_the_fault_labels(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    config = TrainConfig(min_run=3, warmup_s=0.0, baseline_s=3 * DAY_S)
    # a fault label on every row, or none: the detector learns from the same rows and scores alike
    everything_faulty = labelled.assign(anomaly=1, mode="bearing_wear")
    nothing_faulty = labelled.assign(anomaly=0, mode="healthy", failed=False)
    a = train_anomaly(everything_faulty, split, config, tmp_path / "a")
    b = train_anomaly(nothing_faulty, split, config, tmp_path / "b")
    assert a.train_rows == b.train_rows == 4 * 3 * 144
    np.testing.assert_array_equal(a.model.score(labelled)["score"], b.model.score(labelled)["score"])


def _rows(pump: str, days: float, start: str = "2024-03-01") -> pd.DataFrame:
    n = int(days * 144)
    frame = pd.DataFrame({c: np.zeros(n) for c in ANOMALY_FEATURES})
    frame.insert(0, "event_timestamp", pd.date_range(start, periods=n, freq="10min", tz="UTC"))
    frame.insert(0, "pump_id", pump)
    frame[RUNNING_COLUMN] = 1.0
    return frame


def test_baseline_window_follows_commissioning_and_the_last_repair():
    frame = pd.concat([_rows("PS01.P1", 10.0), _rows("PS01.P2", 6.0, start="2024-03-05")], ignore_index=True)
    mask = baseline_mask(frame, baseline_s=2 * DAY_S, warmup_s=DAY_S, trim=np.inf)
    chosen = frame[mask].groupby("pump_id")["event_timestamp"].agg(["min", "max", "count"])
    # each pump from a day after its own first row, for two days
    assert chosen.loc["PS01.P1", "min"] == pd.Timestamp("2024-03-02", tz="UTC")
    assert chosen.loc["PS01.P2", "min"] == pd.Timestamp("2024-03-06", tz="UTC")
    assert (chosen["count"] == 2 * 144).all()
    restarts = pd.DataFrame(
        {
            "pump_id": ["PS01.P1", "PS01.P1", "PS01.P2"],
            "ts": pd.to_datetime(["2024-03-03", "2024-03-06", "2024-04-01"], utc=True),  # the last is after the data
        }
    )
    moved = frame[baseline_mask(frame, 2 * DAY_S, DAY_S, restarts, trim=np.inf)]
    first = moved.groupby("pump_id")["event_timestamp"].min()
    assert first["PS01.P1"] == pd.Timestamp("2024-03-07", tz="UTC")  # a day after the latest repair
    assert first["PS01.P2"] == pd.Timestamp("2024-03-06", tz="UTC")
    with pytest.raises(TrainingError, match="baseline_s"):
        baseline_mask(frame, 0.0, DAY_S)


def test_baseline_trim_leaves_out_gross_outliers_only():
    frame = _rows("PS01.P1", 4.0)
    rng = np.random.default_rng(0)
    frame["seal_leak_l_h_mean_24h"] = 0.5 + 0.3 * rng.normal(size=len(frame))  # within the 2 L/h tolerance
    frame.loc[200, "seal_leak_l_h_mean_24h"] = 40.0  # a stuck or spiking instrument: 20 tolerances off
    frame.loc[210, "seal_leak_l_h_mean_24h"] = 6.0  # 2.75 tolerances: kept
    mask = baseline_mask(frame, 3 * DAY_S, 0.0, trim=6.0)
    assert not mask[200] and mask[210] and mask[:432].sum() == 431
    assert baseline_mask(frame, 3 * DAY_S, 0.0, trim=np.inf)[:432].all()


def _settles_higher(labelled: pd.DataFrame, rise: float) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """PS01.P2, healthy, with its vibration ratio ``rise`` higher from day 7 (the held-out window) on.

    Returns the frame, its rows that rose, and the first day of them as a window a person confirmed.
    """
    shifted = labelled.copy()
    p2 = (shifted["pump_id"] == "PS01.P2").to_numpy()
    late = p2 & (shifted["event_timestamp"] >= shifted["event_timestamp"].min() + pd.Timedelta(days=7)).to_numpy()
    shifted.loc[late, "vib_de_baseline_ratio_mean_24h"] += rise
    start = shifted.loc[late, "event_timestamp"].min()
    window = pd.DataFrame({"pump_id": ["PS01.P2"], "start": [start], "end": [start + pd.Timedelta(days=1)]})
    return shifted, late, window


def test_confirmed_false_alarms_teach_their_pumps_a_new_normal(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    shifted, late, windows = _settles_higher(labelled, 0.6)  # a new normal a person confirms
    config = TrainConfig(target_far=0.01, min_run=3, warmup_s=0.0, max_threshold_raise=4.0)
    plain = train_anomaly(shifted, split, config, tmp_path / "a")
    alarmed = plain.model.score(shifted)["alarm"].to_numpy() & late
    assert alarmed.any()
    learnt = train_anomaly(shifted, split, config, tmp_path / "b", healthy_windows=windows)
    assert not (learnt.model.score(shifted)["alarm"].to_numpy() & late).any()
    assert learnt.metrics["healthy_windows"] == 1.0 and learnt.metrics["pumps_rebaselined"] == 1.0
    assert set(learnt.params["rebaselined_rows_by_pump"]) == {"PS01.P2"}
    assert learnt.metrics["false_alarms_per_asset_month"] <= plain.metrics["false_alarms_per_asset_month"]
    # the faults of the other pumps still alarm
    assert learnt.metrics["recall"] == pytest.approx(plain.metrics["recall"])
    assert plain.metrics["healthy_windows"] == 0.0 and plain.metrics["pumps_rebaselined"] == 0.0


def test_confirmed_false_alarms_teach_the_diagnosis_what_healthy_looks_like(labelled, tmp_path):
    split = time_split(labelled["event_timestamp"], 0.6)
    # as high as a bearing fault's: the model, never having seen it, calls it bearing wear
    shifted, late, windows = _settles_higher(labelled, 1.0)
    config = TrainConfig()
    columns = feature_matrix_columns(shifted)
    plain = train_diagnosis(shifted, split, config, tmp_path / "a")
    said_healthy = (plain.model.predict(shifted.loc[late, columns].astype(float)) == "healthy").mean()
    assert said_healthy < 0.5
    learnt = train_diagnosis(shifted, split, config, tmp_path / "b", healthy_windows=windows)
    assert learnt.metrics["confirmed_healthy_rows"] == 145.0  # a day of 10-minute rows, both ends
    assert (learnt.model.predict(shifted.loc[late, columns].astype(float)) == "healthy").mean() > 0.9
    assert learnt.heldout_rows == plain.heldout_rows - 145  # the confirmed rows no longer judge it
    # a window over a fault keeps the fault's rows as they are
    faulty = windows.assign(pump_id="PS01.P1")
    assert (
        train_diagnosis(shifted, split, config, tmp_path / "c", healthy_windows=faulty).metrics[
            "confirmed_healthy_rows"
        ]
        == 0.0
    )
