import numpy as np
import pandas as pd
import pytest

from pumptwin.features.feature_checks import FeatureCheckError, check_features


def _frame(n: int = 6) -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC")
    return pd.DataFrame({"pump_id": ["PS01.P1"] * n, "event_timestamp": ts, "a": np.arange(n, dtype=float), "b": 1.0})


def test_clean_frame_passes_whole():
    frame = _frame()
    frame.loc[2, "a"] = np.nan  # missing is allowed and reported, not quarantined
    check = check_features(frame)
    assert check.success
    assert len(check.good) == len(frame) and check.quarantined.empty
    assert check.missing_rate["a"] == pytest.approx(1 / 6)


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_go_on():
    frame = _frame()
    frame.loc[1, "a"] = np.inf
    frame.loc[3, "pump_id"] = "not a pump"
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # duplicate key
    check = check_features(frame)
    assert not check.success
    assert sorted(check.good.index) == [0, 2, 4]
    reasons = dict(zip(check.quarantined.index, check.quarantined["reason"], strict=True))
    assert "nonfinite" in reasons[1]
    assert "match_regex(pump_id)" in reasons[3]
    assert "unique(pump_id,event_timestamp)" in reasons[5] and reasons[5] == reasons[6]
    assert len(check.good) + len(check.quarantined) == len(frame)  # nothing lost
    assert "rows quarantined: 4" in check.to_markdown()


def test_missing_keys_or_naive_time_is_a_clear_error():
    with pytest.raises(FeatureCheckError, match="pump_id"):
        check_features(_frame().drop(columns="pump_id"))
    naive = _frame()
    naive["event_timestamp"] = naive["event_timestamp"].dt.tz_localize(None)
    with pytest.raises(FeatureCheckError, match="UTC"):
        check_features(naive)
