"""Corrosion growth between two in-line inspection runs: weld alignment, feature matching, rates, remaining life.

The steps, each a plain function on the canonical feature frames of `twin.integrity.ili`:

1. `match_welds` / `align_to`: the girth welds of the two runs are paired (by their numbers when
   both vendors number them alike, otherwise by the sequence of joint lengths, which is the pipe's
   fingerprint), and the later run's log distance is mapped piecewise-linearly through the paired
   welds onto the reference run's odometer. When too few welds pair up, the runs are aligned by
   their marker-based chainage instead, and the alignment says so.
2. `match_features`: metal-loss features of the two runs are paired one to one by
   `scipy.optimize.linear_sum_assignment` on a cost of the aligned axial gap, the circular clock
   gap and the dissimilarity of depth and length, within gates; a feature of the new run that
   pairs with nothing is ``new``, one of the old run that pairs with nothing is ``missing`` (not
   reported by the new run: below its threshold, repaired, or mis-sized).
3. `growth_rates`: per matched feature, the depth rate (m/year) with its 1-sigma from both runs'
   depth sizing error, and the length rate; a negative measured rate stays in the data, marked.
4. `segment_growth`: per segment of the line, the count, mean and upper rate of its features.
5. `feature_rates`: the rate each feature of the new run is projected with (its own, its segment's
   upper rate, or the half-life rate), and `remaining_life_years`: years until the depth reaches
   80 % of the wall or the safe pressure falls to the MAOP.

Example::

    study = study_growth(old_run, new_run)
    study.segments[["segment", "count", "mean_rate_m_per_year", "upper_rate_m_per_year"]]
    rates = feature_rates(assessed, study, age_years=30.0)
    life = remaining_life_years(assessed, rates, pipes, maop_pa, AssessmentSettings())
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pumptwin.twin.integrity.assessment import AssessmentSettings, IntegrityError, critical_depth_frac

if TYPE_CHECKING:
    from pumptwin.twin.integrity.ili import IliRun
    from pumptwin.twin.integrity.pipe import PipeProperties

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]

DAYS_PER_YEAR = 365.25
"""Days of a year in rates per year."""
METAL_LOSS = "metal_loss"
"""Feature type of corrosion (the only one that grows)."""
WELD_TOLERANCE_M = 0.3
"""Absolute part of the tolerance on a distance between two welds of both runs, m."""
WELD_TOLERANCE_FRAC = 0.005
"""Relative part of that tolerance (odometer scale errors of a few per mille)."""
WELD_MAX_SKIP = 3
"""Most consecutive welds one run may lack between two paired welds."""
WELD_MIN_PAIRS = 3
"""Fewest paired welds an alignment by welds needs."""
WELD_MIN_SHARE = 0.5
"""Least share of the run's welds that must pair up for an alignment by welds."""
WELD_NUMBER_AGREEMENT = 0.9
"""Least share of joints whose lengths agree for the weld numbers of two runs to count as the same numbering."""
MAX_SCALE_ERROR = 0.1
"""Largest odometer scale difference between two runs taken from their spans; beyond it 1 is assumed."""
ANCHOR_LOOKAHEAD = 8
"""Welds walked ahead to score a candidate first pair of welds."""
ANCHOR_SEARCH_M = 60.0
"""How far apart (coarse position) a candidate first pair of welds may be, m."""
Z90 = 1.6448536269514722
"""One-sided 95 % quantile of the standard normal (the upper rate of a segment is mean + Z90 sd)."""
CHAINAGE_TOLERANCE_M = 2.0
"""How far the marker-based chainages of two paired welds may disagree (beyond their median), m."""
CRITICAL_DEPTH_FRAC = 0.8
"""Depth, as a fraction of the wall, at which a feature's life ends whatever its pressure."""
LIFE_CAP_YEARS = 100.0
"""Remaining life reported for a feature that does not grow (or grows too slowly to matter), years."""
BISECTION_STEPS = 60
"""Bisection steps of the safe-pressure limit in `remaining_life_years` (resolution cap / 2**60)."""
SIZE_DEPTH_SCALE_FRAC = 0.2
"""Depth change (fraction of wall) that costs as much as a full axial gate in `match_features`."""
REFINE_GATE_FACTOR = 4.0
"""Without girth welds, features are first matched within this many times the axial gate to refine the alignment."""
REFINE_WINDOW = 5
"""Matched features in the running median of the refinement's gaps."""
TREND_SEARCH_M = 20.0
"""Fixed part of the window in which feature pairs vote for the trend of the alignment error, m."""
TREND_SCALE_MAX = 0.01
"""Largest scale error between the runs' positions the trend looks for (1 %)."""
TREND_SCALE_STEP = 5e-5
"""Step of the scale errors tried."""
TREND_BIN_M = 1.0
"""Width of the offset bins the feature pairs vote in, m."""
SURFACE_MISMATCH_COST = 0.5
"""Cost added to a pair whose features lie on different surfaces (internal against external)."""

MATCH_COLUMNS = ["feature_id_old", "feature_id_new", "status", "distance_gap_m", "clock_gap_h", "cost"]
"""Columns of `match_features`."""
RATE_COLUMNS = [
    "feature_id",
    "feature_id_old",
    "feature_id_new",
    "chainage_m",
    "aligned_m",
    "clock_h",
    "wall_m",
    "depth_old_m",
    "depth_new_m",
    "length_old_m",
    "length_new_m",
    "years",
    "depth_rate_m_per_year",
    "depth_rate_sd_m_per_year",
    "length_rate_m_per_year",
    "length_rate_sd_m_per_year",
    "negative_rate",
]
"""Columns of `growth_rates`."""
SEGMENT_COLUMNS = [
    "segment",
    "start_m",
    "end_m",
    "count",
    "mean_rate_m_per_year",
    "spread_m_per_year",
    "measurement_sd_m_per_year",
    "sd_mean_m_per_year",
    "upper_rate_m_per_year",
    "mean_length_rate_m_per_year",
    "negative_count",
]
"""Columns of `segment_growth`."""
FEATURE_RATE_COLUMNS = ["feature_id", "depth_rate_m_per_year", "length_rate_m_per_year", "rate_basis"]
"""Columns of `feature_rates`."""
LIFE_COLUMNS = [
    "feature_id",
    "remaining_life_years",
    "limit",
    "depth_rate_m_per_year",
    "length_rate_m_per_year",
    "rate_basis",
]
"""Columns of `remaining_life_years`."""


@dataclass(frozen=True)
class WeldMatch:
    """Girth welds of a run paired with those of a reference run.

    Attributes:
        pairs: One row per paired weld: ``log_ref_m``, ``log_run_m`` (odometer distances, m),
            ``weld_ref``, ``weld_run`` (numbers), sorted along the line.
        method: ``numbers`` (same numbering), ``joints`` (sequence of joint lengths) or ``none``.
        note: One sentence on how the welds were paired (or why they were not).
    """

    pairs: pd.DataFrame
    method: str
    note: str


@dataclass(frozen=True)
class GrowthStudy:
    """Growth between two runs of the same line.

    Attributes:
        old_run_id: The earlier run.
        new_run_id: The later run.
        years: Time between the runs, years.
        alignment: How the later run was aligned on the earlier one (one sentence).
        pairs: `match_features` of the two runs (matched, new and missing features).
        rates: `growth_rates` of the matched features.
        segments: `segment_growth` of the rates.
        segment_m: Length of the segments, m.
    """

    old_run_id: str
    new_run_id: str
    years: float
    alignment: str
    pairs: pd.DataFrame
    rates: pd.DataFrame
    segments: pd.DataFrame
    segment_m: float

    def count(self, status: str) -> int:
        """How many features have ``status`` (``matched``, ``new`` or ``missing``)."""
        return int((self.pairs["status"] == status).sum())


def _tolerance_m(distance_m: FloatArray | float) -> FloatArray:
    """Tolerance on a distance between welds measured by two runs, m."""
    return WELD_TOLERANCE_M + WELD_TOLERANCE_FRAC * np.abs(np.asarray(distance_m, dtype=np.float64))


def _sorted_welds(welds: pd.DataFrame) -> pd.DataFrame:
    """Welds with a finite log distance, along the line."""
    out = welds.loc[np.isfinite(welds["log_distance_m"].to_numpy(dtype=np.float64))]
    return out.sort_values("log_distance_m", kind="stable").reset_index(drop=True)


def _pairs_frame(
    ref: pd.DataFrame, run: pd.DataFrame, i: list[int] | FloatArray, j: list[int] | FloatArray
) -> pd.DataFrame:
    ii, jj = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    return pd.DataFrame(
        {
            "log_ref_m": ref["log_distance_m"].to_numpy(dtype=np.float64)[ii],
            "log_run_m": run["log_distance_m"].to_numpy(dtype=np.float64)[jj],
            "weld_ref": ref["weld_number"].to_numpy(dtype=np.float64)[ii],
            "weld_run": run["weld_number"].to_numpy(dtype=np.float64)[jj],
            "i_ref": ii,
            "i_run": jj,
        }
    )


def _by_numbers(ref: pd.DataFrame, run: pd.DataFrame) -> pd.DataFrame | None:
    """Pairs of welds with the same number, when the joint lengths between them agree; else None."""
    if "weld_number" not in ref or "weld_number" not in run:
        return None
    a = ref.assign(i=np.arange(len(ref))).dropna(subset=["weld_number"]).drop_duplicates("weld_number", keep=False)
    b = run.assign(i=np.arange(len(run))).dropna(subset=["weld_number"]).drop_duplicates("weld_number", keep=False)
    common = a.merge(b, on="weld_number", suffixes=("_ref", "_run")).sort_values("log_distance_m_ref")
    if len(common) < WELD_MIN_PAIRS or len(common) < WELD_MIN_SHARE * len(run):
        return None
    d_ref = np.diff(common["log_distance_m_ref"].to_numpy(dtype=np.float64))
    d_run = np.diff(common["log_distance_m_run"].to_numpy(dtype=np.float64))
    if np.any(d_run <= 0):
        return None
    agree = np.abs(d_ref - d_run) <= _tolerance_m(d_ref)
    if agree.mean() < WELD_NUMBER_AGREEMENT:
        return None
    return pd.DataFrame(
        {
            "log_ref_m": common["log_distance_m_ref"].to_numpy(dtype=np.float64),
            "log_run_m": common["log_distance_m_run"].to_numpy(dtype=np.float64),
            "weld_ref": common["weld_number"].to_numpy(dtype=np.float64),
            "weld_run": common["weld_number"].to_numpy(dtype=np.float64),
            "i_ref": common["i_ref"].to_numpy(dtype=np.int64),
            "i_run": common["i_run"].to_numpy(dtype=np.int64),
        }
    ).reset_index(drop=True)


def _coarse(welds: pd.DataFrame, use_chainage: bool) -> FloatArray:
    column = "chainage_m" if use_chainage else "log_distance_m"
    out: FloatArray = welds[column].to_numpy(dtype=np.float64)
    return out


def _step(x_ref: FloatArray, x_run: FloatArray, i: int, j: int, scale: float) -> tuple[int, int] | None:
    """The next pair of welds after the pair (i, j): fewest welds skipped, then smallest misfit."""
    best: tuple[float, int, int] | None = None
    for total in range(2, 2 * WELD_MAX_SKIP + 1):
        for a in range(1, total):
            b = total - a
            if a > WELD_MAX_SKIP or b > WELD_MAX_SKIP or i + a >= len(x_ref) or j + b >= len(x_run):
                continue
            d_ref = x_ref[i + a] - x_ref[i]
            misfit = abs(d_ref - (x_run[j + b] - x_run[j]) * scale)
            if misfit <= float(_tolerance_m(d_ref)) and (best is None or misfit < best[0]):
                best = (misfit, i + a, j + b)
        if best is not None:
            return best[1], best[2]
    return None


def _walk(
    x_ref: FloatArray, x_run: FloatArray, i: int, j: int, scale: float, limit: int | None = None
) -> list[tuple[int, int]]:
    """Pairs of welds from the pair (i, j) on, as long as the joint lengths keep agreeing."""
    out = [(i, j)]
    while limit is None or len(out) <= limit:
        nxt = _step(x_ref, x_run, out[-1][0], out[-1][1], scale)
        if nxt is None:
            break
        out.append(nxt)
        if limit is None and len(out) > ANCHOR_LOOKAHEAD:
            k = max(0, len(out) - 50)
            span_run = x_run[out[-1][1]] - x_run[out[k][1]]
            if span_run > 0:
                scale = (x_ref[out[-1][0]] - x_ref[out[k][0]]) / span_run
    return out


def _anchor(
    x_ref: FloatArray, x_run: FloatArray, c_ref: FloatArray, c_run: FloatArray, start: int, scale: float
) -> tuple[int, int] | None:
    """The first pair of welds at or after ref weld ``start``: the longest run of agreeing joints ahead."""
    best: tuple[int, float, int, int] | None = None
    for i in range(start, min(start + 4 * ANCHOR_LOOKAHEAD, len(x_ref))):
        near = np.flatnonzero(np.abs(c_run - c_ref[i]) <= ANCHOR_SEARCH_M)
        for j in near:
            score = len(_walk(x_ref, x_run, i, int(j), scale, ANCHOR_LOOKAHEAD))
            gap = abs(float(c_run[j] - c_ref[i]))
            if best is None or (score, -gap) > (best[0], -best[1]):
                best = (score, gap, i, int(j))
        if best is not None and best[0] > ANCHOR_LOOKAHEAD:
            break
    if best is None or best[0] < WELD_MIN_PAIRS:
        return None
    return best[2], best[3]


def _by_joints(ref: pd.DataFrame, run: pd.DataFrame) -> pd.DataFrame:
    """Pairs of welds found by walking both runs' joint lengths from a matching start."""
    x_ref, x_run = ref["log_distance_m"].to_numpy(dtype=np.float64), run["log_distance_m"].to_numpy(dtype=np.float64)
    use_chainage = bool(
        "chainage_m" in ref
        and "chainage_m" in run
        and np.isfinite(ref["chainage_m"].to_numpy(dtype=np.float64)).all()
        and np.isfinite(run["chainage_m"].to_numpy(dtype=np.float64)).all()
    )
    c_ref, c_run = _coarse(ref, use_chainage), _coarse(run, use_chainage)
    span_run = x_run[-1] - x_run[0] if len(x_run) > 1 else 0.0
    scale = (x_ref[-1] - x_ref[0]) / span_run if span_run > 0 and len(x_ref) > 1 else 1.0
    if not (1.0 - MAX_SCALE_ERROR < scale < 1.0 + MAX_SCALE_ERROR):
        scale = 1.0
    pairs: list[tuple[int, int]] = []
    start = 0
    while start < len(x_ref):
        anchor = _anchor(x_ref, x_run, c_ref, c_run, start, scale)
        if anchor is None:
            start += 4 * ANCHOR_LOOKAHEAD
            continue
        if pairs and anchor[1] <= pairs[-1][1]:
            start = anchor[0] + 1
            continue
        walked = _walk(x_ref, x_run, anchor[0], anchor[1], scale)
        pairs.extend(walked)
        start = walked[-1][0] + 1
    if not pairs:
        return _pairs_frame(ref, run, [], [])
    i, j = zip(*pairs, strict=True)
    return _pairs_frame(ref, run, list(i), list(j))


def match_welds(reference: pd.DataFrame, run: pd.DataFrame) -> WeldMatch:
    """Pair the girth welds of a run with those of a reference run.

    Welds pair by number when both runs number them alike (at least `WELD_NUMBER_AGREEMENT` of
    the joints between common numbers agree in length within `WELD_TOLERANCE_M` +
    `WELD_TOLERANCE_FRAC` of their length); otherwise by walking both sequences of joint lengths
    from a start where they agree, allowing up to `WELD_MAX_SKIP` welds missed by either run and
    following the odometer scale between the runs.

    Args:
        reference: The reference run's welds (``weld_number``, ``log_distance_m``, ``chainage_m``).
        run: The other run's welds, same columns.

    Returns:
        The paired welds, the method and a note; method ``none`` with fewer than `WELD_MIN_PAIRS`
        pairs or fewer than `WELD_MIN_SHARE` of the run's welds paired.
    """
    ref, other = _sorted_welds(reference), _sorted_welds(run)
    if len(ref) < WELD_MIN_PAIRS or len(other) < WELD_MIN_PAIRS:
        return WeldMatch(
            _pairs_frame(ref, other, [], []),
            "none",
            f"too few girth welds to align ({len(ref)} in the reference run, {len(other)} in this run)",
        )
    numbered = _by_numbers(ref, other)
    if numbered is not None and not _chainage_disagrees(ref, other, numbered):
        return WeldMatch(numbered, "numbers", f"{len(numbered)} of {len(other)} girth welds paired by weld number")
    walked = _by_joints(ref, other)
    if len(walked) < WELD_MIN_PAIRS or len(walked) < WELD_MIN_SHARE * len(other):
        return WeldMatch(
            walked,
            "none",
            f"only {len(walked)} of {len(other)} girth welds paired by joint length (numbers differ)",
        )
    steps = _one_to_one_share(walked)
    if steps < WELD_NUMBER_AGREEMENT:
        return WeldMatch(
            walked.iloc[:0],
            "none",
            f"the joint lengths of the two runs do not agree (only {100 * steps:.0f} % of paired welds are "
            f"consecutive in both runs): the girth welds are not the same",
        )
    off = _chainage_disagrees(ref, other, walked)
    if off:
        return WeldMatch(walked.iloc[:0], "none", f"girth welds paired by joint length disagree with{off}")
    return WeldMatch(
        walked, "joints", f"{len(walked)} of {len(other)} girth welds paired by the sequence of joint lengths"
    )


def _one_to_one_share(pairs: pd.DataFrame) -> float:
    """Share of steps between paired welds that skip no weld in either run (real pairings: nearly all)."""
    if len(pairs) < 2:  # noqa: PLR2004 - a step needs two pairs
        return 0.0
    i, j = pairs["i_ref"].to_numpy(), pairs["i_run"].to_numpy()
    return float(np.mean((np.diff(i) == 1) & (np.diff(j) == 1)))


def _chainage_disagrees(ref: pd.DataFrame, run: pd.DataFrame, pairs: pd.DataFrame | None) -> str:
    """A phrase when the paired welds' marker-based chainages disagree, else ""."""
    if pairs is None or len(pairs) < WELD_MIN_PAIRS or "i_ref" not in pairs:
        return ""
    c_ref = ref["chainage_m"].to_numpy(dtype=np.float64)[pairs["i_ref"].to_numpy()]
    c_run = run["chainage_m"].to_numpy(dtype=np.float64)[pairs["i_run"].to_numpy()]
    r = c_run - c_ref
    r = r[np.isfinite(r)]
    if len(r) < WELD_MIN_PAIRS:
        return ""
    within = np.abs(r - np.median(r)) <= CHAINAGE_TOLERANCE_M
    if within.mean() >= WELD_NUMBER_AGREEMENT:
        return ""
    return (
        f" the marker-based chainage ({100 * (1 - within.mean()):.0f} % of pairs more than "
        f"{CHAINAGE_TOLERANCE_M:g} m apart)"
    )


def map_distance(log_m: FloatArray, pairs: pd.DataFrame) -> FloatArray:
    """Map a run's log distances onto the reference odometer, piecewise linear through paired welds.

    Beyond the first and last paired weld the mapping goes on with the slope of the whole span.

    Args:
        log_m: The run's log distances, m.
        pairs: Paired welds (``log_run_m``, ``log_ref_m``, increasing).

    Returns:
        The distances on the reference run's odometer, m.
    """
    x = pairs["log_run_m"].to_numpy(dtype=np.float64)
    y = pairs["log_ref_m"].to_numpy(dtype=np.float64)
    log = np.asarray(log_m, dtype=np.float64)
    slope = (y[-1] - y[0]) / (x[-1] - x[0]) if len(x) > 1 and x[-1] > x[0] else 1.0
    out = np.interp(log, x, y)
    out = np.where(log < x[0], y[0] + (log - x[0]) * slope, out)
    mapped: FloatArray = np.where(log > x[-1], y[-1] + (log - x[-1]) * slope, out)
    return mapped


def _by_chainage(reference: IliRun, run: IliRun) -> tuple[FloatArray, str]:
    """A run's features on the reference odometer through both runs' marker-based chainage."""
    known = pd.concat(
        [reference.welds[["chainage_m", "log_distance_m"]], reference.features[["chainage_m", "log_distance_m"]]]
    )
    known = known.loc[np.isfinite(known.to_numpy(dtype=np.float64)).all(axis=1)].sort_values("chainage_m")
    chainage = run.features["chainage_m"].to_numpy(dtype=np.float64)
    if len(known) < WELD_MIN_PAIRS or not np.isfinite(chainage).all():
        return run.features["log_distance_m"].to_numpy(dtype=np.float64), "not aligned: log distance used as is"
    pairs = pd.DataFrame({"log_run_m": known["chainage_m"].to_numpy(), "log_ref_m": known["log_distance_m"].to_numpy()})
    pairs = pairs.drop_duplicates("log_run_m")
    return map_distance(chainage, pairs), "aligned by the marker-based chainage"


def align_to(reference: IliRun, run: IliRun) -> pd.DataFrame:
    """A run's features with ``aligned_m``, their distance on the reference run's odometer.

    Through paired girth welds (`match_welds`, `map_distance`); when the welds cannot be paired,
    through both runs' marker-based chainage (``chainage_m``), and when that is missing too the
    run's own log distance. How it was done is in ``attrs["alignment"]`` (one sentence) and in the
    column ``alignment`` (``numbers``, ``joints``, ``chainage`` or ``none``).

    Args:
        reference: The run whose odometer is the reference (the older run, usually).
        run: The run to align.

    Returns:
        A copy of ``run.features`` with ``aligned_m`` (m) and ``alignment``.
    """
    welds = match_welds(reference.welds, run.welds)
    out = run.features.copy()
    if welds.method != "none":
        out["aligned_m"] = map_distance(out["log_distance_m"].to_numpy(dtype=np.float64), welds.pairs)
        method, note = welds.method, welds.note
    else:
        out["aligned_m"], how = _by_chainage(reference, run)
        method = "chainage" if how.startswith("aligned") else "none"
        note = f"{welds.note}; {how}"
    out["alignment"] = method
    out.attrs["alignment"] = note
    return out


def _circular_gap_h(a: FloatArray, b: FloatArray) -> FloatArray:
    """Shortest gap between clock positions, h (0..6)."""
    d = np.mod(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), 12.0)
    return np.minimum(d, 12.0 - d)


def _only(features: pd.DataFrame, types: tuple[str, ...]) -> pd.DataFrame:
    keep = features["feature_type"].isin(types) if types else np.ones(len(features), dtype=bool)
    return features.loc[keep].reset_index(drop=True)


def match_features(
    old: IliRun,
    new: IliRun,
    *,
    max_distance_m: float = 0.5,
    max_clock_h: float = 1.0,
    max_depth_change_frac: float = 0.4,
    size_weight: float = 0.5,
    feature_types: tuple[str, ...] = (METAL_LOSS,),
) -> pd.DataFrame:
    """Pair the features of two runs one to one (new run aligned on the old run's odometer).

    The cost of a pair is ``(gap / max_distance_m)**2 + (clock gap / max_clock_h)**2 +
    size_weight * ((depth change / 0.2 wall)**2 + (log2 of the length ratio)**2)``, plus
    `SURFACE_MISMATCH_COST` when one is internal and the other external. A pair is a candidate
    only within the gates (axial gap <= ``max_distance_m``, clock gap <= ``max_clock_h``,
    depth change within +-``max_depth_change_frac`` of the wall); each group of features linked
    by candidates is assigned by `scipy.optimize.linear_sum_assignment` at least total cost.
    When the runs could not be aligned by girth welds, the alignment is first refined on the
    features themselves (`_refine`: the running median of the gaps of features matched within
    `REFINE_GATE_FACTOR` times the gate is taken off), and the note in ``attrs["alignment"]``
    says on how many.

    Args:
        old: The earlier run (its odometer is the reference).
        new: The later run.
        max_distance_m: Gate on the aligned axial gap, m.
        max_clock_h: Gate on the circular clock gap, h.
        max_depth_change_frac: Gate on the depth change, fraction of wall.
        size_weight: Weight of the size dissimilarity in the cost.
        feature_types: Feature types matched (empty: all).

    Returns:
        One row per feature: ``feature_id_old``, ``feature_id_new``, ``status`` (``matched``,
        ``new``: in the new run only, ``missing``: not reported by the new run), and for matched
        rows ``distance_gap_m`` (new minus old, m), ``clock_gap_h`` and ``cost`` (NaN otherwise).

    Raises:
        IntegrityError: A gate that is not a positive number.
    """
    for name, value in (("max_distance_m", max_distance_m), ("max_clock_h", max_clock_h)):
        if not (math.isfinite(value) and value > 0):
            raise IntegrityError(f"{name} must be a positive number, got {value}")
    a = _only(old.features, feature_types)
    b_all = align_to(old, new)
    b = _only(b_all, feature_types)
    pos_a = a["log_distance_m"].to_numpy(dtype=np.float64)
    pos_b = b["aligned_m"].to_numpy(dtype=np.float64)
    gates = (max_clock_h, max_depth_change_frac, size_weight)
    note = str(b_all.attrs.get("alignment", ""))
    if len(b) and not b["alignment"].isin(["numbers", "joints"]).all():
        pos_b, refined = _refine(a, b, pos_a, pos_b, max_distance_m, gates)
        note += f"; refined on {refined} features matched within {REFINE_GATE_FACTOR * max_distance_m:g} m"
    ia, jb, gap, clock, cost, chosen = _assign(a, b, pos_a, pos_b, max_distance_m, gates)
    pick = np.asarray(sorted(chosen), dtype=np.int64)
    matched = pd.DataFrame(
        {
            "feature_id_old": a["feature_id"].to_numpy()[ia[pick]],
            "feature_id_new": b["feature_id"].to_numpy()[jb[pick]],
            "status": "matched",
            "distance_gap_m": gap[pick],
            "clock_gap_h": clock[pick],
            "cost": cost[pick],
        }
    )
    taken_a, taken_b = set(ia[pick].tolist()), set(jb[pick].tolist())
    new_rows = pd.DataFrame(
        {"feature_id_new": [b["feature_id"].iloc[k] for k in range(len(b)) if k not in taken_b], "status": "new"}
    )
    missing = pd.DataFrame(
        {"feature_id_old": [a["feature_id"].iloc[k] for k in range(len(a)) if k not in taken_a], "status": "missing"}
    )
    out = pd.concat([matched, new_rows, missing], ignore_index=True)
    out.attrs["alignment"] = note
    return out.reindex(columns=MATCH_COLUMNS)


def _assign(
    a: pd.DataFrame,
    b: pd.DataFrame,
    pos_a: FloatArray,
    pos_b: FloatArray,
    max_distance_m: float,
    gates: tuple[float, float, float],
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Gated candidate pairs and the least-cost one-to-one assignment among them.

    Returns:
        Candidate old and new row indices, axial gaps (m), clock gaps (h), costs, and the
        indices of the candidates chosen.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    max_clock_h, max_depth_change_frac, size_weight = gates
    ia, jb = _candidates(pos_a, pos_b, max_distance_m)
    gap = pos_b[jb] - pos_a[ia]
    clock = _circular_gap_h(b["clock_h"].to_numpy(dtype=np.float64)[jb], a["clock_h"].to_numpy(dtype=np.float64)[ia])
    depth_change = _depth_frac(b)[jb] - _depth_frac(a)[ia]
    ratio = np.log2(
        np.maximum(b["length_m"].to_numpy(dtype=np.float64)[jb], 1e-4)
        / np.maximum(a["length_m"].to_numpy(dtype=np.float64)[ia], 1e-4)
    )
    depth_term = np.where(np.isfinite(depth_change), depth_change / SIZE_DEPTH_SCALE_FRAC, 0.0)
    size = np.where(np.isfinite(ratio), ratio, 0.0) ** 2 + depth_term**2
    surf_a, surf_b = a["surface"].astype(str).to_numpy()[ia], b["surface"].astype(str).to_numpy()[jb]
    mismatch = (surf_a != surf_b) & (surf_a != "") & (surf_b != "")
    cost = (gap / max_distance_m) ** 2 + (clock / max_clock_h) ** 2 + size_weight * size
    cost = cost + SURFACE_MISMATCH_COST * mismatch
    gate = (
        (np.abs(gap) <= max_distance_m)
        & (clock <= max_clock_h)
        & ~(np.abs(np.where(np.isfinite(depth_change), depth_change, 0.0)) > max_depth_change_frac)
    )
    ia, jb, gap, clock, cost = ia[gate], jb[gate], gap[gate], clock[gate], cost[gate]
    chosen: list[int] = []
    if len(ia):
        graph = coo_matrix((np.ones(len(ia)), (ia, len(a) + jb)), shape=(len(a) + len(b),) * 2)
        _, label = connected_components(graph, directed=False)
        by_comp = pd.Series(np.arange(len(ia))).groupby(label[ia]).indices
        for edges in by_comp.values():
            if len(edges) == 1:
                chosen.append(int(edges[0]))
                continue
            rows, row_of = np.unique(ia[edges], return_inverse=True)
            cols, col_of = np.unique(jb[edges], return_inverse=True)
            dense = np.full((len(rows), len(cols)), float(cost[edges].max()) * 10.0 + 1e6)
            dense[row_of, col_of] = cost[edges]
            edge_at = np.full((len(rows), len(cols)), -1, dtype=np.int64)
            edge_at[row_of, col_of] = edges
            r, c = linear_sum_assignment(dense)
            chosen.extend(int(edge_at[x, y]) for x, y in zip(r, c, strict=True) if edge_at[x, y] >= 0)
    picked: IntArray = np.asarray(sorted(chosen), dtype=np.int64)
    return ia, jb, gap, clock, np.asarray(cost, dtype=np.float64), picked


def _candidates(pos_a: FloatArray, pos_b: FloatArray, window_m: float | FloatArray) -> tuple[IntArray, IntArray]:
    """Every pair (old row, new row) whose positions lie within ``window_m`` of each other."""
    order = np.argsort(pos_a, kind="stable")
    sorted_a = pos_a[order]
    lo = np.searchsorted(sorted_a, pos_b - window_m, side="left")
    hi = np.searchsorted(sorted_a, pos_b + window_m, side="right")
    counts = np.maximum(hi - lo, 0)
    jb = np.repeat(np.arange(len(pos_b)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ia: IntArray = order[np.repeat(lo, counts) + offsets] if len(jb) else np.zeros(0, dtype=np.int64)
    return ia, jb.astype(np.int64)


def _trend(a: pd.DataFrame, b: pd.DataFrame, pos_a: FloatArray, pos_b: FloatArray, max_clock_h: float) -> FloatArray:
    """The new run's positions less the straight line (offset and scale error) most feature pairs agree on.

    Every pair within `TREND_SEARCH_M` + `TREND_SCALE_MAX` of the distance and within the clock
    gate votes for the offsets it implies at each trial scale error (steps of `TREND_SCALE_STEP`
    up to +-`TREND_SCALE_MAX`), in bins of `TREND_BIN_M`; the line fitted (least squares) through
    the pairs of the bin with the most votes is taken off, when at least `WELD_MIN_PAIRS` pairs
    agree on it.
    """
    if len(pos_a) == 0 or len(pos_b) == 0:
        return pos_b
    x0 = float(np.min(pos_a))
    ia, jb = _candidates(pos_a, pos_b, TREND_SEARCH_M + TREND_SCALE_MAX * np.abs(pos_b - x0))
    clock = _circular_gap_h(b["clock_h"].to_numpy(dtype=np.float64)[jb], a["clock_h"].to_numpy(dtype=np.float64)[ia])
    keep = clock <= max_clock_h
    x, g = pos_a[ia[keep]] - x0, pos_b[jb[keep]] - pos_a[ia[keep]]
    if len(x) < WELD_MIN_PAIRS:
        return pos_b
    best: tuple[int, FloatArray] = (0, np.zeros(0, dtype=bool))
    for beta in np.arange(-TREND_SCALE_MAX, TREND_SCALE_MAX + TREND_SCALE_STEP / 2, TREND_SCALE_STEP):
        bins = np.round((g - beta * x) / TREND_BIN_M).astype(np.int64)
        low = int(bins.min())
        counts = np.bincount(bins - low)
        k = int(np.argmax(counts))
        if counts[k] > best[0]:
            best = (int(counts[k]), bins == k + low)
    votes, voters = best
    if votes < WELD_MIN_PAIRS:
        return pos_b
    xs, gs = x[voters], g[voters]
    beta, alpha = np.polyfit(xs, gs, 1) if np.ptp(xs) > 0 else (0.0, float(np.mean(gs)))
    return pos_b - (alpha + beta * (pos_b - x0)) / (1.0 + beta)


def _refine(
    a: pd.DataFrame,
    b: pd.DataFrame,
    pos_a: FloatArray,
    pos_b: FloatArray,
    max_distance_m: float,
    gates: tuple[float, float, float],
) -> tuple[FloatArray, int]:
    """Correct an alignment without girth welds by the features themselves.

    The straight line most feature pairs agree on is taken off first (`_trend`: an odometer
    scale error the markers left, with one marker or none). Features are then matched within
    `REFINE_GATE_FACTOR` x ``max_distance_m``; the running median of their axial gaps (over
    `REFINE_WINDOW` neighbours along the line), interpolated along the line, is taken off the new
    run's positions (the odometer error left between markers). With fewer than `WELD_MIN_PAIRS`
    such matches the positions stay as they are.

    Returns:
        The corrected positions (m) and the number of features they rest on.
    """
    pos_b = _trend(a, b, pos_a, pos_b, gates[0])
    ia, jb, gap, _, _, chosen = _assign(a, b, pos_a, pos_b, REFINE_GATE_FACTOR * max_distance_m, gates)
    if len(chosen) < WELD_MIN_PAIRS:
        return pos_b, 0
    x = pos_b[jb[chosen]]
    order = np.argsort(x, kind="stable")
    smooth = pd.Series(gap[chosen][order]).rolling(REFINE_WINDOW, center=True, min_periods=1).median()
    return pos_b - np.interp(pos_b, x[order], smooth.to_numpy(dtype=np.float64)), len(chosen)


def _depth_frac(features: pd.DataFrame) -> FloatArray:
    out: FloatArray = features["depth_frac"].to_numpy(dtype=np.float64)
    return out


def years_between(old: IliRun, new: IliRun) -> float:
    """Time from the old run to the new one, years.

    Raises:
        IntegrityError: When the new run is not later than the old one.
    """
    years = (pd.Timestamp(new.date) - pd.Timestamp(old.date)) / pd.Timedelta(days=DAYS_PER_YEAR)
    if not years > 0:
        raise IntegrityError(
            f"run {new.run_id!r} ({new.date}) is not later than run {old.run_id!r} ({old.date}): no growth interval"
        )
    return float(years)


def growth_rates(old: IliRun, new: IliRun, pairs: pd.DataFrame) -> pd.DataFrame:
    """Depth and length growth rate of every matched feature between two runs.

    Depth rate ``(d_new - d_old) / years`` with d = depth fraction x wall, m; its 1-sigma
    ``sqrt((sd_old wall_old)**2 + (sd_new wall_new)**2) / years`` from both runs'
    ``depth_sd_frac``; the length rate and its 1-sigma alike from ``length_sd_m``. A negative
    measured rate (sizing noise on a slow feature) is kept as measured and marked in
    ``negative_rate``.

    Args:
        old: The earlier run.
        new: The later run.
        pairs: `match_features` of the two runs (only ``matched`` rows are used).

    Returns:
        One row per matched feature with `RATE_COLUMNS` (``feature_id`` is the new run's id;
        ``chainage_m``, ``clock_h`` and ``wall_m`` are the new run's; ``aligned_m`` the new
        feature on the old odometer).

    Raises:
        IntegrityError: When the new run is not later than the old one.
    """
    years = years_between(old, new)
    matched = pairs.loc[pairs["status"] == "matched", ["feature_id_old", "feature_id_new"]]
    a = old.features.set_index("feature_id")
    b = align_to(old, new).set_index("feature_id")
    fa, fb = a.loc[matched["feature_id_old"]], b.loc[matched["feature_id_new"]]
    wall_old, wall_new = fa["wall_m"].to_numpy(dtype=np.float64), fb["wall_m"].to_numpy(dtype=np.float64)
    d_old = fa["depth_frac"].to_numpy(dtype=np.float64) * wall_old
    d_new = fb["depth_frac"].to_numpy(dtype=np.float64) * wall_new
    l_old, l_new = fa["length_m"].to_numpy(dtype=np.float64), fb["length_m"].to_numpy(dtype=np.float64)
    rate = (d_new - d_old) / years
    rate_sd = np.hypot(old.depth_sd_frac * wall_old, new.depth_sd_frac * wall_new) / years
    out = pd.DataFrame(
        {
            "feature_id": matched["feature_id_new"].to_numpy(),
            "feature_id_old": matched["feature_id_old"].to_numpy(),
            "feature_id_new": matched["feature_id_new"].to_numpy(),
            "chainage_m": fb["chainage_m"].to_numpy(dtype=np.float64),
            "aligned_m": fb["aligned_m"].to_numpy(dtype=np.float64),
            "clock_h": fb["clock_h"].to_numpy(dtype=np.float64),
            "wall_m": wall_new,
            "depth_old_m": d_old,
            "depth_new_m": d_new,
            "length_old_m": l_old,
            "length_new_m": l_new,
            "years": years,
            "depth_rate_m_per_year": rate,
            "depth_rate_sd_m_per_year": rate_sd,
            "length_rate_m_per_year": (l_new - l_old) / years,
            "length_rate_sd_m_per_year": math.hypot(old.length_sd_m, new.length_sd_m) / years,
            "negative_rate": rate < 0,
        }
    )
    return out.reindex(columns=RATE_COLUMNS)


def segment_of(chainage_m: FloatArray | pd.Series, segment_m: float) -> FloatArray:
    """Segment number (0-based, floor of chainage / segment length) of each chainage; -1 where unknown."""
    c = np.asarray(chainage_m, dtype=np.float64)
    seg = np.floor(np.where(np.isfinite(c), c, -segment_m) / segment_m)
    return np.where(np.isfinite(c), seg, -1).astype(np.int64)


def segment_growth(rates: pd.DataFrame, segment_m: float = 1000.0) -> pd.DataFrame:
    """Depth growth per segment of the line: count, mean rate and an upper rate.

    For the n matched features of a segment with measured rates r_i and measurement sds s_i:
    the mean rate m = mean(r_i) (negative measured rates included: they are noise about a small
    true rate); the spread S = sample sd of r_i (0 with one feature); the measurement sd
    sigma = sqrt(mean(s_i**2)). The observed spread already holds the measurement noise, but from
    few features it is a poor estimate, so the variance of a feature's rate is taken as
    max(S**2, sigma**2) and the sd of the mean as ``sqrt(max(S**2, sigma**2) / n)``. The upper
    rate is ``max(0, m + 1.645 x sd of the mean)``: a one-sided 95 % bound on the segment's mean rate.

    Args:
        rates: `growth_rates` (``chainage_m``, ``depth_rate_m_per_year``, its sd, the length rate).
        segment_m: Length of a segment, m (segment k covers [k segment_m, (k+1) segment_m)).

    Returns:
        One row per segment holding a matched feature, with `SEGMENT_COLUMNS`.

    Raises:
        IntegrityError: A segment length that is not a positive number.
    """
    if not (math.isfinite(segment_m) and segment_m > 0):
        raise IntegrityError(f"segment_m must be a positive number of metres, got {segment_m}")
    frame = rates.loc[np.isfinite(rates["depth_rate_m_per_year"].to_numpy(dtype=np.float64))].copy()
    frame["segment"] = segment_of(frame["chainage_m"], segment_m)
    frame["var_meas"] = frame["depth_rate_sd_m_per_year"].to_numpy(dtype=np.float64) ** 2
    g = frame.groupby("segment", sort=True)
    out = pd.DataFrame(
        {
            "count": g.size(),
            "mean_rate_m_per_year": g["depth_rate_m_per_year"].mean(),
            "spread_m_per_year": g["depth_rate_m_per_year"].std(ddof=1).fillna(0.0),
            "measurement_sd_m_per_year": np.sqrt(g["var_meas"].mean()),
            "mean_length_rate_m_per_year": g["length_rate_m_per_year"].mean(),
            "negative_count": g["negative_rate"].sum().astype(np.int64),
        }
    ).reset_index()
    var = np.maximum(out["spread_m_per_year"] ** 2, out["measurement_sd_m_per_year"] ** 2)
    out["sd_mean_m_per_year"] = np.sqrt(var / out["count"])
    out["upper_rate_m_per_year"] = np.maximum(0.0, out["mean_rate_m_per_year"] + Z90 * out["sd_mean_m_per_year"])
    out["start_m"] = out["segment"] * segment_m
    out["end_m"] = out["start_m"] + segment_m
    return out.reindex(columns=SEGMENT_COLUMNS)


def study_growth(old: IliRun, new: IliRun, *, segment_m: float = 1000.0, **match: Any) -> GrowthStudy:  # noqa: ANN401
    """Align, match, rate and segment two runs in one go.

    Args:
        old: The earlier run.
        new: The later run.
        segment_m: Segment length of `segment_growth`, m.
        **match: Keyword arguments of `match_features`.

    Returns:
        The growth study of the two runs.

    Raises:
        IntegrityError: When the new run is not later than the old one, or a bad gate.
    """
    years = years_between(old, new)
    pairs = match_features(old, new, **match)
    rates = growth_rates(old, new, pairs)
    return GrowthStudy(
        old_run_id=old.run_id,
        new_run_id=new.run_id,
        years=years,
        alignment=str(pairs.attrs.get("alignment", "")),
        pairs=pairs,
        rates=rates,
        segments=segment_growth(rates, segment_m),
        segment_m=segment_m,
    )


def feature_rates(
    features: pd.DataFrame,
    study: GrowthStudy | None,
    *,
    age_years: float,
) -> pd.DataFrame:
    """The rates each metal-loss feature of the latest run is projected with, and why.

    - A matched feature with a depth rate > 0: its own measured rates (``measured``).
    - A matched feature with a measured depth rate of 0 or less (sizing noise on a slow feature;
      vendors report whole per cent of wall, so an unchanged depth is common), and a feature
      without a match (new in the latest run, or any feature when there is only one run): its
      segment's upper depth rate and mean length rate (>= 0) (``segment upper``), when the
      segment has matched features;
    - otherwise the half-life rate: corrosion assumed to have started half-way through the pipe's
      life, depth rate = depth / (age / 2), length rate = length / (age / 2) (``half-life``).

    Args:
        features: The latest run's features (``feature_id``, ``chainage_m``, ``depth_frac``,
            ``wall_m``, ``length_m``, ``feature_type``).
        study: The growth study ending at that run (None with one run).
        age_years: Age of the pipe at the latest run, years.

    Returns:
        One row per metal-loss feature with `FEATURE_RATE_COLUMNS` (m/year).

    Raises:
        IntegrityError: An age that is not a positive number.
    """
    if not (math.isfinite(age_years) and age_years > 0):
        raise IntegrityError(f"age_years must be a positive number of years, got {age_years}")
    f = features.loc[features["feature_type"] == METAL_LOSS].reset_index(drop=True)
    half = age_years / 2.0
    depth_rate = f["depth_frac"].to_numpy(dtype=np.float64) * f["wall_m"].to_numpy(dtype=np.float64) / half
    length_rate = f["length_m"].to_numpy(dtype=np.float64) / half
    basis = np.full(len(f), "half-life", dtype=object)
    if study is not None and len(study.segments):
        seg = study.segments.set_index("segment")
        k = segment_of(f["chainage_m"], study.segment_m)
        has = np.isin(k, seg.index.to_numpy())
        upper = seg["upper_rate_m_per_year"].reindex(k).to_numpy(dtype=np.float64)
        lrate = np.maximum(seg["mean_length_rate_m_per_year"].reindex(k).to_numpy(dtype=np.float64), 0.0)
        depth_rate = np.where(has, upper, depth_rate)
        length_rate = np.where(has, lrate, length_rate)
        basis = np.where(has, "segment upper", basis)
        own = study.rates.set_index("feature_id")
        ids = f["feature_id"].to_numpy()
        mine = np.isin(ids, own.index.to_numpy())
        r = own["depth_rate_m_per_year"].reindex(ids).to_numpy(dtype=np.float64)
        lr = own["length_rate_m_per_year"].reindex(ids).to_numpy(dtype=np.float64)
        measured = mine & (r > 0)
        depth_rate = np.where(measured, r, depth_rate)
        length_rate = np.where(measured, np.maximum(lr, 0.0), length_rate)
        basis = np.where(measured, "measured", basis)
        basis = np.where(mine & ~measured & has, "segment upper (measured rate not positive)", basis)
    elif study is not None:
        own = study.rates.set_index("feature_id")
        ids = f["feature_id"].to_numpy()
        r = own["depth_rate_m_per_year"].reindex(ids).to_numpy(dtype=np.float64)
        measured = np.isfinite(r) & (r > 0)
        depth_rate = np.where(measured, r, depth_rate)
        basis = np.where(measured, "measured", basis)
    return pd.DataFrame(
        {
            "feature_id": f["feature_id"].to_numpy(),
            "depth_rate_m_per_year": depth_rate,
            "length_rate_m_per_year": length_rate,
            "rate_basis": basis.astype(str),
        }
    ).reindex(columns=FEATURE_RATE_COLUMNS)


def _pipe_arrays(assessed: pd.DataFrame, pipes: Mapping[str, PipeProperties] | PipeProperties) -> list[PipeProperties]:
    """The pipe of each row (by ``pipe_id`` when given a mapping)."""
    if not isinstance(pipes, Mapping):
        return [pipes] * len(assessed)
    if "pipe_id" not in assessed:
        raise IntegrityError("assessed features need a pipe_id column to look up pipe properties by pipe")
    out = []
    for pid in assessed["pipe_id"].astype(str):
        if pid not in pipes:
            raise IntegrityError(f"pipe {pid!r} has no pipe properties")
        out.append(pipes[pid])
    return out


def remaining_life_years(
    assessed: pd.DataFrame,
    rates: pd.DataFrame,
    pipes: Mapping[str, PipeProperties] | PipeProperties,
    maop_pa: float | FloatArray,
    settings: AssessmentSettings,
    *,
    cap_years: float = LIFE_CAP_YEARS,
) -> pd.DataFrame:
    """Years until each metal-loss feature reaches its end of life under its projected growth.

    Life ends at the first of: the depth reaches `CRITICAL_DEPTH_FRAC` (80 %) of the wall, or the
    safe pressure (`safe_pressure_pa`, the configured method and safety factor) falls to the
    MAOP at the feature, i.e. the depth reaches `critical_depth_frac` at the feature's length
    then. Depth grows at the feature's depth rate and length at its length rate (`feature_rates`);
    the pressure limit is found by bisection in time. A feature already past either limit has 0
    years; one that does not grow, or not within ``cap_years``, has ``cap_years``.

    Args:
        assessed: The assessed features (``feature_id``, ``feature_type``, ``depth_frac``,
            ``length_m``, ``wall_m``, ``pipe_id`` with a pipe mapping).
        rates: `feature_rates` of those features.
        pipes: Pipe properties by pipe id, or one for every feature.
        maop_pa: MAOP at each row of ``assessed`` (or one value), gauge Pa.
        settings: Assessment method and safety factor.
        cap_years: Longest life reported, years.

    Returns:
        One row per metal-loss feature with `LIFE_COLUMNS`; ``limit`` is ``80 % wall`` or
        ``safe pressure at MAOP`` (the one reached first), ``already past``, ``no growth``, or
        ``not sized`` (no depth or length: life NaN).
    """
    maop_all = np.broadcast_to(np.asarray(maop_pa, dtype=np.float64), (len(assessed),))
    is_ml = (assessed["feature_type"] == METAL_LOSS).to_numpy()
    f = assessed.loc[is_ml].reset_index(drop=True)
    maop = maop_all[is_ml]
    r = rates.set_index("feature_id").reindex(f["feature_id"])
    depth_rate = np.maximum(r["depth_rate_m_per_year"].to_numpy(dtype=np.float64), 0.0)
    length_rate = np.maximum(r["length_rate_m_per_year"].to_numpy(dtype=np.float64), 0.0)
    depth_rate = np.where(np.isfinite(depth_rate), depth_rate, 0.0)
    length_rate = np.where(np.isfinite(length_rate), length_rate, 0.0)
    rows = _pipe_arrays(f, pipes)
    diameter = np.array([p.diameter_m for p in rows], dtype=np.float64)
    nominal = np.array([p.wall_m for p in rows], dtype=np.float64)
    wall = f["wall_m"].to_numpy(dtype=np.float64)
    wall = np.where(np.isfinite(wall) & (wall > 0), wall, nominal)
    depth0 = f["depth_frac"].to_numpy(dtype=np.float64) * wall
    length0 = f["length_m"].to_numpy(dtype=np.float64)

    def past_pressure(t: FloatArray) -> BoolArray:
        """Whether the depth at time t reaches the critical depth at the length then."""
        length = length0 + length_rate * t
        crit = _critical(length, wall, diameter, rows, maop, settings)
        past: BoolArray = (depth0 + depth_rate * t) / wall >= crit
        return past

    with np.errstate(divide="ignore", invalid="ignore"):
        t_depth = np.where(depth_rate > 0, (CRITICAL_DEPTH_FRAC * wall - depth0) / depth_rate, np.inf)
    t_depth = np.maximum(t_depth, 0.0)
    horizon = np.minimum(t_depth, cap_years)
    now_past = past_pressure(np.zeros(len(f)))
    end_past = past_pressure(horizon)
    lo, hi = np.zeros(len(f)), horizon.copy()
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        over = past_pressure(mid)
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    t_pressure = np.where(now_past, 0.0, np.where(end_past, hi, np.inf))
    life = np.minimum(np.minimum(t_depth, t_pressure), cap_years)
    limit = np.where(t_pressure <= t_depth, "safe pressure at MAOP", "80 % wall")
    limit = np.where(life <= 0, "already past", limit)
    limit = np.where((life >= cap_years) & (life > 0), "no growth", limit)
    sized = np.isfinite(depth0) & np.isfinite(length0)
    life = np.where(sized, life, np.nan)
    limit = np.where(sized, limit, "not sized")
    return pd.DataFrame(
        {
            "feature_id": f["feature_id"].to_numpy(),
            "remaining_life_years": life,
            "limit": limit.astype(str),
            "depth_rate_m_per_year": depth_rate,
            "length_rate_m_per_year": length_rate,
            "rate_basis": r["rate_basis"].fillna("none").astype(str).to_numpy(),
        }
    ).reindex(columns=LIFE_COLUMNS)


def _critical(
    length_m: FloatArray,
    wall_m: FloatArray,
    diameter_m: FloatArray,
    pipes: list[PipeProperties],
    pressure_pa: FloatArray,
    settings: AssessmentSettings,
) -> FloatArray:
    """`critical_depth_frac` row by row, grouped by pipe (fractions of wall; > 1: never critical)."""
    out = np.empty(len(length_m))
    groups: dict[int, list[int]] = {}
    for k, p in enumerate(pipes):
        groups.setdefault(id(p), []).append(k)
    for idx in groups.values():
        sel = np.asarray(idx)
        out[sel] = critical_depth_frac(
            length_m[sel], wall_m[sel], diameter_m[sel], pipes[sel[0]], pressure_pa[sel], settings
        )
    return out


__all__ = [
    "GrowthStudy",
    "WeldMatch",
    "align_to",
    "feature_rates",
    "growth_rates",
    "map_distance",
    "match_features",
    "match_welds",
    "remaining_life_years",
    "segment_growth",
    "segment_of",
    "study_growth",
    "years_between",
]
