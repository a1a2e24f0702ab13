"""Calibration files: the condition models round-trip, and version 1 files are read without their old baselines."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.condition import RlsFit, VibrationBaseline, bearing_features, seal_features
from pumptwin.twin.health.estimation import Estimate, TwinCalibration, initial_calibration
from pumptwin.twin.health.io import calibration_from_dict, calibration_to_dict
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import NetworkError


def learnt() -> TwinCalibration:
    cal = initial_calibration(build_registry(load_network(), 1))
    s, r = np.linspace(0.7, 1.0, 20), np.linspace(0.6, 1.2, 20)
    p = replace(
        cal.pumps["PS01.P1"],
        vib_de=VibrationBaseline().folded(s, r, 1.0 + s * r, 0.9),
        bearing_de=RlsFit.empty(3).folded(bearing_features(s, r), 30.0 * s, 1.0, (15.0, 15.0, 15.0)),
        seal=RlsFit.empty(2).folded(seal_features(s), 0.3 + s, 1.0, (0.0, 0.0)),
        winding=Estimate(71.5, 0.25),
        winding_ref_k=65.0,
        strainer_k=Estimate(5.5e4, 300.0),
        strainer_ref_k=5.2e4,
        seal_leak_l_h=1.25,
        thermal_de=Estimate(35.0, 0.5),
        last_running_ts=pd.Timestamp("2024-03-01T06:00:00Z"),
        running_since_ts=pd.Timestamp("2024-03-01T04:15:00Z"),
    )
    return replace(cal, pumps={**cal.pumps, "PS01.P1": p})


def test_condition_models_round_trip_exactly() -> None:
    cal = learnt()
    text = json.dumps(calibration_to_dict(cal), allow_nan=False)
    back = calibration_from_dict(json.loads(text)).pumps["PS01.P1"]
    orig = cal.pumps["PS01.P1"]
    for name in (
        "vib_de",
        "bearing_de",
        "bearing_nde",
        "seal",
        "winding",
        "winding_ref_k",
        "strainer_k",
        "strainer_ref_k",
        "seal_leak_l_h",
        "last_running_ts",
        "running_since_ts",
    ):
        assert getattr(back, name) == getattr(orig, name), name
    assert back.strainer_drift == pytest.approx(5.5 / 5.2 - 1.0)
    assert back.winding_drift == pytest.approx(71.5 / 65.0 - 1.0)


def test_a_file_without_the_winding_reference_starts_it_afresh() -> None:
    data = json.loads(json.dumps(calibration_to_dict(learnt())))
    for p in data["pumps"].values():
        del p["winding_ref_k"]
    back = calibration_from_dict(data).pumps["PS01.P1"]
    assert back.winding == Estimate(71.5, 0.25) and math.isnan(back.winding_ref_k)
    assert math.isnan(back.winding_drift)  # no alarm until the reference is learnt again


def test_a_file_without_the_run_start_knows_none() -> None:
    data = json.loads(json.dumps(calibration_to_dict(learnt())))
    for p in data["pumps"].values():
        del p["running_since_ts"]
    assert calibration_from_dict(data).pumps["PS01.P1"].running_since_ts is None


def test_version_1_files_keep_all_but_the_old_vibration_baselines() -> None:
    data = json.loads(json.dumps(calibration_to_dict(learnt())))
    data["version"] = 1
    for p in data["pumps"].values():
        for key in ("winding", "strainer_k", "bearing_de", "bearing_nde", "seal", "seal_leak_l_h", "strainer_ref_k"):
            del p[key]
        p["vib_de"] = {"info": [0.0] * 9, "rhs": [0.0] * 3, "weight": 5.0, "noise_mm_s": 0.1}
    back = calibration_from_dict(data).pumps["PS01.P1"]
    assert back.vib_de == VibrationBaseline()  # relearnt from the next windows
    assert back.thermal_de == Estimate(35.0, 0.5)
    assert back.bearing_de.weight == 0.0


def test_malformed_fit_is_named() -> None:
    data = json.loads(json.dumps(calibration_to_dict(learnt())))
    data["pumps"]["PS01.P1"]["bearing_de"]["rhs"] = [1.0]
    with pytest.raises(NetworkError, match=r"PS01\.P1\.bearing_de"):
        calibration_from_dict(data)
