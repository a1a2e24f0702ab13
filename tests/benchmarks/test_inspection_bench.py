"""The inspection benchmark's pieces: fault draws, the route criteria, a short run of both policies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import inspection, inspection_fleet
from pumptwin.plant.health import PUMP_MODES
from pumptwin.plant.rounds import THERMOGRAPHY_COLUMNS, VIBRATION_COLUMNS, VISUAL_COLUMNS


def _npsh(lines: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    pumps = inspection_fleet.duty_pumps(lines)
    days = range(inspection_fleet.YEAR_DAYS + 1)
    return pd.DataFrame(20.0, index=days, columns=pumps), pd.DataFrame(10.0, index=days, columns=pumps)


def test_fault_draws_cover_every_mode_once_per_duty_pump() -> None:
    faults = inspection_fleet.draw_faults(3, npsh=_npsh())
    assert [f.asset for f in faults] == inspection_fleet.duty_pumps()
    assert {m.value for m in PUMP_MODES} <= {f.mode for f in faults}
    for f in faults:
        lo, hi = inspection_fleet.PF_DAYS[next(m for m in PUMP_MODES if m.value == f.mode)]
        assert lo <= f.failure_day - f.onset_day <= hi + 0.1
        assert f.onset_day >= inspection_fleet.LEARN_DAYS - 0.1
        assert f.failure_day <= inspection_fleet.LAST_FAILURE_DAY
        if f.mode == "cavitation":  # NPSHa 20 m, NPSHr 10 m: 20 / (0.85 x 10) - 1
            assert f.magnitude == pytest.approx(20.0 / 8.5 - 1.0, abs=1e-3)
    assert inspection_fleet.draw_faults(3, npsh=_npsh()) == faults
    assert inspection_fleet.draw_faults(4, npsh=_npsh()) != faults


def test_route_criteria() -> None:
    ts = pd.Timestamp("2024-02-01T14:00:00Z")
    vib = pd.DataFrame(
        [
            [ts, "PS01.P1", "DE", "H", 4.6, *[np.nan] * 4, "c", "s"],
            [ts, "PS01.P2", "DE", "H", 4.4, *[np.nan] * 4, "c", "s"],
        ],
        columns=list(VIBRATION_COLUMNS),
    )
    thermo = pd.DataFrame(
        [
            [ts, "PS02.P1", "motor", 50.0, 10.0, 40.0, "c", "s"],
            [ts, "PS02.P2", "DE bearing", 50.0, 10.0, 40.0, "c", "s"],
        ],
        columns=list(THERMOGRAPHY_COLUMNS),
    )
    visual = pd.DataFrame(
        [[ts, "PS03.P1", "seal", 2, "visual", "", "c", "s"], [ts, "PS03.P2", "seal", 1, "visual", "", "c", "s"]],
        columns=list(VISUAL_COLUMNS),
    )
    hits = inspection.findings({"vibration": vib, "thermography": thermo, "visual": visual})
    assert hits == {"PS01.P1", "PS02.P1", "PS03.P1"}


def test_short_run_of_both_policies(tmp_path) -> None:  # noqa: ANN001
    faults = (
        inspection_fleet.FaultDraw("PS01.P1", "seal_failure", 1.0, 12.0, 60.0),
        inspection_fleet.FaultDraw("PS02.P2", "motor_overheating", 1.0, 60.0, 0.7),
    )
    rows = [inspection.run_policy(7, p, faults, weeks=6, lines=1) for p in inspection.POLICIES]
    calendar, planner = rows
    # the calendar round of February (January's is the commissioning visit): every pump once
    assert calendar["rounds"] == 1 and calendar["visits"] == 6
    assert calendar["hours"] == pytest.approx(6 * inspection.VISIT_HOURS + 2 * inspection.TRAVEL_HOURS)
    assert [f["asset"] for f in calendar["faults"]] == ["PS01.P1"]  # the motor fails after the run
    seal = calendar["faults"][0]
    assert seal["found"] != (seal["failed_ts"] is not None)
    assert planner["twin_s"] > 0 and planner["weeks"] == 6
    assert planner["visits"] == sum(len(p["visits"]) for p in planner["plans"])
    assert planner["hours"] == pytest.approx(sum(p["hours"] for p in planner["plans"]))
    summary = inspection.summarise(rows)
    assert summary["calendar"]["faults"] == 1
    assert set(summary["targets_met"]) == {"hours_saved_ge_75pct", "detection_drop_le_2pp"}
    record = {
        "summaries": {"tuning": summary},
        "seed_sets": {"tuning": [7]},
        "weeks": 3,
        "wall_s": 1.0,
        "jobs": 1,
    }
    text = inspection.markdown(record)
    assert "| inspection hours |" in text and "found: seal_failure" in text
    json.dumps(rows)
