"""Health index, status and alerts of the twin state."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.assets import Registry, build_registry
from pumptwin.twin.health.estimation import Estimate, TwinCalibration, initial_calibration
from pumptwin.twin.health.state import (
    DEFAULT_RULES,
    HEALTH_AT_ALARM,
    PHYSICS_VERSION,
    Rule,
    StateError,
    assess,
    health_index,
    status_of,
    update_state,
)
from pumptwin.twin.hydraulic.io import load_network

T0 = pd.Timestamp("2024-03-01T00:00:00Z")
EVIDENCE = (
    "impeller_wear",
    "efficiency_loss",
    "vib_excess_de_mm_s",
    "thermal_drift_de",
    "anomaly_score",
    "p_bearing_wear",
)
"""Evidence where more is worse."""


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(load_network(), 1)


def calibration_with(registry: Registry, wear: float = 0.0, friction: float = 1.0) -> TwinCalibration:
    cal = initial_calibration(registry)
    pumps = dict(cal.pumps)
    pumps["PS02.P2"] = replace(pumps["PS02.P2"], impeller_wear=Estimate(wear, 0.001), npsh_margin_m=8.0)
    lines = {1: replace(cal.lines[1], friction_multiplier=Estimate(friction, 0.01), flow_m3s=0.5, maop_margin=0.2)}
    return TwinCalibration(T0, pumps, lines, 1)


def scores(**cols: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "asset": ["PS01.P1"],
        "anomaly_score": [0.1],
        "p_bearing_wear": [0.05],
        "ttf_s": [90 * 86_400.0],
        "ttf_low_s": [30 * 86_400.0],
        "ttf_high_s": [200 * 86_400.0],
        "model_version": ["detector-v3"],
    }
    base.update({k: [v] for k, v in cols.items()})
    return pd.DataFrame(base)


# --------------------------------------------------------------------------------------------
# Health index
# --------------------------------------------------------------------------------------------

finite = st.floats(0.0, 10.0)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(EVIDENCE), finite, min_size=1), st.sampled_from(EVIDENCE), finite)
def test_health_is_bounded_and_falls_with_worse_evidence(values: dict[str, float], key: str, extra: float) -> None:
    before = assess("A", "pump", values)
    worse = assess("A", "pump", {**values, key: values.get(key, 0.0) + extra})
    assert 0.0 <= worse.health_index <= before.health_index <= 1.0
    assert worse.severity >= before.severity


@settings(max_examples=100, deadline=None)
@given(st.floats(-5.0, 20.0), st.floats(0.0, 10.0), st.floats(1.0, 1e8), st.floats(0.0, 1e8))
def test_health_rises_with_margins_and_time_to_failure(npsh: float, more: float, ttf: float, later: float) -> None:
    a = assess("A", "pump", {"npsh_margin_m": npsh, "ttf_s": ttf})
    b = assess("A", "pump", {"npsh_margin_m": npsh + more, "ttf_s": ttf + later})
    assert 0.0 <= a.health_index <= b.health_index <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from("abcde"), st.floats(0.0, 1e3), max_size=5))
def test_health_index_of_any_severities_is_in_unit_interval(sev: dict[str, float]) -> None:
    assert 0.0 <= health_index(sev) <= 1.0


def test_health_index_closed_form() -> None:
    assert health_index({}) == 1.0
    assert health_index({"x": 1.0}) == pytest.approx(HEALTH_AT_ALARM)
    assert health_index({"x": 0.5, "y": 2.0}) == pytest.approx(HEALTH_AT_ALARM**4)
    assert health_index({"x": math.inf}) == 0.0
    assert [status_of(x) for x in (0.0, 0.49, 0.5, 0.8, 1.0, 7.0)] == [
        "normal",
        "normal",
        "watch",
        "warning",
        "alarm",
        "alarm",
    ]


def test_rules_map_thresholds_to_one() -> None:
    by_source = {r.source: r for r in DEFAULT_RULES}
    assert by_source["impeller_wear"].severity(0.05) == pytest.approx(1.0)
    assert by_source["npsh_margin_m"].severity(1.0) == pytest.approx(1.0)
    assert by_source["npsh_margin_m"].severity(6.0) == 0.0
    assert by_source["friction_multiplier"].severity(0.75) == pytest.approx(1.0)
    assert by_source["friction_multiplier"].severity(1.25) == pytest.approx(1.0)
    assert by_source["ttf_s"].severity(7 * 86_400.0) == pytest.approx(1.0)
    assert by_source["impeller_wear"].severity(math.nan) == 0.0
    # the seal datasheets: normal below 0.5 L/h, alarm 2 L/h; a strainer twice its clean loss; +50 % winding rise
    assert by_source["seal_leak_l_h"].severity(0.5) == 0.0
    assert by_source["seal_leak_l_h"].severity(2.0) == pytest.approx(1.0)
    assert by_source["strainer_drift"].severity(1.0) == pytest.approx(1.0)
    assert by_source["winding_drift"].severity(0.5) == pytest.approx(1.0)
    with pytest.raises(StateError, match="differ"):
        Rule("x", "physics", "-", alarm=1.0, zero=1.0)


# --------------------------------------------------------------------------------------------
# State and alerts
# --------------------------------------------------------------------------------------------


def test_healthy_fleet_is_normal_without_alerts(registry: Registry) -> None:
    state = update_state(None, calibration_with(registry), scores(), T0)
    assert {h.status for h in state.health} == {"normal"}
    assert state.alerts == ()
    assert {h.asset for h in state.health} == {p.name for p in registry.pumps} | {"LINE01"}
    assert state.asset("PS01.P1").model_version == "detector-v3"


def test_wear_raises_an_alarm_with_its_evidence(registry: Registry) -> None:
    state = update_state(None, calibration_with(registry, wear=0.06), None, T0)
    row = state.asset("PS02.P2")
    assert row.status == "alarm"
    assert row.driver == "impeller_wear"
    assert row.health_index < HEALTH_AT_ALARM
    (alert,) = state.alerts
    assert (alert.asset, alert.source, alert.kind, alert.level) == ("PS02.P2", "impeller_wear", "physics", "alarm")
    assert alert.value == pytest.approx(0.06)
    assert alert.threshold == pytest.approx(0.05)
    assert alert.since == T0
    assert alert.model_version == PHYSICS_VERSION


@pytest.mark.parametrize(
    ("change", "source"),
    [
        ({"seal_leak_l_h": 3.0}, "seal_leak_l_h"),
        ({"strainer_k": Estimate(3.0e5, 1.0), "strainer_ref_k": 1.0e5}, "strainer_drift"),
        ({"winding": Estimate(100.0, 0.5), "winding_ref_k": 65.0}, "winding_drift"),
    ],
)
def test_seal_strainer_and_winding_raise_alarms(registry: Registry, change: dict[str, object], source: str) -> None:
    cal = calibration_with(registry)
    cal = replace(cal, pumps={**cal.pumps, "PS01.P1": replace(cal.pumps["PS01.P1"], **change)})  # type: ignore[arg-type]
    (alert,) = update_state(None, cal, None, T0).alerts
    assert (alert.asset, alert.source, alert.level) == ("PS01.P1", source, "alarm")


def test_alert_keeps_since_across_updates_and_clears(registry: Registry) -> None:
    s0 = update_state(None, calibration_with(registry), scores(anomaly_score=1.3), T0)
    (a0,) = s0.alerts
    assert (a0.source, a0.level, a0.model_version) == ("anomaly_score", "alarm", "detector-v3")
    t1, t2, t3 = (T0 + pd.Timedelta(minutes=15 * k) for k in (1, 2, 3))
    s1 = update_state(s0, calibration_with(registry), scores(anomaly_score=0.8), t1)
    (a1,) = s1.alerts
    assert a1.level == "warning"
    assert (a1.since, a1.last_seen) == (T0, t1)
    s2 = update_state(s1, calibration_with(registry), scores(anomaly_score=0.7), t2)  # within the hysteresis
    assert s2.alerts[0].since == T0
    s3 = update_state(s2, calibration_with(registry), scores(anomaly_score=0.2), t3)
    assert s3.alerts == ()
    s4 = update_state(s3, calibration_with(registry), scores(anomaly_score=2.0), t3 + pd.Timedelta(minutes=15))
    assert s4.alerts[0].since == t3 + pd.Timedelta(minutes=15)


def test_model_probabilities_and_ttf_raise_alerts(registry: Registry) -> None:
    sc = scores(p_bearing_wear=0.6, ttf_s=3 * 86_400.0)
    state = update_state(None, calibration_with(registry), sc, T0)
    by_source = {a.source: a for a in state.alerts}
    assert set(by_source) == {"p_bearing_wear", "ttf_s"}
    assert by_source["ttf_s"].detail.startswith("ttf interval")
    assert by_source["p_bearing_wear"].threshold == pytest.approx(0.5)
    assert state.asset("PS01.P1").status == "alarm"


def test_line_friction_and_unscored_assets(registry: Registry) -> None:
    extra = pd.DataFrame({"anomaly_score": [0.9], "model_version": ["m1"]}, index=["PS77.P1"])
    state = update_state(None, calibration_with(registry, friction=1.3), extra, T0)
    assert state.asset("LINE01").status == "alarm"
    assert state.asset("LINE01").driver == "friction_multiplier"
    assert state.asset("PS77.P1").status == "warning"


def test_bad_scores_and_time_raise(registry: Registry) -> None:
    cal = calibration_with(registry)
    with pytest.raises(StateError, match="probability"):
        update_state(None, cal, scores(p_seal_failure=1.5), T0)
    with pytest.raises(StateError, match="more than once"):
        update_state(None, cal, pd.concat([scores(), scores()]), T0)
    state = update_state(None, cal, None, T0)
    with pytest.raises(StateError, match="before"):
        update_state(state, cal, None, T0 - pd.Timedelta(minutes=1))
    with pytest.raises(StateError, match="not in the twin state"):
        state.asset("PS99.P9")


def test_frame_markdown_and_json(registry: Registry) -> None:
    state = update_state(None, calibration_with(registry, wear=0.06), scores(anomaly_score=0.9), T0)
    frame = state.to_frame()
    assert list(frame.columns[:8]) == [
        "asset",
        "kind",
        "health_index",
        "status",
        "severity",
        "driver",
        "alerts",
        "model_version",
    ]
    assert len(frame) == len(registry.pumps) + 1
    assert frame.set_index("asset").loc["PS02.P2", "alerts"] == 1
    assert np.isclose(frame.set_index("asset").loc["PS02.P2", "impeller_wear"], 0.06)
    md = state.to_markdown()
    assert "| PS02.P2 | " in md
    assert "impeller_wear" in md
    assert "| alarm |" in md
    text = json.dumps(state.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["ts"] == T0.isoformat()
    assert data["calibration"]["pumps"]["PS02.P2"]["impeller_wear"] == pytest.approx(0.06)
    assert {a["source"] for a in data["alerts"]} == {"impeller_wear", "anomaly_score"}
    assert json.loads(state.to_json()) == data
