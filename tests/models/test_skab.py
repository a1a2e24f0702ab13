"""SKAB protocol and the PCA T-squared + Q detector, on tiny hand-made series.

Every expected figure below is worked out by hand (or with the closed-form sigmoid written out
again here), not by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pumptwin.models import skab_benchmark as bench
from pumptwin.models.detectors import PcaT2QDetector, causal_mean, hold_persistent, skab_detector
from pumptwin.models.skab import (
    FEATURES,
    NAB_PROFILES,
    NabProfile,
    PointScores,
    SkabResult,
    Targets,
    changepoints_from_prediction,
    group_of,
    leave_one_group_out,
    missed_targets,
    nab_file,
    nab_score,
    nab_windows,
    point_scores,
    prediction_table,
    score_predictions,
    select_in_sample,
    select_setting,
    split_file,
)

STANDARD, LOW_FP, LOW_FN = NAB_PROFILES


def sigmoid_at(pos: int, a_tp: float, a_fp: float) -> float:
    """The NAB sigmoid at sample ``pos`` of 1000, written out independently."""
    x = -math.pi / 2 + pos * math.pi / 999
    half = (a_tp - a_fp) / 2
    return half * (-math.tanh(x) / math.tanh(math.pi / 2)) + half + a_fp


# --- point-wise -------------------------------------------------------------------------------


def test_point_scores_single_file():
    # TP = 2 (rows 2, 3), FP = 1 (row 1), FN = 1 (row 4), TN = 2 (rows 0, 5)
    s = point_scores([np.array([0, 0, 1, 1, 1, 0])], [np.array([0, 1, 1, 1, 0, 0])])
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 1, 1, 2)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.far_pct == pytest.approx(100 / 3)
    assert s.mar_pct == pytest.approx(100 / 3)


def test_point_scores_sum_counts_over_files():
    # file a: TP 1, FN 1; file b: FP 1, TN 3 -> F1 = 1 / (1 + 1) = 0.5, FAR 25 %, MAR 50 %
    s = point_scores([np.array([1, 1]), np.array([0, 0, 0, 0])], [np.array([1, 0]), np.array([0, 1, 0, 0])])
    assert (s.tp, s.fp, s.fn, s.tn) == (1, 1, 1, 3)
    assert s.f1 == pytest.approx(0.5)
    assert s.far_pct == pytest.approx(25.0)
    assert s.mar_pct == pytest.approx(50.0)


def test_point_scores_reject_misaligned():
    with pytest.raises(ValueError):
        point_scores([np.array([0, 1])], [np.array([0, 1, 1])])


def test_changepoints_first_point_is_first_prediction():
    assert changepoints_from_prediction(np.array([1, 1, 0, 0, 1])).tolist() == [1, 0, 1, 0, 1]
    assert changepoints_from_prediction(np.array([0, 1, 1, 0])).tolist() == [0, 1, 0, 1]
    assert changepoints_from_prediction(np.array([], dtype=int)).tolist() == []


# --- NAB --------------------------------------------------------------------------------------


def test_windows_overlap_next_starts_where_this_ends():
    assert nab_windows(np.array([0.0, 30.0, 200.0])) == [(0.0, 60.0), (60.0, 90.0), (200.0, 260.0)]


def test_detection_at_window_start_is_perfect():
    for prof in NAB_PROFILES:
        assert nab_score([np.array([100.0])], [np.array([100.0])], prof) == pytest.approx(100.0)


def test_detection_at_window_end_scores_a_fp():
    # y[999] = A_fp = -0.11; S = -0.11, null = -1, perfect = 1 -> 100 * 0.89 / 2 = 44.5
    assert nab_score([np.array([100.0])], [np.array([160.0])], STANDARD) == pytest.approx(44.5)
    # LowFN: null = -2 -> 100 * (-0.11 + 2) / 3 = 63.0
    assert nab_score([np.array([100.0])], [np.array([160.0])], LOW_FN) == pytest.approx(63.0)


def test_detection_mid_window_on_the_sigmoid():
    # t = 130 in [100, 160]: position int(1000 * 30 / 60) = 500
    expected_s = sigmoid_at(500, 1.0, -0.11)
    assert expected_s == pytest.approx(0.445 - 0.555 * math.tanh(math.pi / 1998) / math.tanh(math.pi / 2))
    got = nab_score([np.array([100.0])], [np.array([130.0])], STANDARD)
    assert got == pytest.approx(100 * (expected_s + 1) / 2)


def test_only_first_detection_in_a_window_scores():
    counts = nab_file(np.array([100.0]), np.array([100.0, 110.0, 159.0]), STANDARD)
    assert counts.score == pytest.approx(1.0)
    assert (counts.windows, counts.detected, counts.outside) == (1, 1, 0)


def test_outside_detection_costs_a_fp_and_empty_window_a_fn():
    true, pred = [np.array([100.0])], [np.array([0.0])]
    # standard: S = -0.11 - 1 = -1.11, null -1, perfect 1 -> -5.5
    assert nab_score(true, pred, STANDARD) == pytest.approx(-5.5)
    # LowFP: S = -0.22 - 1 -> 100 * (-0.22) / 2 = -11
    assert nab_score(true, pred, LOW_FP) == pytest.approx(-11.0)
    # LowFN: S = -0.11 - 2, null -2, perfect 1 -> 100 * (-0.11) / 3
    assert nab_score(true, pred, LOW_FN) == pytest.approx(-11.0 / 3)
    # no prediction at all is the null score
    assert nab_score(true, [np.array([])], STANDARD) == pytest.approx(0.0)


def test_overlapping_windows_are_scored_with_the_cut():
    # windows [0, 60] and [60, 90]; 45 -> first window at int(1000 * 45 / 60) = 750;
    # 61 -> second window at int(1000 * 1 / 30) = 33 (it would be 516 without the cut)
    prof = NabProfile("p", 1.0, -0.11, -1.0)
    counts = nab_file(np.array([0.0, 30.0]), np.array([45.0, 61.0]), prof)
    assert counts.score == pytest.approx(sigmoid_at(750, 1, -0.11) + sigmoid_at(33, 1, -0.11))
    # a detection at the shared boundary belongs to the first window; the second stays empty
    counts = nab_file(np.array([0.0, 30.0]), np.array([60.0]), prof)
    assert counts.score == pytest.approx(-0.11 - 1.0)


def test_nab_sums_over_files():
    # file a: perfect (S = 1); file b: empty window (S = -1) -> S = 0, null -2, perfect 2 -> 50
    score = nab_score([np.array([0.0]), np.array([0.0])], [np.array([0.0]), np.array([])], STANDARD)
    assert score == pytest.approx(50.0)


# --- files and the whole protocol --------------------------------------------------------------


def tiny_file(n: int = 10, onset: int = 6) -> pd.DataFrame:
    """A SKAB-like table at 1 Hz: sensors, and an anomaly from row ``onset`` to the end.

    Example (n=10, onset=6; sensors elided):

        datetime             ... anomaly changepoint
        2020-01-01 00:00:00  ...       0           0
        2020-01-01 00:00:06  ...       1           1
    """
    idx = pd.date_range("2020-01-01", periods=n, freq="1s", name="datetime")
    df = pd.DataFrame({c: np.arange(n, dtype=float) + i for i, c in enumerate(FEATURES)}, index=idx)
    df["anomaly"] = (np.arange(n) >= onset).astype(int)
    df["changepoint"] = (np.arange(n) == onset).astype(int)
    return df


def test_split_and_score_end_to_end():
    f = split_file(tiny_file(), "v/0.csv", train_rows=4)
    assert len(f.train) == 4 and len(f.test) == 6
    assert list(f.train.columns) == list(FEATURES)
    # scored rows 4..9, truth [0, 0, 1, 1, 1, 1]; prediction fires from row 7 (1 s late)
    pred = np.array([0, 0, 0, 1, 1, 1])
    r = score_predictions([f], [pred])
    assert (r.points.tp, r.points.fp, r.points.fn, r.points.tn) == (3, 0, 1, 2)
    # changepoint at row 7 = 1 s into the 60 s window starting at row 6: position 16
    assert r.nab["standard"] == pytest.approx(100 * (sigmoid_at(16, 1, -0.11) + 1) / 2)
    table = prediction_table([f], [pred])
    assert list(table.columns) == ["file", "datetime", "anomaly", "changepoint"]
    assert table["changepoint"].tolist() == [0, 0, 0, 1, 0, 0]


def test_split_rejects_short_file():
    with pytest.raises(ValueError):
        split_file(tiny_file(4), "short.csv", train_rows=4)


# --- detector ---------------------------------------------------------------------------------


def correlated(n: int, seed: int) -> np.ndarray:
    """Four correlated sensors: two driven by a common load, plus independent noise."""
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    return np.column_stack(
        [load + 0.3 * rng.normal(size=n), 2 * load + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))]
    )


@pytest.mark.parametrize("make", [PcaT2QDetector, skab_detector])
def test_detector_flags_a_synthetic_shift(make):
    train, test = correlated(400, 1), correlated(300, 2)
    test[150:, 2] += 6.0  # a sensor steps by six standard deviations
    pred = make().fit(train).predict(test) == -1
    assert pred[170:].mean() > 0.9
    assert pred[:150].mean() < 0.2


def test_detector_flags_broken_correlation():
    # sensor 1 moves by under one of its standard deviations (about 2), well within its normal
    # range, but five times the spread of its relation to sensor 0 (0.3): Q sees it
    train, test = correlated(400, 1), correlated(300, 2)
    test[150:, 1] += 1.5
    det = PcaT2QDetector(n_components=3, smooth=5).fit(train)
    assert det.components_.shape == (3, 4)
    pred = det.predict(test) == -1
    assert pred[170:].mean() > 0.8


def test_detector_is_deterministic():
    train, test = correlated(400, 3), correlated(200, 4)
    a = skab_detector().fit(train)
    b = skab_detector().fit(train)
    np.testing.assert_array_equal(a.decision_function(test), b.decision_function(test))
    np.testing.assert_array_equal(a.predict(test), b.predict(test))


def test_detector_init_stores_params_only_and_fit_returns_self():
    det = PcaT2QDetector(n_components=2, smooth=5)
    assert det.get_params()["n_components"] == 2 and det.get_params()["smooth"] == 5
    assert not [k for k in vars(det) if k.endswith("_")]
    assert det.fit(correlated(50, 0)) is det
    assert det.n_components_ == 2 and det.n_features_in_ == 4


def test_detector_rejects_bad_params():
    with pytest.raises(ValueError):
        PcaT2QDetector(quantile=0.0).fit(correlated(20, 0))
    with pytest.raises(ValueError):
        PcaT2QDetector(smooth=0).fit(correlated(20, 0))


def test_helpers():
    np.testing.assert_allclose(causal_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    runs = hold_persistent(np.array([1, 0, 1, 1, 1, 0, 1, 1], dtype=bool), 3)
    assert runs.tolist() == [False, False, True, True, True, False, False, False]


# Scores depend on the rows before each row (causal smoothing): predicting a subset of rows
# differs from predicting all of them, by design.
_ORDER_DEPENDENT = {
    "check_methods_subset_invariance": "time-series detector: causal smoothing over earlier rows",
    "check_methods_sample_order_invariance": "time-series detector: causal smoothing over earlier rows",
}

# With min_run > 1, predict drops alarms shorter than min_run rows, so it is not the sign of
# decision_function row by row, and the fraction of training rows flagged is below 1 - quantile.
_PERSISTENCE = {
    "check_outliers_fit_predict": "persistence filter: short alarms are dropped by predict",
    "check_outliers_train": "persistence filter: short alarms are dropped by predict",
}


@parametrize_with_checks(
    [PcaT2QDetector(), skab_detector()],
    expected_failed_checks=lambda est: {
        **(_ORDER_DEPENDENT if est.get_params()["smooth"] > 1 else {}),
        **(_PERSISTENCE if est.get_params()["min_run"] > 1 else {}),
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_skab_features_watch_thermal_channels_by_their_change():
    df = tiny_file(30).drop(columns=["anomaly", "changepoint"])
    X = bench.skab_features(df)
    assert X.shape == (30, len(FEATURES))
    t = FEATURES.index("Temperature")
    # the tiny file's columns rise by 1 per row: a 10-row change is 10 once 10 rows have passed
    np.testing.assert_allclose(X[10:, t], 10.0)
    np.testing.assert_allclose(X[:10, t], np.arange(10.0))
    np.testing.assert_allclose(X[:, 0], df[FEATURES[0]].to_numpy())  # other sensors unchanged


def test_predict_file_scores_test_rows_after_the_training_rows():
    f = split_file(tiny_file(60, onset=50), "v/0.csv", train_rows=40)
    pred = bench.predict_file(f, PcaT2QDetector(n_components=2))
    assert pred.shape == (20,) and set(np.unique(pred)) <= {0, 1}


# --- choosing the setting ---------------------------------------------------------------------


def result(f1: float, far: float, nab: float) -> SkabResult:
    """Figures for selection tests; the counts are not read by the rule."""
    points = PointScores(tp=0, fp=0, fn=0, tn=0, f1=f1, far_pct=far, mar_pct=0.0)
    return SkabResult(points=points, nab={"standard": nab, "low_fp": nab, "low_fn": nab})


def test_rule_takes_the_best_nab_within_the_far_bound():
    results = {"noisy": result(0.95, 12.0, 60.0), "good": result(0.80, 9.0, 40.0), "quiet": result(0.90, 1.0, 35.0)}
    assert select_setting(results) == "good"  # noisy scores more but breaks FAR <= 10 %
    assert select_setting(results, max_far_pct=15.0) == "noisy"
    assert select_setting(results, max_far_pct=5.0) == "quiet"


def test_rule_breaks_ties_by_f1_then_order_and_falls_back_to_the_lowest_far():
    assert select_setting({"a": result(0.80, 5.0, 40.0), "b": result(0.85, 5.0, 40.0)}) == "b"
    assert select_setting({"a": result(0.85, 5.0, 40.0), "b": result(0.85, 2.0, 40.0)}) == "a"
    assert select_setting({"a": result(0.9, 30.0, 50.0), "b": result(0.5, 20.0, 10.0)}) == "b"
    with pytest.raises(ValueError, match="at least one"):
        select_setting({})


def test_missed_targets_by_hand():
    targets = Targets(f1=0.85, far_pct=10.0, nab_standard=35.0)
    assert missed_targets(result(0.85, 10.0, 35.0), targets) == []
    assert missed_targets(result(0.84, 10.5, 34.9), targets) == [
        "F1 0.840 < 0.85",
        "FAR 10.50 % > 10 %",
        "NAB standard 34.90 < 35",
    ]


def three_files() -> list:
    """Two files in group ``a`` and one in ``b``, each with 6 scored rows, anomalous from the third."""
    return [split_file(tiny_file(), name, train_rows=4) for name in ("a/0.csv", "a/1.csv", "b/0.csv")]


# Scored rows of every tiny file: truth [0, 0, 1, 1, 1, 1].
EXACT = np.array([0, 0, 1, 1, 1, 1])
SILENT = np.zeros(6, dtype=int)
LATE = np.array([0, 0, 0, 0, 1, 1])


def test_each_group_is_scored_with_the_setting_chosen_on_the_others():
    files = three_files()
    # "fits_a" is perfect on group a only, "fits_b" on group b only
    predictions = {"fits_a": [EXACT, EXACT, SILENT], "fits_b": [LATE, LATE, EXACT]}
    assert [group_of(f.name) for f in files] == ["a", "a", "b"]
    logo = leave_one_group_out(files, predictions)
    assert [(f.held_out, f.chosen) for f in logo.folds] == [("a", "fits_b"), ("b", "fits_a")]
    # held out: a with fits_b (late), b with fits_a (silent), never the setting best on itself
    for got, want in zip(logo.predictions, [LATE, LATE, SILENT], strict=True):
        np.testing.assert_array_equal(got, want)
    # a: TP 2 + 2, FN 2 + 2; b: FN 4 -> TP 4, FN 8, FP 0, TN 6; F1 = 4 / (4 + 4) = 0.5
    p = logo.pooled.points
    assert (p.tp, p.fp, p.fn, p.tn) == (4, 0, 8, 6)
    assert p.f1 == pytest.approx(0.5)
    assert logo.folds[0].held_out_result.points.f1 == pytest.approx(2 / 3)  # 4 / (4 + 4 / 2)
    assert logo.folds[0].selection.points.f1 == pytest.approx(1.0)  # fits_b on group b
    # in sample, every file chooses: fits_b finds all three changepoints within 2 s (NAB about 99.7),
    # fits_a misses b's (NAB 100 (1 + 1 - 1 + 3) / 6 = 66.7); F1 of fits_b: TP 8, FN 4 -> 0.8
    chosen, ins = select_in_sample(files, predictions)
    assert chosen == "fits_b"
    assert ins.nab["standard"] > 99.0
    assert ins.points.f1 == pytest.approx(0.8)


def test_logo_needs_two_groups_and_every_file():
    files = three_files()
    with pytest.raises(ValueError, match="two groups"):
        leave_one_group_out(files[:2], {"s": [EXACT, EXACT]})
    with pytest.raises(ValueError, match="2 predictions for 3 files"):
        leave_one_group_out(files, {"s": [EXACT, EXACT]})
