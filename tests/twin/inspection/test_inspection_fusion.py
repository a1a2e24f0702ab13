"""Route evidence graded and fused into the twin state; route readings weighed against the online tags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.health.io import read_state, write_state
from pumptwin.twin.health.state import DEFAULT_RULES, TwinState, assess, update_state
from pumptwin.twin.inspection.fusion import (
    THERMO_BANDS_K,
    RouteEvidence,
    SensorFlag,
    fuse,
    grade,
    iso_grade,
    latest_visits,
    route_evidence,
    sensor_flags,
    thermo_bands_k,
    thermo_grade,
)
from pumptwin.twin.inspection.routes import RouteBatch, parse_route

ASSETS = {"PS01.P1", "PS01.P2"}
NOW = pd.Timestamp("2026-12-01T12:00Z")
T = pd.Timestamp("2026-11-30T08:00Z")
START = T - pd.Timedelta(minutes=10)


def vibration(values: dict[tuple[str, str], float], ts: pd.Timestamp = T, asset: str = "PS01.P1") -> RouteBatch:
    rows = [
        {"asset": asset, "time": ts.isoformat(), "point": p, "direction": d, "overall": str(v)}
        for (p, d), v in values.items()
    ]
    batch = parse_route(pd.DataFrame(rows), ASSETS, source="vib.csv", now=max(NOW, ts))
    assert batch.quarantined.empty
    return batch


def thermography(component: str, spot: float, ref: float, ts: pd.Timestamp = T) -> RouteBatch:
    rows = [{"asset": "PS01.P1", "time": ts.isoformat(), "component": component, "spot": spot, "reference": ref}]
    return parse_route(pd.DataFrame(rows).astype(str), ASSETS, source="ir.csv", now=NOW)


def online(tag: str, values: list[float] | np.ndarray, start: pd.Timestamp = START) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq="10s", tz="UTC")
    return pd.DataFrame({"ts": ts, "tag": tag, "value": np.asarray(values, dtype=float), "quality": "good"})


def test_grades_hit_the_band_boundaries() -> None:
    assert iso_grade(0.0) == 0.0
    assert iso_grade(2.3) == pytest.approx(0.5)
    assert iso_grade(4.5) == pytest.approx(0.75)
    assert iso_grade(7.1) == pytest.approx(1.0)
    assert iso_grade(9.7) == pytest.approx(1.25)  # zone C's slope continues into D
    assert thermo_grade(10.0) == pytest.approx(0.5) and thermo_grade(20.0) == pytest.approx(0.75)
    assert thermo_grade(40.0) == pytest.approx(1.0) and thermo_grade(-2.0) == 0.0
    assert thermo_bands_k("NDE bearing") == (40.0, 50.0, 60.0) and thermo_bands_k("Motor frame")[1] == 35.0
    assert thermo_bands_k("cable termination") == THERMO_BANDS_K
    assert thermo_grade(50.0, thermo_bands_k("DE bearing")) == pytest.approx(0.75)
    assert math.isnan(grade(math.nan, (1, 2, 3)))
    xs = np.linspace(0, 20, 101)
    assert np.all(np.diff([iso_grade(x) for x in xs]) > 0)


def test_evidence_takes_the_latest_visit_and_the_worst_direction() -> None:
    old = vibration({("DE", "H"): 9.0}, ts=T - pd.Timedelta(days=30)).vibration
    new = vibration({("DE", "H"): 3.0, ("DE", "V"): 5.0, ("NDE", "A"): 1.0}).vibration
    frames = {"vibration": pd.concat([old, new], ignore_index=True)}
    ev = route_evidence(frames, NOW)
    v = ev.values["PS01.P1"]
    assert v["route_vib_de_mm_s"] == 5.0 and v["route_vib_nde_mm_s"] == 1.0
    assert v["route_vib_de_iso"] == pytest.approx(iso_grade(5.0))
    assert v["route_vib_time_s"] == T.timestamp()
    assert ev.times["PS01.P1"]["route_vib_de_iso"] == T and ev.sources["PS01.P1"]["route_vib_de_iso"] == "vib.csv"
    assert "DE V 5.00 mm/s, ISO zone C" in ev.details["PS01.P1"]["route_vib_de_iso"]
    # too old: no evidence
    assert route_evidence(frames, NOW + pd.Timedelta(days=400)).values == {}
    assert len(latest_visits(frames, NOW)["vibration"]) == 3


def test_thermography_and_visual_evidence() -> None:
    ir = thermography("DE bearing", 95.0, 30.0)
    ev = route_evidence(ir, NOW)
    assert ev.values["PS01.P1"]["route_thermo_dk"] == pytest.approx(65.0)
    assert ev.values["PS01.P1"]["route_thermo_grade"] > 1.0
    healthy = route_evidence(thermography("DE bearing", 60.0, 25.0), NOW)  # 35 K: a bearing in good order
    assert healthy.values["PS01.P1"]["route_thermo_grade"] < 0.5
    rows = [{"asset": "PS01.P2", "time": T.isoformat(), "finding": f, "severity": s}
            for f, s in (("paint", "1"), ("cracked baseplate grout", "3"))]  # fmt: skip
    vis = parse_route(pd.DataFrame(rows), ASSETS, source="v.csv", now=NOW)
    ev2 = route_evidence(vis, NOW)
    assert ev2.values["PS01.P2"]["route_visual"] == 3.0
    assert "cracked baseplate grout" in ev2.details["PS01.P2"]["route_visual"]


def test_flag_when_the_online_sensor_reads_half() -> None:
    route = vibration({("DE", "H"): 6.0, ("DE", "V"): 6.5})
    rng = np.random.default_rng(0)
    half = online("PS01.P1.VIB_DE_RMS", 3.0 + 0.05 * rng.standard_normal(120))
    flags = sensor_flags(route, half, vibration_tolerance=0.3, temperature_tolerance_k=5.0)
    assert len(flags) == 1
    f = flags[0]
    assert (f.asset, f.tag, f.route_value, f.ts) == ("PS01.P1", "PS01.P1.VIB_DE_RMS", 6.0, T)
    assert f.online_value == pytest.approx(3.0, abs=0.05) and "differs" in f.reason


def test_flag_when_the_online_sensor_is_stuck_or_missing() -> None:
    route = vibration({("DE", "H"): 6.0, ("NDE", "H"): 4.0})
    rng = np.random.default_rng(1)
    stuck = pd.concat(
        [online("PS01.P1.VIB_DE_RMS", [6.0] * 120), online("PS01.P1.FLOW", 400 + rng.standard_normal(120))]
    )
    flags = sensor_flags(route, stuck, vibration_tolerance=0.3, temperature_tolerance_k=5.0)
    reasons = {f.tag: f.reason for f in flags}
    assert "flat" in reasons["PS01.P1.VIB_DE_RMS"]
    assert "missing" in reasons["PS01.P1.VIB_NDE_RMS"]  # the historian has the pump, not this tag
    # no readings of the asset at all: nothing to compare
    assert sensor_flags(route, stuck.iloc[:0], vibration_tolerance=0.3, temperature_tolerance_k=5.0) == []


def test_no_flag_when_route_and_online_agree() -> None:
    route = vibration({("DE", "H"): 6.0, ("DE", "V"): 9.0, ("NDE", "H"): 2.0})
    rng = np.random.default_rng(2)
    ok = pd.concat(
        [
            online("PS01.P1.VIB_DE_RMS", 5.6 + 0.1 * rng.standard_normal(120)),
            online("PS01.P1.VIB_NDE_RMS", 2.2 + 0.05 * rng.standard_normal(120)),
            online("PS01.P1.BRG_DE_TEMP", 57.0 + 0.2 * rng.standard_normal(120)),
            online("PS01.P1.MOTOR_WINDING_TEMP", 85.0 + rng.standard_normal(120)),
        ]
    )
    ir = pd.concat(
        [thermography("DE bearing", 60.0, 50.0).thermography, thermography("motor", 55.0, 30.0).thermography]
    )
    frames = {"vibration": route.vibration, "thermography": ir}
    assert sensor_flags(frames, ok, vibration_tolerance=0.3, temperature_tolerance_k=5.0) == []
    # readings outside the window are not compared
    late = online("PS01.P1.VIB_DE_RMS", [1.0] * 10, start=T + pd.Timedelta(hours=2))
    assert sensor_flags(route, late, vibration_tolerance=0.3, temperature_tolerance_k=5.0) == []


def test_temperature_flags_bearing_and_winding_lower_bound() -> None:
    ir = pd.concat(
        [thermography("NDE bearing", 70.0, 50.0).thermography, thermography("motor frame", 60.0, 30.0).thermography]
    )
    cold = pd.concat([online("PS01.P1.BRG_NDE_TEMP", [55.0] * 60), online("PS01.P1.MOTOR_WINDING_TEMP", [40.0] * 60)])
    flags = sensor_flags({"thermography": ir}, cold, vibration_tolerance=0.3, temperature_tolerance_k=5.0)
    assert {f.tag for f in flags} == {"PS01.P1.BRG_NDE_TEMP", "PS01.P1.MOTOR_WINDING_TEMP"}
    hot_winding = pd.concat(
        [online("PS01.P1.BRG_NDE_TEMP", [69.0] * 60), online("PS01.P1.MOTOR_WINDING_TEMP", [95.0] * 60)]
    )
    assert sensor_flags({"thermography": ir}, hot_winding, vibration_tolerance=0.3, temperature_tolerance_k=5.0) == []
    with pytest.raises(ValueError, match="vibration_tolerance"):
        sensor_flags({}, cold, vibration_tolerance=0.0, temperature_tolerance_k=5.0)


def base_state() -> TwinState:
    healthy = assess("PS01.P1", "pump", {"impeller_wear": 0.01, "anomaly_score": 0.2}, DEFAULT_RULES, "m-1")
    other = assess("PS01.P2", "pump", {"impeller_wear": 0.0}, DEFAULT_RULES)
    return TwinState(NOW, (healthy, other), ())


def test_fuse_raises_severity_and_alerts_and_round_trips(tmp_path: Path) -> None:
    state = base_state()
    assert state.asset("PS01.P1").status == "normal"
    route = vibration({("DE", "H"): 8.0, ("DE", "V"): 6.0})
    ev = route_evidence(route, NOW)
    flag = SensorFlag("PS01.P1", "PS01.P1.VIB_DE_RMS", 8.0, 4.0, T, "differs from the route by more than 30%")
    fused = fuse(state, ev, [flag])
    h = fused.asset("PS01.P1")
    assert h.status == "alarm" and h.driver == "route_vib_de_iso"
    assert h.health_index < state.asset("PS01.P1").health_index
    assert h.evidence["route_vib_de_mm_s"] == 8.0 and h.evidence["sensor_flag"] == 1.0
    assert h.evidence["impeller_wear"] == 0.01 and h.model_version == "m-1"
    alerts = {a.source: a for a in fused.alerts}
    vib = alerts["route_vib_de_iso"]
    assert vib.level == "alarm" and vib.kind == "physics" and vib.model_version == "route:vibration:vib.csv"
    assert vib.since == T and "8.00 mm/s" in vib.detail
    sf = alerts["sensor_flag"]
    assert sf.level == "warning" and sf.model_version == "route:sensor-check:VIB_DE_RMS"
    assert fused.asset("PS01.P2") == state.asset("PS01.P2") and fused.ts == state.ts

    path = write_state(fused, tmp_path / "state.json")
    back = read_state(path)
    assert back.asset("PS01.P1").evidence == pytest.approx(dict(h.evidence))
    assert back.alerts == fused.alerts
    assert fuse(back, ev, [flag]).alerts == fused.alerts  # fusing again changes nothing


def test_fuse_replaces_old_route_evidence_and_keeps_since() -> None:
    state = base_state()
    first = fuse(state, route_evidence(vibration({("DE", "H"): 8.0}), NOW), [])
    later_ts = T + pd.Timedelta(days=7)
    again = route_evidence(vibration({("DE", "H"): 7.5}, ts=later_ts), NOW + pd.Timedelta(days=7))
    second = fuse(first, again, [])
    alert = next(a for a in second.alerts if a.source == "route_vib_de_iso")
    assert alert.since == T and alert.last_seen == later_ts
    # a resync rebuilds the state without route keys; `previous` keeps the alert's since
    resynced = update_state(None, _no_calibration(), pd.DataFrame({"asset": ["PS01.P1"], "anomaly_score": [0.1]}), NOW)
    third = fuse(resynced, again, [], previous=second)
    assert next(a for a in third.alerts if a.source == "route_vib_de_iso").since == T
    healthy = fuse(second, route_evidence(vibration({("DE", "H"): 1.0}, ts=later_ts), NOW), [])
    assert healthy.asset("PS01.P1").status == "normal" and not healthy.alerts
    assert "route_vib_de_mm_s" in healthy.asset("PS01.P1").evidence
    cleared = fuse(second, RouteEvidence(), [])
    assert not any(k.startswith("route_") for k in cleared.asset("PS01.P1").evidence) and not cleared.alerts


def test_fuse_adds_assets_the_state_lacks() -> None:
    rows = [{"asset": "PS01.P2", "time": T.isoformat(), "finding": "casing crack", "severity": "critical"}]
    vis = parse_route(pd.DataFrame(rows), ASSETS, source="walk.csv", now=NOW)
    fused = fuse(TwinState(NOW, ()), route_evidence(vis, NOW), [])
    h = fused.asset("PS01.P2")
    assert h.kind == "pump" and h.status == "alarm" and h.evidence["route_visual"] == 4.0
    assert fused.alerts[0].model_version == "route:visual:walk.csv" and "casing crack" in fused.alerts[0].detail


def _no_calibration():  # noqa: ANN202 - a calibration without pumps or lines
    from pumptwin.twin.health.estimation import TwinCalibration  # re-exported there

    return TwinCalibration(ts=None, pumps={}, lines={}, n_updates=0)


def test_no_flag_near_standstill_where_a_relative_difference_is_noise() -> None:
    rng = np.random.default_rng(1)
    stopped = online("PS01.P1.VIB_DE_RMS", 0.03 + 0.005 * rng.standard_normal(120))
    route = vibration({("DE", "H"): 0.21})
    assert sensor_flags(route, stopped, vibration_tolerance=0.3, temperature_tolerance_k=5.0) == []
