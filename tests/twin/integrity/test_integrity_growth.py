"""Corrosion growth: weld alignment, one-to-one matching, rates with their sigma, segments, remaining life.

Two tiny runs are built by hand: a line of random joints (10.5-13.5 m), the later run's odometer
reading 0.3 % long and 2.5 m ahead; its welds are either numbered alike or renumbered with one
weld missed. Expected values are worked out here from the definitions in the docstrings.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.integrity.assessment import AssessmentSettings, IntegrityError, safe_pressure_pa
from pumptwin.twin.integrity.growth import (
    Z90,
    align_to,
    feature_rates,
    growth_rates,
    map_distance,
    match_features,
    match_welds,
    remaining_life_years,
    segment_growth,
    study_growth,
)
from pumptwin.twin.integrity.ili import FEATURE_COLUMNS, WELD_COLUMNS, IliRun
from pumptwin.twin.integrity.pipe import PipeProperties

WALL = 0.0087
SCALE, OFFSET = 1.003, 2.5
"""The later run's odometer: log = SCALE x true + OFFSET."""
PIPE = PipeProperties("X52", 360e6, 460e6, WALL, 0.66)


def joints(n: int = 60, seed: int = 1) -> np.ndarray:
    """True positions of n girth welds, m."""
    return np.concatenate([[5.0], 5.0 + np.cumsum(np.random.default_rng(seed).uniform(10.5, 13.5, n - 1))])


def frame(rows: list[dict]) -> pd.DataFrame:
    defaults = {
        "chainage_m": np.nan,
        "weld_number": np.nan,
        "weld_distance_m": np.nan,
        "feature_type": "metal_loss",
        "dimension_class": "general",
        "width_m": 0.05,
        "surface": "external",
        "wall_m": WALL,
        "vendor_erf": np.nan,
        "vendor_failure_pa": np.nan,
    }
    return pd.DataFrame([{**defaults, **r} for r in rows]).reindex(columns=list(FEATURE_COLUMNS))


def run(
    run_id: str,
    date: str,
    features: list[dict],
    weld_log: np.ndarray,
    weld_numbers: np.ndarray,
    weld_chainage: np.ndarray | None = None,
) -> IliRun:
    welds = pd.DataFrame(
        {
            "weld_number": np.asarray(weld_numbers, dtype=float),
            "log_distance_m": weld_log,
            "chainage_m": np.full(len(weld_log), np.nan) if weld_chainage is None else weld_chainage,
        }
    ).reindex(columns=list(WELD_COLUMNS))
    return IliRun(
        run_id=run_id,
        date=pd.Timestamp(date, tz="UTC"),
        vendor="Acme",
        tool="MFL",
        depth_sd_frac=0.078,
        length_sd_m=0.0195,
        features=frame(features),
        welds=welds,
        quarantined=pd.DataFrame(columns=["reason", "row"]),
        source=f"{run_id}.csv",
    )


TRUE_X = [40.0, 41.0, 300.3, 500.0, 650.0]
OLD = [
    {"feature_id": "A1", "x": 40.0, "clock_h": 11.9, "depth_frac": 0.20, "length_m": 0.05},
    {"feature_id": "A2", "x": 41.0, "clock_h": 3.0, "depth_frac": 0.30, "length_m": 0.08},
    {"feature_id": "A3", "x": 300.3, "clock_h": 6.0, "depth_frac": 0.40, "length_m": 0.10},
    {"feature_id": "A4", "x": 500.0, "clock_h": 9.0, "depth_frac": 0.15, "length_m": 0.03},
]
NEW = [
    {"feature_id": "B1", "x": 40.05, "clock_h": 0.2, "depth_frac": 0.26, "length_m": 0.06},  # across 12 o'clock
    {"feature_id": "B2", "x": 40.95, "clock_h": 3.2, "depth_frac": 0.34, "length_m": 0.09},
    {"feature_id": "B3", "x": 300.25, "clock_h": 6.3, "depth_frac": 0.38, "length_m": 0.10},  # shallower: noise
    {"feature_id": "B9", "x": 650.0, "clock_h": 2.0, "depth_frac": 0.12, "length_m": 0.02},  # new
]


def pair_of_runs(renumber: bool = False, drop_weld: int | None = None) -> tuple[IliRun, IliRun]:
    x = joints()
    numbers = np.arange(10, 10 + len(x)) * 10
    old_feats = [{**{k: v for k, v in f.items() if k != "x"}, "log_distance_m": f["x"]} for f in OLD]
    old = run("R2019", "2019-06-01", old_feats, x, numbers)
    new_x = x if drop_weld is None else np.delete(x, drop_weld)
    new_numbers = (np.arange(len(new_x)) + 1000) if renumber else numbers[: len(new_x)]
    new_feats = [{**{k: v for k, v in f.items() if k != "x"}, "log_distance_m": SCALE * f["x"] + OFFSET} for f in NEW]
    new = run("R2024", "2024-06-01", new_feats, SCALE * new_x + OFFSET, new_numbers)
    return old, new


def test_welds_pair_by_number_and_map_the_odometer_back() -> None:
    old, new = pair_of_runs()
    match = match_welds(old.welds, new.welds)
    assert match.method == "numbers" and len(match.pairs) == len(old.welds)
    aligned = map_distance(SCALE * np.array(TRUE_X) + OFFSET, match.pairs)
    np.testing.assert_allclose(aligned, TRUE_X, atol=1e-9)


def test_renumbered_welds_pair_by_joint_lengths_despite_a_missed_weld() -> None:
    old, new = pair_of_runs(renumber=True, drop_weld=20)
    match = match_welds(old.welds, new.welds)
    assert match.method == "joints", match.note
    assert len(match.pairs) == len(new.welds)
    # every pair is the same physical weld: the later run's log maps back to the reference one
    np.testing.assert_allclose((match.pairs["log_run_m"] - OFFSET) / SCALE, match.pairs["log_ref_m"], atol=1e-9)
    aligned = align_to(old, new)
    assert (aligned["alignment"] == "joints").all()
    np.testing.assert_allclose(aligned["aligned_m"], [f["x"] for f in NEW], atol=1e-6)


def test_without_welds_the_marker_chainage_aligns_with_a_note() -> None:
    old, new = pair_of_runs()
    empty = pd.DataFrame(columns=list(WELD_COLUMNS), dtype=float)
    old_feats = old.features.assign(chainage_m=old.features["log_distance_m"] + 200.0)
    new_feats = new.features.assign(chainage_m=(new.features["log_distance_m"] - OFFSET) / SCALE + 200.0)
    old2 = replace(old, welds=empty, features=old_feats)
    new2 = replace(new, welds=empty, features=new_feats)
    aligned = align_to(old2, new2)
    assert (aligned["alignment"] == "chainage").all()
    assert "too few girth welds" in aligned.attrs["alignment"] and "chainage" in aligned.attrs["alignment"]
    # chainage mapped back onto the old odometer through the old features' (chainage, log) pairs
    np.testing.assert_allclose(aligned["aligned_m"], [f["x"] for f in NEW], atol=1e-6)


def test_features_match_one_to_one_with_new_and_missing() -> None:
    old, new = pair_of_runs(renumber=True)
    pairs = match_features(old, new)
    matched = pairs[pairs["status"] == "matched"].set_index("feature_id_new")["feature_id_old"].to_dict()
    assert matched == {"B1": "A1", "B2": "A2", "B3": "A3"}
    assert pairs.loc[pairs["status"] == "new", "feature_id_new"].tolist() == ["B9"]
    assert pairs.loc[pairs["status"] == "missing", "feature_id_old"].tolist() == ["A4"]
    b1 = pairs.set_index("feature_id_new").loc["B1"]
    assert b1["clock_gap_h"] == pytest.approx(0.3)  # 11.9 -> 0.2 across 12 o'clock
    assert b1["distance_gap_m"] == pytest.approx(0.05, abs=1e-6)


def test_assignment_beats_nearest_neighbour() -> None:
    """B2 is nearest to A1 in distance, but only the pairing A1-B1, A2-B2 keeps both clocks close."""
    x = joints()
    old = run(
        "o",
        "2019-01-01",
        [
            {"feature_id": "A1", "log_distance_m": 100.0, "clock_h": 3.0, "depth_frac": 0.2, "length_m": 0.05},
            {"feature_id": "A2", "log_distance_m": 100.3, "clock_h": 4.0, "depth_frac": 0.2, "length_m": 0.05},
        ],
        x,
        np.arange(len(x)),
    )
    new = run(
        "n",
        "2024-01-01",
        [
            {"feature_id": "B1", "log_distance_m": 100.35, "clock_h": 3.1, "depth_frac": 0.2, "length_m": 0.05},
            {"feature_id": "B2", "log_distance_m": 100.05, "clock_h": 3.8, "depth_frac": 0.2, "length_m": 0.05},
        ],
        x,
        np.arange(len(x)),
    )
    pairs = match_features(old, new, max_distance_m=0.5, max_clock_h=1.0)
    got = pairs[pairs["status"] == "matched"].set_index("feature_id_old")["feature_id_new"].to_dict()
    assert got == {"A1": "B1", "A2": "B2"}


def test_gates_refuse_far_features_and_bad_gates_raise() -> None:
    old, new = pair_of_runs()
    pairs = match_features(old, new, max_distance_m=0.01)
    assert (pairs["status"] == "matched").sum() == 0
    with pytest.raises(IntegrityError, match="max_clock_h"):
        match_features(old, new, max_clock_h=0.0)


def test_growth_rates_with_sigma_and_negative_marked() -> None:
    old, new = pair_of_runs()
    rates = growth_rates(old, new, match_features(old, new)).set_index("feature_id")
    years = (pd.Timestamp("2024-06-01") - pd.Timestamp("2019-06-01")).days / 365.25
    assert rates.loc["B1", "depth_rate_m_per_year"] == pytest.approx((0.26 - 0.20) * WALL / years)
    assert rates.loc["B2", "length_rate_m_per_year"] == pytest.approx(0.01 / years)
    assert rates.loc["B1", "depth_rate_sd_m_per_year"] == pytest.approx(math.hypot(0.078 * WALL, 0.078 * WALL) / years)
    assert rates.loc["B3", "depth_rate_m_per_year"] < 0 and bool(rates.loc["B3", "negative_rate"])
    assert not rates.loc["B1", "negative_rate"]
    backwards = replace(new, date=pd.Timestamp("2018-01-01", tz="UTC"))
    with pytest.raises(IntegrityError, match="not later"):
        growth_rates(old, backwards, match_features(old, new))


def rates_frame(chainage: list[float], rate: list[float], sd: list[float]) -> pd.DataFrame:
    n = len(rate)
    return pd.DataFrame(
        {
            "feature_id": [f"F{i}" for i in range(n)],
            "chainage_m": chainage,
            "depth_rate_m_per_year": rate,
            "depth_rate_sd_m_per_year": sd,
            "length_rate_m_per_year": [0.001] * n,
            "negative_rate": [r < 0 for r in rate],
        }
    )


def test_segment_growth_upper_rate() -> None:
    r = rates_frame([100.0, 500.0, 900.0, 1500.0], [1e-4, 3e-4, 5e-4, -1e-4], [1e-4, 1e-4, 1e-4, 2e-4])
    seg = segment_growth(r, 1000.0).set_index("segment")
    assert seg.loc[0, "count"] == 3 and seg.loc[0, "mean_rate_m_per_year"] == pytest.approx(3e-4)
    spread = np.std([1e-4, 3e-4, 5e-4], ddof=1)  # 2e-4, above the 1e-4 measurement sd
    assert seg.loc[0, "upper_rate_m_per_year"] == pytest.approx(3e-4 + Z90 * spread / math.sqrt(3))
    # one feature: its measurement sd stands for the spread; a negative mean is kept, the upper rate floored at 0
    assert seg.loc[1, "upper_rate_m_per_year"] == pytest.approx(max(0.0, -1e-4 + Z90 * 2e-4))
    assert seg.loc[1, "negative_count"] == 1 and seg.loc[1, "start_m"] == 1000.0
    with pytest.raises(IntegrityError, match="segment_m"):
        segment_growth(r, 0.0)


def test_feature_rates_measured_segment_or_half_life() -> None:
    old, new = pair_of_runs()
    for f, x in zip(new.features.index, [f["x"] for f in NEW], strict=True):
        new.features.loc[f, "chainage_m"] = x
    study = study_growth(old, new, segment_m=1000.0)
    assert study.count("matched") == 3 and study.count("new") == 1 and study.count("missing") == 1
    rates = feature_rates(new.features, study, age_years=40.0).set_index("feature_id")
    own = study.rates.set_index("feature_id")
    assert rates.loc["B1", "rate_basis"] == "measured"
    assert rates.loc["B1", "depth_rate_m_per_year"] == own.loc["B1", "depth_rate_m_per_year"]
    upper = study.segments.set_index("segment").loc[0, "upper_rate_m_per_year"]
    assert rates.loc["B3", "rate_basis"].startswith("segment upper")  # negative measured rate
    assert rates.loc["B9", "rate_basis"] == "segment upper"  # new feature, same segment
    assert rates.loc["B9", "depth_rate_m_per_year"] == pytest.approx(upper)
    single = feature_rates(new.features, None, age_years=40.0).set_index("feature_id")
    assert (single["rate_basis"] == "half-life").all()
    assert single.loc["B9", "depth_rate_m_per_year"] == pytest.approx(0.12 * WALL / 20.0)
    with pytest.raises(IntegrityError, match="age_years"):
        feature_rates(new.features, None, age_years=0.0)


def life_inputs(depth: list[float], length: list[float], rate: list[float], lrate: list[float]) -> tuple:
    n = len(depth)
    assessed = pd.DataFrame(
        {
            "feature_id": [f"F{i}" for i in range(n)],
            "feature_type": "metal_loss",
            "depth_frac": depth,
            "length_m": length,
            "wall_m": WALL,
        }
    )
    rates = pd.DataFrame(
        {
            "feature_id": assessed["feature_id"],
            "depth_rate_m_per_year": rate,
            "length_rate_m_per_year": lrate,
            "rate_basis": "measured",
        }
    )
    return assessed, rates


def test_remaining_life_to_80_percent_and_to_the_safe_pressure() -> None:
    settings = AssessmentSettings()
    assessed, rates = life_inputs(
        [0.3, 0.3, 0.85, 0.3], [0.02, 0.5, 0.05, 0.05], [2e-4, 2e-4, 2e-4, 0.0], [0, 1e-3, 0, 0]
    )
    maop = 5.0e6
    life = remaining_life_years(assessed, rates, PIPE, maop, settings).set_index("feature_id")
    # a short pit: the safe pressure stays above MAOP up to 80 % wall
    assert life.loc["F0", "limit"] == "80 % wall"
    assert life.loc["F0", "remaining_life_years"] == pytest.approx((0.8 - 0.3) * WALL / 2e-4)
    # a long feature that also grows in length: its safe pressure reaches MAOP first
    t = life.loc["F1", "remaining_life_years"]
    assert life.loc["F1", "limit"] == "safe pressure at MAOP" and 0 < t < (0.5 * WALL / 2e-4)
    at_t = safe_pressure_pa(0.3 + 2e-4 * t / WALL, 0.5 + 1e-3 * t, WALL, PIPE.diameter_m, PIPE, settings)
    assert float(at_t) == pytest.approx(maop, rel=1e-4)
    assert life.loc["F2", "remaining_life_years"] == 0.0 and life.loc["F2", "limit"] == "already past"
    assert life.loc["F3", "remaining_life_years"] == 100.0 and life.loc["F3", "limit"] == "no growth"


def test_without_welds_or_markers_the_features_refine_the_alignment() -> None:
    """Chainage as read (no marker correction: the later run 0.3 % long and 2.5 m ahead): the gate alone fails."""
    old, new = pair_of_runs()
    empty = pd.DataFrame(columns=list(WELD_COLUMNS), dtype=float)
    old2 = replace(old, welds=empty, features=old.features.assign(chainage_m=old.features["log_distance_m"]))
    new2 = replace(new, welds=empty, features=new.features.assign(chainage_m=new.features["log_distance_m"]))
    aligned = align_to(old2, new2)
    assert (aligned["aligned_m"] - [f["x"] for f in NEW]).abs().min() > 2.0  # chainage alone is metres off
    pairs = match_features(old2, new2)
    matched = pairs[pairs["status"] == "matched"].set_index("feature_id_new")["feature_id_old"].to_dict()
    assert matched == {"B1": "A1", "B2": "A2", "B3": "A3"}
    assert "refined on 3 features" in pairs.attrs["alignment"]
    assert pairs.loc[pairs["status"] == "matched", "distance_gap_m"].abs().max() < 0.2
