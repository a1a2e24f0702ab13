"""Tests of the training labels: fault windows, time to failure, maintenance resets and findings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.labels import LabelError, pump_labels

T0 = pd.Timestamp("2024-03-01T00:00:00Z")


def _keys(pump="PS01.P1", days=6):
    ts = T0 + pd.to_timedelta(np.arange(days * 24), unit="h")
    return pd.DataFrame({"pump_id": pump, "event_timestamp": ts})


def _faults():
    return pd.DataFrame(
        {
            "asset": ["PS01.P1", "LINE01.KP080", "PS01.P2"],
            "mode": ["bearing_wear", "leak", "seal_failure"],
            "onset_ts": [T0 + pd.Timedelta("1D"), T0, T0],
            "failure_ts": [T0 + pd.Timedelta("3D"), T0, T0 + pd.Timedelta("1D")],
            "trip": [True, False, True],
        }
    )


def test_fault_window_and_ttf():
    out = pump_labels(_keys(), _faults())
    ts = out["event_timestamp"]
    before = ts < T0 + pd.Timedelta("1D")
    assert (out.loc[before, "anomaly"] == 0).all() and (out.loc[before, "mode"] == "healthy").all()
    assert out.loc[before, "ttf_s"].isna().all()
    at = out[ts == T0 + pd.Timedelta("2D")].iloc[0]
    assert at["anomaly"] == 1 and at["mode"] == "bearing_wear" and at["ttf_s"] == 86400.0 and not at["failed"]
    after = out[ts >= T0 + pd.Timedelta("3D")]
    assert after["failed"].all() and (after["ttf_s"] == 0).all()
    assert out["anomaly"].dtype == np.int64 and out["ttf_s"].dtype == np.float64


def test_leaks_are_ignored_and_keys_are_kept():
    keys = _keys(pump="PS01.P3").assign(extra=1.0).iloc[::-1]
    out = pump_labels(keys, _faults())
    assert (out["anomaly"] == 0).all()
    assert list(out["event_timestamp"]) == list(keys["event_timestamp"])
    assert "extra" in out.columns


def test_repair_resets_fault():
    maintenance = pd.DataFrame(
        {"asset": ["PS01.P1"], "ts": [T0 + pd.Timedelta("2D")], "action": ["replace"], "mode": ["bearing_wear"]}
    )
    out = pump_labels(_keys(), _faults(), maintenance)
    ts = out["event_timestamp"]
    assert (out.loc[(ts >= T0 + pd.Timedelta("1D")) & (ts < T0 + pd.Timedelta("2D")), "anomaly"] == 1).all()
    assert (out.loc[ts >= T0 + pd.Timedelta("2D"), "mode"] == "healthy").all()
    assert not out["failed"].any()


def test_inspection_finding_adds_a_label_and_the_earliest_failure_wins():
    maintenance = pd.DataFrame(
        {
            "asset": ["PS01.P1"],
            "ts": [T0 + pd.Timedelta("2D")],
            "action": ["inspect"],
            "mode": ["impeller_wear"],
            "onset_ts": [T0 + pd.Timedelta("12h")],
            "failure_ts": [T0 + pd.Timedelta("5D")],
        }
    )
    out = pump_labels(_keys(), _faults(), maintenance)
    ts = out["event_timestamp"]
    early = out[(ts >= T0 + pd.Timedelta("12h")) & (ts < T0 + pd.Timedelta("1D"))]
    assert (early["mode"] == "impeller_wear").all()
    both = out[ts == T0 + pd.Timedelta("2D")].iloc[0]
    assert both["mode"] == "bearing_wear"  # fails first (day 3 before day 5)
    assert both["ttf_s"] == 86400.0


def test_bad_input():
    with pytest.raises(LabelError, match="keys"):
        pump_labels(pd.DataFrame({"pump_id": []}), _faults())
    bad = pd.DataFrame({"asset": ["PS01.P1"], "ts": [T0], "action": ["inspect"], "onset_ts": [T0]})
    with pytest.raises(LabelError, match="needs a failure mode"):
        pump_labels(_keys(), _faults(), bad)
