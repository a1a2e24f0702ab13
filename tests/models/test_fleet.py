from typing import Any

import numpy as np
import pandas as pd
import pytest

from pumptwin.models.detectors import PcaT2QDetector
from pumptwin.models.ensemble import CalibratedEnsemble
from pumptwin.models.fleet import POOLED, FleetDetector, FleetError

FEATURES = ("a", "b", "c")


def _pump(name: str, n: int, level: float, seed: int, fault_from: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    X = level + np.hstack([base, 0.8 * base + 0.3 * rng.normal(size=(n, 1)), rng.normal(size=(n, 1))])
    if fault_from is not None:
        X[fault_from:, 1] += np.linspace(0, 6, n - fault_from)  # drift breaks the a-b correlation
    ts = pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC")
    frame = pd.DataFrame(X, columns=list(FEATURES))
    frame.insert(0, "event_timestamp", ts)
    frame.insert(0, "pump_id", name)
    frame["running_frac_1h"] = 1.0
    return frame


def _detector(**kw: Any) -> FleetDetector:
    template = CalibratedEnsemble([PcaT2QDetector(n_components=2)], target_far=0.01, min_run=3)
    return FleetDetector(template, FEATURES, **kw)


def test_each_pump_is_judged_against_its_own_baseline():
    train = pd.concat([_pump("PS01.P1", 600, 0.0, 1), _pump("PS01.P2", 600, 5.0, 2)])
    fleet = _detector().fit(train)
    assert fleet.pumps_ == ["PS01.P1", "PS01.P2"]
    # later data: P2 drifts; P1 stays healthy. Interleave and shuffle rows: output follows input order.
    test = pd.concat([_pump("PS01.P1", 400, 0.0, 3), _pump("PS01.P2", 400, 5.0, 4, fault_from=200)])
    test = test.sample(frac=1.0, random_state=0).reset_index(drop=True)
    out = fleet.score(test)
    assert list(out["pump_id"]) == list(test["pump_id"])
    p1 = out[out["pump_id"] == "PS01.P1"]
    p2 = out[out["pump_id"] == "PS01.P2"].sort_values("event_timestamp")
    assert p1["alarm"].mean() < 0.03
    assert p2["alarm"].iloc[:180].mean() < 0.03
    assert p2["alarm"].iloc[300:].mean() > 0.9
    # a pooled model would see P2's level as normal only because P2 trained on it: per-pump baselines
    assert set(out["model"]) == {"PS01.P1", "PS01.P2"}


def test_rows_not_running_or_incomplete_are_not_scored_and_standby_uses_pooled_model():
    train = pd.concat([_pump("PS01.P1", 500, 0.0, 1), _pump("PS01.P3", 30, 0.0, 5)])
    fleet = _detector(min_rows=100).fit(train)
    assert fleet.pumps_ == ["PS01.P1"] and fleet.n_train_rows_["PS01.P3"] == 30
    test = _pump("PS01.P3", 50, 0.0, 6)
    test.loc[3, "running_frac_1h"] = 0.5
    test.loc[4, "b"] = np.nan
    out = fleet.score(test)
    assert np.isnan(out.loc[3, "score"]) and np.isnan(out.loc[4, "score"])
    assert not out.loc[[3, 4], "alarm"].any()
    assert set(out.loc[out["score"].notna(), "model"]) == {POOLED}
    assert (fleet.predict(test) == np.where(out["alarm"], -1, 1)).all()


def test_bad_input_is_a_clear_error():
    with pytest.raises(FleetError, match="lacks column"):
        _detector().fit(_pump("PS01.P1", 200, 0.0, 1).drop(columns="b"))
    with pytest.raises(FleetError, match="usable training rows"):
        _detector().fit(_pump("PS01.P1", 50, 0.0, 1))
    with pytest.raises(FleetError, match="DataFrame"):
        _detector().fit(np.zeros((200, 3)))


def _with_sum(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(total=frame["a"] + frame["b"])


def test_an_input_step_derives_the_detector_columns_from_the_feature_frame():
    template = CalibratedEnsemble([PcaT2QDetector(n_components=2)], target_far=0.01, min_run=3)
    fleet = FleetDetector(template, ("a", "b", "total"), inputs=_with_sum).fit(_pump("PS01.P1", 600, 0.0, 1))
    test = _pump("PS01.P1", 400, 0.0, 4, fault_from=200)
    assert "total" not in test.columns
    out = fleet.score(test)
    assert out["alarm"].iloc[300:].mean() > 0.9 and out["alarm"].iloc[:180].mean() < 0.03
    assert "total" not in test.columns  # the caller's frame is not modified
    with pytest.raises(FleetError, match="'b'"):
        fleet.score(test.drop(columns="b"))


def _shifted(name: str, n: int, seed: int, start: int, shift: float) -> pd.DataFrame:
    """A healthy pump whose b-a relation moves by ``shift`` from row ``start`` on (a new normal, or a fault)."""
    frame = _pump(name, n, 0.0, seed)
    frame.loc[start:, "b"] += shift
    return frame


def _window(frame: pd.DataFrame, name: str, start: int, end: int) -> pd.DataFrame:
    ts = frame["event_timestamp"].reset_index(drop=True)
    return pd.DataFrame({"pump_id": [name], "start": [ts.iloc[start]], "end": [ts.iloc[end]]})


def test_rows_confirmed_healthy_become_that_pumps_new_normal():
    train = pd.concat([_pump("PS01.P1", 600, 0.0, 1), _pump("PS01.P2", 600, 0.0, 2)])
    fleet = _detector().fit(train)
    later = pd.concat([_shifted("PS01.P1", 400, 3, 100, 1.2), _pump("PS01.P2", 400, 0.0, 4)], ignore_index=True)
    before = fleet.score(later)
    p1 = (before["pump_id"] == "PS01.P1").to_numpy()
    assert before.loc[p1, "alarm"].iloc[150:].mean() > 0.5  # the shift alarms
    fleet.accept_healthy(later, _window(later[p1], "PS01.P1", 100, 399), max_raise=3.0)
    assert fleet.rebaselined_ == {"PS01.P1": 300}
    after = fleet.score(later)
    assert not after.loc[p1, "alarm"].iloc[100:].any()
    # the other pump is untouched
    np.testing.assert_allclose(after.loc[~p1, "score"], before.loc[~p1, "score"])
    # a fault beyond the new normal still alarms
    worse = _shifted("PS01.P1", 400, 8, 100, 8.0)
    assert fleet.score(worse)["alarm"].iloc[150:].mean() > 0.9


def test_a_short_false_alarm_raises_the_threshold_within_a_cap():
    fleet = _detector(min_rows=100).fit(_pump("PS01.P1", 600, 0.0, 1))
    later = _pump("PS01.P1", 400, 0.0, 3)
    later.loc[200:229, "b"] += 1.5  # a five-hour excursion, too short to learn a normal from
    assert fleet.score(later)["alarm"].iloc[200:230].any()
    threshold = fleet.models_["PS01.P1"].threshold_
    moved = fleet.accept_healthy(later, _window(later, "PS01.P1", 195, 235), max_raise=50.0)
    assert fleet.rebaselined_ == {}
    assert set(moved) == {"PS01.P1"} and moved["PS01.P1"] > 1.0
    assert fleet.models_["PS01.P1"].threshold_ == pytest.approx(threshold * moved["PS01.P1"])
    assert fleet.raised_ == moved
    assert not fleet.score(later)["alarm"].any()
    capped = _detector(min_rows=100).fit(_pump("PS01.P1", 600, 0.0, 1))
    assert capped.accept_healthy(later, _window(later, "PS01.P1", 195, 235), max_raise=1.2) == {
        "PS01.P1": pytest.approx(1.2)
    }
    assert capped.score(later)["alarm"].iloc[200:230].any()  # a label cannot blind the detector


def test_confirmed_windows_without_an_alarm_change_nothing():
    train = pd.concat([_pump("PS01.P1", 500, 0.0, 1), _pump("PS01.P3", 30, 0.0, 5)])
    fleet = _detector(min_rows=100).fit(train)
    quiet = _pump("PS01.P1", 200, 0.0, 6)
    threshold = fleet.models_["PS01.P1"].threshold_
    assert fleet.accept_healthy(quiet, _window(quiet, "PS01.P1", 0, 199)) == {}
    assert fleet.models_["PS01.P1"].threshold_ == threshold and fleet.rebaselined_ == {}
    with pytest.raises(FleetError, match="lack column"):
        fleet.accept_healthy(quiet, _window(quiet, "PS01.P1", 0, 199).drop(columns="end"))
    with pytest.raises(FleetError, match="max_raise"):
        fleet.accept_healthy(quiet, _window(quiet, "PS01.P1", 0, 199), max_raise=0.5)
