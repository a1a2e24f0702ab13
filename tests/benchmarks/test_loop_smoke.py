"""The closed-loop benchmark: its episodes, its meters and (slow) one quick run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import loop, loop_episodes
from pumptwin.plant.health import PUMP_MODES
from pumptwin.plant.simulator import Plant
from pumptwin.twin.hydraulic.io import load_network


def test_default_episodes_cover_every_pump_mode_with_stress_wear() -> None:
    specs = loop_episodes.draw_episodes(loop.DEFAULT_SEEDS)
    faults = [s for s in specs if not s.healthy]
    assert len(faults) >= 20
    assert any(s.healthy for s in specs)
    assert len({s.id for s in specs}) == len(specs)
    for mode in PUMP_MODES:
        assert len({s.seed for s in faults if s.mode == mode.value}) >= 2, mode
    for s in faults:
        assert s.onset_s < s.failure_s < s.end_s
        (fault,) = loop_episodes.scenario_of(s).faults
        assert fault.stress and fault.trip
        assert loop_episodes.scenario_of(s, faults=False).faults == ()
    assert loop_episodes.draw_episodes(loop.DEFAULT_SEEDS) == specs


def test_oracle_scores_name_the_true_mode_only_past_the_threshold() -> None:
    spec = next(s for s in loop_episodes.draw_episodes((3,)) if s.mode == "impeller_wear")
    plant = Plant(loop_episodes.scenario_of(spec), load_network())
    assert loop_episodes.oracle_scores(spec, plant) is None  # before onset
    plant.advance(spec.failure_s - 0.2 * (spec.failure_s - spec.onset_s))
    scores = loop_episodes.oracle_scores(spec, plant)
    assert scores is not None
    assert list(scores["asset"]) == [spec.target]
    assert 0.5 < float(scores[f"p_{spec.mode}"].iloc[0]) <= 0.95
    plant.repair(spec.target)
    assert loop_episodes.oracle_scores(spec, plant) is None


def _frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tag": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], utc=True),
            "value": [r[2] for r in rows],
            "quality": "good",
        }
    )


def test_meter_counts_sustained_violations_not_spikes() -> None:
    meter = loop.Meter({"LINE01.PS1_D.PRESS": 60.0}, {"PS01.P1": 1000.0}, {"PS01.P1": (0.7, 1.05)}, "PS01.P2")
    minutes = pd.date_range("2024-03-01T00:00Z", periods=20, freq="60s")
    rows = [("LINE01.PS1_D.PRESS", str(t), 70.0 if i < 10 else 50.0) for i, t in enumerate(minutes)]
    rows += [("LINE01.PS1_D.PRESS", str(minutes[15]), 1e4)]  # one spike in the second bucket
    rows += [("PS01.P1.SPEED", str(t), 1200.0 if i >= 10 else 900.0) for i, t in enumerate(minutes)]
    rows += [("PS01.P1.STATUS", str(t), 1.0) for t in minutes]
    rows += [("PS01.P1.MOTOR_POWER", str(t), 600.0) for t in minutes]
    meter.add(_frame(rows))
    assert meter.violations_min["MAOP"] == 10.0  # the first 10-minute bucket only
    assert meter.violations_min["SURGE"] == 10.0  # 70 > 1.1 x 60
    assert meter.violations_min["SPEED"] == 10.0  # 1.2 x rated in the second bucket
    assert meter.energy_mwh == pytest.approx(0.6 * 20 / 60)
    truth = pd.DataFrame(
        {"asset": ["PS01.P1", "PS01.P2", "PS01.P3"], "running": [True, True, False], "npsh_margin_m": [0.5, 0.2, 0.1]}
    )
    meter.add_truth(truth, loop.Limits(), 600.0)
    assert meter.violations_min["NPSH"] == 10.0
    assert meter.violations_min["NPSH (faulty pump)"] == 10.0
    assert meter.npsh_assets == {"PS01.P1"}


def test_summary_counts_avoided_failures_per_way() -> None:
    def row(way: str, mode: str, avoided: bool, tripped: bool) -> dict[str, object]:
        return {
            "way": way,
            "mode": mode,
            "avoided": avoided,
            "no_trip_by_window": not tripped and mode != "healthy",
            "tripped": tripped,
            "other_trips": 0,
            "unplanned_downtime_h": 10.0 if tripped else 0.0,
            "nominated_m3": 100.0,
            "delivered_m3": 99.0,
            "energy_mwh": 1.0,
            "actions_on_healthy_assets": 0,
            "actions_implemented": 1,
            "maintenance_on_healthy_assets": [],
            "requests": 1,
            "auto_implemented": 0,
            "violations_min": {"MAOP": 0.0, "NPSH (faulty pump)": 5.0},
            "alert_lead_h": 3.0 if mode != "healthy" else None,
            "first_alert_h": 1.0,
            "wall_s": 1.0,
        }

    rows = [row(w, "bearing_wear", w != "alarms", w == "alarms") for w in loop.WAYS]
    rows += [row(w, "seal_failure", False, True) for w in loop.WAYS]
    rows += [row(w, "healthy", False, False) for w in loop.WAYS]
    s = loop.summarise(rows)
    assert s["alarms"]["avoided_share"] == 0.0
    assert s["approver"]["avoided_share"] == 0.5
    assert s["approver"]["fault_episodes"] == 2 and s["approver"]["healthy_episodes"] == 1
    assert s["auto"]["throughput_lost_pct"] == pytest.approx(1.0)
    assert s["auto"]["hard_limit_violation_min"] == 0.0  # the faulty pump's own deficit is apart
    assert s["auto"]["targets_met"] == {
        "avoided_share": False,
        "throughput_lost_pct": True,
        "hard_limit_violation_min": True,
    }
    assert np.isclose(s["alarms"]["unplanned_downtime_h"], 20.0)
    assert s["auto"]["auto_writes"] == 0 and s["auto"]["auto_decided"] == 0


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "loop.json"
    code = loop.main(["--quick", "--jobs", "1", "--out", str(out)])
    record = json.loads(out.read_text(encoding="utf-8"))
    assert code in (0, 1)
    assert {r["way"] for r in record["rows"]} == set(loop.WAYS)
    alarms = [r for r in record["rows"] if r["way"] == "alarms" and r["mode"] != "healthy"]
    assert alarms and all(r["tripped"] and not r["avoided"] for r in alarms)  # run to failure
    assert record["summary"]["alarms"]["avoided_share"] == 0.0
