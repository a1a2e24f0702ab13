"""Evaluation metrics against hand-computed values, and the plots as valid PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.models.evaluation import (
    MONTH_S,
    EvaluationError,
    alarm_episodes,
    confusion_matrix,
    false_alarms_per_asset_month,
    first_alarm,
    interval_coverage,
    lead_time_s,
    plot_confusion_matrix,
    plot_precision_recall,
    plot_score_timeline,
    point_scores,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = pd.Timestamp("2024-03-01", tz="UTC")


def minutes(n: int, step_min: int = 10) -> pd.DatetimeIndex:
    return pd.date_range(T0, periods=n, freq=f"{step_min}min")


def test_point_scores_by_hand():
    # true  1 1 1 0 0 0 0 1 ; pred 1 0 1 1 0 0 0 0 -> TP 2, FP 1, FN 2, TN 3
    s = point_scores([1, 1, 1, 0, 0, 0, 0, 1], [True, False, True, True, False, False, False, False])
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 1, 2, 3)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 4)
    assert s.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    empty = point_scores([0, 0], [0, 0])
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)
    with pytest.raises(EvaluationError, match="0/1"):
        point_scores([0, 2], [0, 1])
    with pytest.raises(EvaluationError, match="rows"):
        point_scores([0, 1, 1], [0, 1])


def test_alarm_episodes_by_hand():
    ts = minutes(12)
    alarm = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0], dtype=bool)
    ep = alarm_episodes(ts, alarm)
    assert ep["rows"].tolist() == [2, 1, 3]
    assert ep["start"].tolist() == [ts[1], ts[4], ts[8]]
    assert ep["end"].tolist() == [ts[2], ts[4], ts[10]]
    # rows 2 and 4 are 20 min apart: merged at a 20 min gap, not at 10 min
    merged = alarm_episodes(ts, alarm, merge_gap_s=1200.0)
    assert merged["rows"].tolist() == [3, 3]
    assert merged["end"].tolist() == [ts[4], ts[10]]
    assert len(alarm_episodes(ts, alarm, merge_gap_s=600.0)) == 3
    assert len(alarm_episodes(ts, np.zeros(12, bool))) == 0
    assert alarm_episodes(ts, np.ones(12, bool))["rows"].tolist() == [12]


def test_alarm_episodes_reject_unordered_time():
    with pytest.raises(EvaluationError, match="increasing"):
        alarm_episodes(minutes(3)[::-1], [1, 0, 1])
    with pytest.raises(EvaluationError, match="timestamps for"):
        alarm_episodes(minutes(3), [1, 0])


def test_false_alarms_per_asset_month():
    # 3 episodes over 4 assets x 15 days = 60 asset-days = 60 / 30.4375 months
    rate = false_alarms_per_asset_month(3, 4 * 15 * 86_400.0)
    assert rate == pytest.approx(3 / (60 / 30.4375))
    assert pytest.approx(30.4375 * 86_400.0) == MONTH_S
    with pytest.raises(EvaluationError):
        false_alarms_per_asset_month(1, 0.0)


def test_first_alarm_and_lead_time():
    ts = minutes(10)
    alarm = np.array([1, 0, 0, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    assert first_alarm(ts, alarm) == ts[0]
    onset = ts[2]
    assert first_alarm(ts, alarm, after=onset) == ts[4]
    assert first_alarm(ts, np.zeros(10, bool)) is None
    # an alarm standing since row 4 is not new at row 5; the next new one starts at row 7
    assert first_alarm(ts, alarm, after=ts[5], new_only=True) == ts[7]
    assert first_alarm(ts, alarm, after=ts[5]) == ts[5]
    failure = ts[9]
    assert lead_time_s(first_alarm(ts, alarm, after=onset), failure) == 50 * 60.0
    assert lead_time_s(ts[9], ts[4]) == -50 * 60.0
    assert math.isnan(lead_time_s(None, failure))
    assert math.isnan(lead_time_s(ts[0], None))


def test_confusion_matrix_by_hand():
    y_true = ["healthy", "healthy", "bearing_wear", "bearing_wear", "cavitation"]
    y_pred = ["healthy", "bearing_wear", "bearing_wear", "bearing_wear", "healthy"]
    cm = confusion_matrix(y_true, y_pred)
    assert cm.index.tolist() == ["bearing_wear", "cavitation", "healthy"]
    assert cm.loc["healthy", "healthy"] == 1
    assert cm.loc["healthy", "bearing_wear"] == 1
    assert cm.loc["bearing_wear", "bearing_wear"] == 2
    assert cm.loc["cavitation", "healthy"] == 1
    assert int(cm.to_numpy().sum()) == 5
    ordered = confusion_matrix(y_true, y_pred, labels=["healthy", "bearing_wear", "cavitation", "seal_failure"])
    assert ordered.shape == (4, 4) and ordered.loc["seal_failure"].sum() == 0


def test_interval_coverage():
    assert interval_coverage([1, 2, 3, 4], [0, 2, 3.5, 0], [2, 2, 4, 3]) == 0.5  # closed ends count
    with pytest.raises(EvaluationError):
        interval_coverage([], [], [])


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_SIGNATURE and len(data) > 1000


def test_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(0)
    ts = minutes(300)
    score = np.concatenate([rng.normal(0.3, 0.1, 200), np.linspace(0.3, 3.0, 100)])
    p1 = plot_score_timeline(
        ts, score, 1.0, tmp_path / "a" / "timeline.png", onset=ts[150], failure=ts[290], title="PS01.P1"
    )
    truth = np.r_[np.zeros(200, bool), np.ones(100, bool)]
    p2 = plot_precision_recall(truth, score, tmp_path / "pr.png")
    cm = confusion_matrix(["healthy", "bearing_wear", "healthy"], ["healthy", "bearing_wear", "bearing_wear"])
    p3 = plot_confusion_matrix(cm, tmp_path / "cm.png", title="diagnosis")
    for p in (p1, p2, p3):
        assert p.exists() and _is_png(p)
    with pytest.raises(EvaluationError, match="anomalous"):
        plot_precision_recall(np.zeros(3, bool), [0.1, 0.2, 0.3], tmp_path / "x.png")
    with pytest.raises(EvaluationError, match="square"):
        plot_confusion_matrix(pd.DataFrame(np.ones((2, 3))), tmp_path / "y.png")
