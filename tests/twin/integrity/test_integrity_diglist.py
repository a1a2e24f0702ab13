"""The dig list: immediate first, then by dig-by date and remaining life, then ERF; a reason a crew can act on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.integrity.assessment import IntegrityError
from pumptwin.twin.integrity.diglist import (
    DIG_COLUMNS,
    SCHEDULED_RESPONSE_DAYS,
    clock_text,
    dig_list,
    dig_list_csv,
)

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def assessed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature_id": ["M1", "I1", "S1", "S2", "I2", "M2", "W1"],
            "chainage_m": [1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0],
            "clock_h": [1.0, 4.5, 6.0, 0.0, 11.75, 3.0, np.nan],
            "depth_frac": [0.3, 0.82, 0.55, 0.6, 0.7, 0.35, np.nan],
            "length_m": [0.05, 0.12, 0.1, 0.2, 0.5, 0.05, np.nan],
            "wall_m": 0.0087,
            "safe_pa": [6e6, 2.0e6, 4.5e6, 4.0e6, 2.5e6, 5.5e6, np.nan],
            "erf": [0.5, 1.5, 0.9, 1.1, 1.3, 0.6, np.nan],
            "category": ["monitor", "immediate", "scheduled", "scheduled", "immediate", "monitor", "not assessed"],
            "category_reason": ["ok", "depth 82 % of wall >= 80 %", "depth 55 %", "ERF 1.10 >= 1", "x", "ok", "weld"],
            "weld_number": [10.0, 230.0, 240.0, np.nan, 260.0, 270.0, 280.0],
            "weld_distance_m": [1.0, 3.25, 2.0, np.nan, 4.0, 5.0, 0.0],
            "pipe_id": ["L000-005"] * 7,
            "surface": ["external", "external", "internal", "external", "external", "external", ""],
        }
    )


def life() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature_id": ["M1", "I1", "S1", "S2", "I2", "M2"],
            "remaining_life_years": [30.0, 0.0, 12.0, 0.8, 0.0, 3.0],
            "limit": ["80 % wall", "already past", "80 % wall", "safe pressure at MAOP", "already past", "80 % wall"],
        }
    )


def test_ranking_and_dates() -> None:
    dig = dig_list(assessed(), life(), horizon_years=5.0, as_of=AS_OF)
    assert list(dig.columns) == DIG_COLUMNS
    # immediate by ERF (I1 1.5 before I2 1.3); then S2 (half of 0.8 years < 180 days), S1 (180 days),
    # M2 (monitor, its 3-year life within the 5-year horizon: half of it); M1 (30 years) and W1 stay off
    assert dig["feature_id"].tolist() == ["I1", "I2", "S2", "S1", "M2"]
    assert dig["rank"].tolist() == [1, 2, 3, 4, 5]
    by = dig.set_index("feature_id")["dig_by"]
    assert by["I1"] == AS_OF
    assert by["S2"] == AS_OF + pd.Timedelta(days=0.8 * 365.25 / 2)
    assert by["S1"] == AS_OF + pd.Timedelta(days=SCHEDULED_RESPONSE_DAYS)
    assert by["M2"] == AS_OF + pd.Timedelta(days=3.0 * 365.25 / 2)


def test_reason_holds_numbers_a_crew_needs() -> None:
    dig = dig_list(assessed(), life(), as_of=AS_OF).set_index("feature_id")
    reason = dig.loc["I1", "reason"]
    for text in ("Immediate", "external metal loss", "82 % of wall", "7.1 mm of 8.7 mm", "120 mm long"):
        assert text in reason, reason
    for text in ("3.25 m downstream of girth weld 230", "4:30 o'clock", "2.000 km", "L000-005", "2.00 MPa"):
        assert text in reason, reason
    assert "ERF 1.50" in reason and "dig now" in reason
    assert "dig within 146 days" in dig.loc["S2", "reason"]
    assert "girth weld" not in dig.loc["S2", "reason"]  # no weld reference given


def test_without_a_forecast_only_the_rules_count() -> None:
    dig = dig_list(assessed(), None, as_of=AS_OF)
    assert dig["feature_id"].tolist() == ["I1", "I2", "S2", "S1"]
    assert dig["remaining_life_years"].isna().all()
    assert "remaining life not estimated" in dig.loc[0, "reason"]


def test_bad_input_raises_and_csv_has_dates() -> None:
    with pytest.raises(IntegrityError, match="horizon_years"):
        dig_list(assessed(), life(), horizon_years=-1.0)
    with pytest.raises(IntegrityError, match="safe_pa"):
        dig_list(assessed().drop(columns=["safe_pa"]), life())
    text = dig_list_csv(dig_list(assessed(), life(), as_of=AS_OF))
    assert text.splitlines()[0].startswith("rank,feature_id,chainage_m")
    assert ",2024-06-01," in text.splitlines()[1]


@pytest.mark.parametrize(("hours", "text"), [(4.5, "4:30"), (0.0, "12:00"), (11.99, "11:59"), (12.0, "12:00")])
def test_clock_text(hours: float, text: str) -> None:
    assert clock_text(hours) == text
