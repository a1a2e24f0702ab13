"""The pipe's hidden corrosion: the true features of a line, their growth, and what an ILI vendor reports.

This is the plant side of pipe integrity, the stand-in for the real steel. A population of
corrosion features is drawn along a line with hidden growth rates: log-normal per segment of
line (soil, coating, flow regime) with a further spread per feature, and clustered in zones
(low spots where water drops out and corrodes the pipe from inside; stretches of damaged coating
where it corrodes from outside). `grow` ages a population; `ili_export` turns it into the anomaly
list an inspection vendor would deliver: the vendor's column names and units, girth welds every
joint, the above-ground markers the tool passed, an odometer that runs a little fast or slow and
slips, sizing noise, a reporting threshold and the vendor's own running ids (the true feature ids
are not in the export). The twin never sees a population; it reads the exports.

The reference line's corrosion is in ``pipe/reference_corrosion.yaml`` (`reference_population`),
including named features the demonstration relies on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.safety import shorten
from pumptwin.twin.units import FT_M, IN_M, M_PER_KM, MM_PER_M

FloatArray = NDArray[np.float64]

POPULATION_COLUMNS = (
    "feature_id",
    "chainage_m",
    "clock_h",
    "depth_m",
    "length_m",
    "width_m",
    "surface",
    "wall_m",
    "depth_rate_m_per_year",
    "length_rate_m_per_year",
)
"""Columns of a true corrosion population (SI units; rates per year)."""

REFERENCE_FILE = "reference_corrosion.yaml"
"""The reference line's corrosion, in the plant's scenario folder."""

UNIT_STYLES = ("metric", "imperial", "column")
"""Export styles: metric headers with units, imperial headers with units, or unit-less headers and a units column."""

BAD_ROW_KINDS = (
    "depth over 100 %",
    "negative depth",
    "missing length",
    "unparseable number",
    "unparseable clock",
    "unknown feature type",
    "duplicate feature id",
    "unknown unit",
)
"""Kinds of bad row `ili_export` can add, in the order it adds them ("unknown unit" only in the ``column`` style)."""


_CLOCK_SD_H = 0.15
"""1-sigma error of a reported clock position, h."""

_MIN_SIZE_M = 0.005
"""Smallest length or width a vendor reports, m."""


class CorrosionError(PumptwinError, ValueError):
    """A corrosion population, zone or export setting that is not valid; the message names it."""


@dataclass(frozen=True, slots=True)
class CorrosionZone:
    """A stretch of line where corrosion is denser and faster.

    Attributes:
        start_m: Start chainage, m.
        end_m: End chainage, m (after the start).
        density_factor: Features per km there relative to the line's density (>= 1 adds features).
        rate_factor: Growth rate multiplier for features there (> 0).
        surface: ``internal`` or ``external`` for every feature there, or None for the line's mix.
        clock_h: Typical clock position there, h (None: the surface's usual spread).
        kind: What the zone is (``low_spot``, ``coating_damage``, ...), for people.
    """

    start_m: float
    end_m: float
    density_factor: float = 1.0
    rate_factor: float = 1.0
    surface: str | None = None
    clock_h: float | None = None
    kind: str = "zone"

    def __post_init__(self) -> None:
        where = f"corrosion zone {self.kind} at {self.start_m:g} m"
        if not (math.isfinite(self.start_m) and math.isfinite(self.end_m) and self.end_m > self.start_m):
            raise CorrosionError(f"{where}: end must be after start, got {self.start_m:g}..{self.end_m:g} m")
        if not (math.isfinite(self.density_factor) and self.density_factor >= 1.0):
            raise CorrosionError(f"{where}: density factor must be >= 1, got {self.density_factor}")
        if not (math.isfinite(self.rate_factor) and self.rate_factor > 0):
            raise CorrosionError(f"{where}: rate factor must be > 0, got {self.rate_factor}")
        if self.surface not in (None, "internal", "external"):
            raise CorrosionError(f"{where}: surface must be internal or external, got {shorten(self.surface)}")
        if self.clock_h is not None and not (0 <= self.clock_h < 12):  # noqa: PLR2004 - hours on the clock face
            raise CorrosionError(f"{where}: clock must be in [0, 12) h, got {self.clock_h}")


def draw_population(
    length_m: float,
    rng: np.random.Generator,
    *,
    wall_m: float | Callable[[FloatArray], FloatArray],
    density_per_km: float = 2.0,
    start_chainage_m: float = 0.0,
    segment_m: float = 1000.0,
    depth_rate_median_m_per_year: float = 0.05e-3,
    segment_rate_sigma: float = 0.4,
    feature_rate_sigma: float = 0.45,
    age_years: float = 40.0,
    external_share: float = 0.7,
    length_rate_ratio: float = 2.0,
    zones: Sequence[CorrosionZone] = (),
    max_depth_frac: float = 0.8,
    id_prefix: str = "C",
) -> pd.DataFrame:
    """Draw the true corrosion features of a line.

    Features start at a uniform random time over the line's age and grow at a constant hidden
    rate since: ``depth = rate * exposure``. A rate is the median times a log-normal factor of
    its segment (``segment_rate_sigma``) times a log-normal factor of its own
    (``feature_rate_sigma``), times the rate factor of a zone it lies in. Features that would
    have grown deeper than ``max_depth_frac`` of the wall are taken as repaired before now and
    left out.

    Args:
        length_m: Length of line, m.
        rng: Random generator (all draws come from it).
        wall_m: Nominal wall, m, or a function of chainage (m) giving it.
        density_per_km: Features per km outside zones.
        start_chainage_m: Chainage where the line starts, m.
        segment_m: Length of a segment sharing one rate factor, m.
        depth_rate_median_m_per_year: Median depth growth rate, m/year.
        segment_rate_sigma: Log-normal sigma of the segment factor.
        feature_rate_sigma: Log-normal sigma of the feature factor.
        age_years: Years the line has been corroding.
        external_share: Share of external features outside zones that set a surface.
        length_rate_ratio: Median axial growth rate over depth growth rate.
        zones: Stretches with denser, faster corrosion.
        max_depth_frac: Deepest feature left in the pipe, fraction of wall.
        id_prefix: Prefix of the true feature ids (``C00001``...).

    Returns:
        One row per feature with `POPULATION_COLUMNS`, sorted by chainage.

        ========== ========== ===== ======= ======== ======= ======== ======= =========== ==========
        feature_id chainage_m clock depth_m length_m width_m surface  wall_m  depth_rate  length_rate
        ========== ========== ===== ======= ======== ======= ======== ======= =========== ==========
        C00001     1523.4     5.8   0.0011  0.062    0.048   external 0.0079  4.1e-05     9.0e-05
        ========== ========== ===== ======= ======== ======= ======== ======= =========== ==========

    Raises:
        CorrosionError: A non-positive length, density or rate, or a share outside [0, 1].
    """
    _check_positive(
        length_m=length_m,
        segment_m=segment_m,
        depth_rate_median_m_per_year=depth_rate_median_m_per_year,
        age_years=age_years,
        max_depth_frac=max_depth_frac,
    )
    if not (math.isfinite(density_per_km) and density_per_km >= 0):
        raise CorrosionError(f"density must be >= 0 features per km, got {density_per_km}")
    if not 0.0 <= external_share <= 1.0:
        raise CorrosionError(f"external share must be in [0, 1], got {external_share}")
    end = start_chainage_m + length_m
    n_base = int(rng.poisson(density_per_km * length_m / M_PER_KM))
    chainage = [rng.uniform(start_chainage_m, end, n_base)]
    for zone in zones:
        lo, hi = max(zone.start_m, start_chainage_m), min(zone.end_m, end)
        if hi > lo:
            extra = (zone.density_factor - 1.0) * density_per_km * (hi - lo) / M_PER_KM
            chainage.append(rng.uniform(lo, hi, int(rng.poisson(extra))))
    ch = np.sort(np.concatenate(chainage))
    n = len(ch)
    n_seg = max(1, math.ceil(length_m / segment_m))
    segment_factor = rng.lognormal(0.0, segment_rate_sigma, n_seg)
    seg = np.clip(((ch - start_chainage_m) // segment_m).astype(int), 0, n_seg - 1)
    rate = depth_rate_median_m_per_year * segment_factor[seg] * rng.lognormal(0.0, feature_rate_sigma, n)
    surface = np.where(rng.uniform(size=n) < external_share, "external", "internal").astype(object)
    clock = _clock_for(surface, rng)
    for zone in zones:
        inside = (ch >= zone.start_m) & (ch <= zone.end_m)
        rate = np.where(inside, rate * zone.rate_factor, rate)
        if zone.surface is not None:
            surface[inside] = zone.surface
            clock = np.where(inside, _clock_for(surface, rng), clock)
        if zone.clock_h is not None:
            clock = np.where(inside, np.mod(rng.normal(zone.clock_h, 0.7, n), 12.0), clock)
    wall = _wall_at(wall_m, ch)
    exposure = rng.uniform(0.0, age_years, n)
    depth = rate * exposure
    length = np.clip(rng.lognormal(math.log(0.06), 0.8, n), 0.01, 1.5)
    width = np.clip(rng.lognormal(math.log(0.05), 0.6, n), 0.01, 0.6)
    length_rate = length_rate_ratio * rate * rng.lognormal(0.0, 0.3, n)
    frame = pd.DataFrame(
        {
            "feature_id": [f"{id_prefix}{i + 1:05d}" for i in range(n)],
            "chainage_m": ch,
            "clock_h": clock,
            "depth_m": depth,
            "length_m": length,
            "width_m": width,
            "surface": surface,
            "wall_m": wall,
            "depth_rate_m_per_year": rate,
            "length_rate_m_per_year": length_rate,
        }
    )
    kept = frame[frame["depth_m"] <= max_depth_frac * frame["wall_m"]]
    return kept.reset_index(drop=True)


def _clock_for(surface: NDArray[Any], rng: np.random.Generator) -> FloatArray:
    """Clock positions: internal features at the bottom (water), external ones spread around the lower half."""
    internal = np.asarray(surface) == "internal"
    return np.where(
        internal, np.mod(rng.normal(6.0, 1.0, len(surface)), 12.0), np.mod(rng.normal(6.0, 2.5, len(surface)), 12.0)
    )


def _wall_at(wall_m: float | Callable[[FloatArray], FloatArray], chainage: FloatArray) -> FloatArray:
    """Nominal wall at each chainage, m."""
    wall = np.asarray(wall_m(chainage), dtype=float) if callable(wall_m) else np.full(len(chainage), float(wall_m))
    if wall.shape != chainage.shape or not np.all(np.isfinite(wall) & (wall > 0)):
        raise CorrosionError("wall thickness must be a number > 0 m at every chainage")
    return wall


def _check_positive(**values: float) -> None:
    """Refuse values that are not finite and > 0."""
    for name, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise CorrosionError(f"{name} must be a number > 0, got {shorten(value)}")


def grow(population: pd.DataFrame, years: float) -> pd.DataFrame:
    """The population ``years`` later: depth and length grown at each feature's hidden rates.

    Depth is capped at the wall; a negative ``years`` gives the population as it was that long
    ago (depth and length floored at zero and 1 mm).

    Args:
        population: True features (`POPULATION_COLUMNS`).
        years: Years to grow, may be negative.

    Returns:
        A copy with ``depth_m`` and ``length_m`` updated.

    Raises:
        CorrosionError: A non-finite ``years``.
    """
    if not math.isfinite(years):
        raise CorrosionError(f"years must be a number, got {years}")
    out = population.copy()
    depth = out["depth_m"].to_numpy(float) + out["depth_rate_m_per_year"].to_numpy(float) * years
    out["depth_m"] = np.clip(depth, 0.0, out["wall_m"].to_numpy(float))
    length = out["length_m"].to_numpy(float) + out["length_rate_m_per_year"].to_numpy(float) * years
    out["length_m"] = np.maximum(length, 1e-3)
    return out


# --- the vendor's export -------------------------------------------------------------------------

_STYLE_COLUMNS: dict[str, dict[str, str]] = {
    "metric": {
        "id": "Feature ID",
        "log": "Log Distance [m]",
        "weld": "GW No.",
        "weld_dist": "Dist. to U/S GW [m]",
        "clock": "O'clock",
        "event": "Event",
        "dim": "Dim. Class",
        "depth": "Depth [%]",
        "length": "Length [mm]",
        "width": "Width [mm]",
        "surface": "Int/Ext",
        "wall": "WT [mm]",
        "comment": "Comment",
    },
    "imperial": {
        "id": "Anomaly No.",
        "log": "Log Dist. (ft)",
        "weld": "Upstream Weld",
        "weld_dist": "Dist. to U/S GW (ft)",
        "clock": "Orientation [deg]",
        "event": "Feature Type",
        "dim": "Dimension Class",
        "depth": "Peak Depth (%WT)",
        "length": "Length (in)",
        "width": "Width (in)",
        "surface": "Surface Location",
        "wall": "WT (in)",
        "comment": "Remarks",
    },
    "column": {
        "id": "Feature No.",
        "log": "Odometer",
        "weld": "Girth Weld No.",
        "weld_dist": "Distance to Upstream Weld",
        "clock": "Clock Position",
        "event": "Identification",
        "dim": "POF Class",
        "depth": "Max. Depth",
        "length": "Axial Length",
        "width": "Circumferential Width",
        "surface": "Surface",
        "wall": "Wall Thickness",
        "comment": "Description",
        "units": "Units",
    },
}

_STYLE_EVENTS: dict[str, dict[str, str]] = {
    "metric": {
        "metal_loss": "Metal Loss",
        "girth_weld": "Girth Weld",
        "marker": "AGM",
        "valve": "Valve",
        "launcher": "Launcher",
        "receiver": "Receiver",
        "fitting": "Tee",
    },
    "imperial": {
        "metal_loss": "CORR",
        "girth_weld": "GW",
        "marker": "Marker",
        "valve": "Valve",
        "launcher": "Launch Trap",
        "receiver": "Receive Trap",
        "fitting": "Flange",
    },
    "column": {
        "metal_loss": "ML",
        "girth_weld": "Weld",
        "marker": "Magnet",
        "valve": "VLV",
        "launcher": "Launcher",
        "receiver": "Receiver",
        "fitting": "Bend",
    },
}

_STYLE_DIM = {
    "metric": {
        "general": "GENE",
        "pitting": "PITT",
        "axial_grooving": "AXGR",
        "circumferential_grooving": "CIGR",
        "pinhole": "PINH",
        "axial_slotting": "AXSL",
        "circumferential_slotting": "CISL",
    },
    "imperial": {
        "general": "General",
        "pitting": "Pitting",
        "axial_grooving": "Axial Grooving",
        "circumferential_grooving": "Circumferential Grooving",
        "pinhole": "Pinhole",
        "axial_slotting": "Axial Slotting",
        "circumferential_slotting": "Circumferential Slotting",
    },
}
_STYLE_DIM["column"] = {k: v.lower() for k, v in _STYLE_DIM["metric"].items()}

_STYLE_SURFACE = {
    "metric": {"internal": "Int", "external": "Ext"},
    "imperial": {"internal": "Internal", "external": "External"},
    "column": {"internal": "I", "external": "E"},
}


def ili_export(
    population: pd.DataFrame,
    date: pd.Timestamp,
    rng: np.random.Generator,
    *,
    depth_sd_frac: float = 0.078,
    length_sd_m: float = 0.0195,
    joint_length_m: float = 12.0,
    odometer_scale: float = 1.0,
    odometer_offset_m: float = 0.0,
    slip_sd_m: float = 0.05,
    threshold_frac: float = 0.1,
    units: str = "metric",
    bad_rows: int = 0,
    launch_chainage_m: float = 0.0,
    end_chainage_m: float | None = None,
    markers: pd.DataFrame | None = None,
    weld_seed: int = 0,
) -> pd.DataFrame:
    """What an inspection vendor delivers for a run through ``population``: its anomaly list.

    The tool runs from ``launch_chainage_m`` to ``end_chainage_m``. Its odometer reads
    ``(chainage - launch) * odometer_scale + odometer_offset_m`` plus a slip that wanders as a
    random walk (``slip_sd_m`` per km, 1 sigma). Girth welds lie every joint (a joint is
    ``joint_length_m`` +/- 0.5 m, uniform, laid from chainage 0 with ``weld_seed``, so every run
    through the same pipe passes the same welds) and are numbered 10, 20, 30... from the
    launcher; the markers, valves and
    pig traps passed are listed with their names. A metal-loss feature is reported when its
    measured depth (true depth plus normal noise of ``depth_sd_frac``) reaches
    ``threshold_frac``; length and width carry noise of ``length_sd_m``. Rows are in odometer
    order with the vendor's running ids. ``bad_rows`` adds rows of `BAD_ROW_KINDS` (in turn),
    each right after the row it copies.

    Args:
        population: True features (`POPULATION_COLUMNS`).
        date: Date of the run (kept in ``attrs["run_date"]``).
        rng: Random generator.
        depth_sd_frac: 1-sigma depth sizing noise, fraction of wall.
        length_sd_m: 1-sigma length and width sizing noise, m.
        joint_length_m: Mean pipe joint length, m.
        odometer_scale: Odometer reading per m of pipe.
        odometer_offset_m: Odometer reading at the launcher, m.
        slip_sd_m: Odometer slip random walk, m per km (1 sigma).
        threshold_frac: Reporting threshold, fraction of wall.
        units: One of `UNIT_STYLES`.
        bad_rows: Number of bad rows to add.
        launch_chainage_m: Chainage of the launcher, m.
        end_chainage_m: Chainage of the receiver, m (default: a joint past the last feature).
        markers: Reference points passed (``name``, ``chainage_m``, ``kind``); default the
            reference line's, from its integrity file.
        weld_seed: Seed of the pipe's joint lengths (the pipe's own, not the run's).

    Returns:
        The list with the style's vendor column names, every value a string (blank when not
        given), ready for ``to_csv(index=False)``; ``attrs`` holds ``run_date`` and ``units``.

    Raises:
        CorrosionError: An unknown style, or a non-positive joint length, scale or noise.
    """
    if units not in UNIT_STYLES:
        raise CorrosionError(f"units must be one of {', '.join(UNIT_STYLES)}, got {shorten(units)}")
    _check_positive(joint_length_m=joint_length_m, odometer_scale=odometer_scale)
    if min(depth_sd_frac, length_sd_m, slip_sd_m, threshold_frac, bad_rows) < 0:
        raise CorrosionError("noise, threshold and bad rows must be >= 0")
    if markers is None:
        markers = _reference_markers()
    pop = population[population["chainage_m"] >= launch_chainage_m]
    end = (
        float(end_chainage_m)
        if end_chainage_m is not None
        else float(pop["chainage_m"].max() + joint_length_m if len(pop) else launch_chainage_m + joint_length_m)
    )
    pop = pop[pop["chainage_m"] <= end]
    odometer = _odometer(launch_chainage_m, end, odometer_scale, odometer_offset_m, slip_sd_m, rng)
    weld_ch = _welds(launch_chainage_m, end, joint_length_m, np.random.default_rng(weld_seed))
    weld_no = 10.0 * np.arange(1, len(weld_ch) + 1)
    rows = _feature_rows(pop, rng, depth_sd_frac, length_sd_m, threshold_frac)
    rows += [{"kind": "girth_weld", "chainage_m": c, "weld_number": w} for c, w in zip(weld_ch, weld_no, strict=True)]
    in_run = markers[(markers["chainage_m"] >= launch_chainage_m) & (markers["chainage_m"] <= end)]
    rows += [
        {"kind": str(k), "chainage_m": float(c), "name": str(n)}
        for n, c, k in zip(in_run["name"], in_run["chainage_m"], in_run.get("kind", "marker"), strict=True)
    ]
    table = pd.DataFrame(rows)
    table["log_m"] = odometer(table["chainage_m"].to_numpy(float))
    k = np.searchsorted(weld_ch, table["chainage_m"].to_numpy(float), side="right") - 1
    table["us_weld"] = np.where(k >= 0, weld_no[np.clip(k, 0, None)], np.nan)
    table["us_weld_log"] = np.where(k >= 0, odometer(weld_ch)[np.clip(k, 0, None)] if len(weld_ch) else np.nan, np.nan)
    table = table.sort_values("log_m", kind="stable").reset_index(drop=True)
    out = _format(table, units)
    out = _add_bad_rows(out, units, bad_rows, rng)
    out.attrs["run_date"] = pd.Timestamp(date).isoformat()
    out.attrs["units"] = units
    return out


def _reference_markers() -> pd.DataFrame:
    """The reference line's markers from its integrity file (the operator's records of the real line)."""
    from pumptwin.twin.integrity.pipe import packaged_integrity_file, reference_markers

    return reference_markers(packaged_integrity_file())


def _odometer(
    launch: float, end: float, scale: float, offset: float, slip_sd: float, rng: np.random.Generator
) -> Callable[[FloatArray], FloatArray]:
    """The tool's odometer reading as a function of chainage (scale, offset and a slip random walk)."""
    knots = np.arange(launch, end + M_PER_KM, M_PER_KM)
    slip = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, slip_sd, len(knots) - 1))])

    def reading(chainage: FloatArray) -> FloatArray:
        return (chainage - launch) * scale + offset + np.interp(chainage, knots, slip)

    return reading


def _welds(launch: float, end: float, joint: float, rng: np.random.Generator) -> FloatArray:
    """Chainage of the girth welds from the launcher to the receiver: the pipe's joints laid from chainage 0."""
    n = int(end / (joint - 0.5)) + 2
    at = np.cumsum(rng.uniform(joint - 0.5, joint + 0.5, n))
    return at[(at > launch) & (at <= end)]


def _pof_class(length_m: float, width_m: float, wall_m: float) -> str:
    """POF dimension class of a metal-loss feature (A = max(wall, 10 mm))."""
    a = max(wall_m, 0.010)
    if width_m < a:
        return "pinhole" if length_m < a else "axial_slotting"
    if length_m < a:
        return "circumferential_slotting"
    if length_m >= 3 * a and width_m >= 3 * a:
        return "general"
    if width_m < 3 * a and length_m / width_m >= 2:  # noqa: PLR2004 - the POF ratio
        return "axial_grooving"
    if length_m < 3 * a and length_m / width_m <= 0.5:  # noqa: PLR2004 - the POF ratio
        return "circumferential_grooving"
    return "pitting"


def _feature_rows(
    pop: pd.DataFrame, rng: np.random.Generator, depth_sd: float, length_sd: float, threshold: float
) -> list[dict[str, Any]]:
    """Measured metal-loss features above the reporting threshold."""
    n = len(pop)
    wall = pop["wall_m"].to_numpy(float)
    depth = np.clip(pop["depth_m"].to_numpy(float) / wall + rng.normal(0.0, depth_sd, n), 0.0, 0.99)
    length = np.maximum(pop["length_m"].to_numpy(float) + rng.normal(0.0, length_sd, n), _MIN_SIZE_M)
    width = np.maximum(pop["width_m"].to_numpy(float) + rng.normal(0.0, length_sd, n), _MIN_SIZE_M)
    clock = np.mod(pop["clock_h"].to_numpy(float) + rng.normal(0.0, _CLOCK_SD_H, n), 12.0)
    rows = []
    for i, ch in enumerate(pop["chainage_m"].to_numpy(float)):
        if depth[i] < threshold:
            continue
        rows.append(
            {
                "kind": "metal_loss",
                "chainage_m": ch,
                "depth_frac": depth[i],
                "length_m": length[i],
                "width_m": width[i],
                "clock_h": clock[i],
                "surface": pop["surface"].iloc[i],
                "wall_m": wall[i],
                "dim": _pof_class(length[i], width[i], wall[i]),
            }
        )
    return rows


def _format(table: pd.DataFrame, units: str) -> pd.DataFrame:
    """The vendor's list: style column names, units and number formats, running ids."""
    cols = _STYLE_COLUMNS[units]
    imperial = units == "imperial"
    dist = FT_M if imperial else 1.0
    size = IN_M if imperial else 1e-3
    size_fmt = "{:.2f}" if imperial else "{:.0f}"
    wall_fmt = "{:.3f}" if imperial else "{:.1f}"
    records = []
    for i, row in enumerate(table.itertuples(index=False), start=1):
        kind = row.kind
        metal = kind == "metal_loss"
        rec = dict.fromkeys(cols.values(), "")
        rec[cols["id"]] = _vendor_id(i, units)
        rec[cols["log"]] = f"{row.log_m / dist:.2f}"
        if not math.isnan(row.us_weld):
            rec[cols["weld"]] = f"{row.us_weld:.0f}"
            rec[cols["weld_dist"]] = f"{(row.log_m - row.us_weld_log) / dist:.2f}"
        rec[cols["event"]] = _STYLE_EVENTS[units].get(kind, _STYLE_EVENTS[units]["fitting"])
        if metal:
            rec[cols["clock"]] = _clock_text(row.clock_h, units)
            rec[cols["dim"]] = _STYLE_DIM[units][row.dim]
            rec[cols["depth"]] = f"{round(row.depth_frac * 100):d}"
            rec[cols["length"]] = size_fmt.format(row.length_m / size)
            rec[cols["width"]] = size_fmt.format(row.width_m / size)
            rec[cols["surface"]] = _STYLE_SURFACE[units][row.surface]
            rec[cols["wall"]] = wall_fmt.format(row.wall_m / size)
        if kind not in ("metal_loss", "girth_weld"):
            rec[cols["comment"]] = row.name
        if "units" in cols:
            rec[cols["units"]] = "metric"
        records.append(rec)
    return pd.DataFrame(records, columns=list(cols.values()), dtype=object)


def _vendor_id(i: int, units: str) -> str:
    """The vendor's running id of the i-th row."""
    return {"metric": f"{i}", "imperial": f"A{i:05d}", "column": f"F-{i}"}[units]


def _clock_text(clock_h: float, units: str) -> str:
    """A clock position as the style writes it: ``h:mm`` to 5 minutes, or degrees."""
    if units == "imperial":
        return f"{round(clock_h * 30.0) % 360:d}"
    minutes = round(clock_h * 12.0) * 5 % 720
    h, m = divmod(minutes, 60)
    return f"{h if h else 12}:{m:02d}"


def _add_bad_rows(out: pd.DataFrame, units: str, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """Insert ``count`` bad rows of the kinds in turn, each after the metal-loss row it copies."""
    if count == 0:
        return out
    cols = _STYLE_COLUMNS[units]
    metal = np.flatnonzero(out[cols["event"]].to_numpy() == _STYLE_EVENTS[units]["metal_loss"])
    if len(metal) == 0:
        raise CorrosionError("bad rows need at least one reported metal-loss feature to copy")
    kinds = [k for k in BAD_ROW_KINDS if k != "unknown unit" or units == "column"]
    sources = np.sort(rng.choice(metal, size=count, replace=count > len(metal)))
    inserts: dict[int, list[dict[str, str]]] = {}
    next_id = len(out) + 1
    for j, src in enumerate(sources):
        kind = kinds[j % len(kinds)]
        row = out.iloc[int(src)].to_dict()
        if kind != "duplicate feature id":
            row[cols["id"]] = _vendor_id(next_id, units)
            next_id += 1
        _spoil(row, kind, cols)
        inserts.setdefault(int(src), []).append(row)
    records: list[dict[str, str]] = []
    for i, row in enumerate(out.to_dict("records")):
        records.append(row)
        records.extend(inserts.get(i, []))
    return pd.DataFrame(records, columns=out.columns, dtype=object)


def _spoil(row: dict[str, str], kind: str, cols: Mapping[str, str]) -> None:
    """Make a copied row bad in one way."""
    if kind == "depth over 100 %":
        row[cols["depth"]] = "112"
    elif kind == "negative depth":
        row[cols["depth"]] = "-5"
    elif kind == "missing length":
        row[cols["length"]] = ""
    elif kind == "unparseable number":
        row[cols["width"]] = "n/a?"
    elif kind == "unparseable clock":
        row[cols["clock"]] = "13:75"
    elif kind == "unknown feature type":
        row[cols["event"]] = "Suspicious Thing"
    elif kind == "unknown unit":
        row[cols["units"]] = "furlongs"


# --- the reference line ---------------------------------------------------------------------------


def reference_file() -> Path:
    """Path of the reference line's corrosion file."""
    return Path(str(resources.files("pumptwin.plant") / "pipe" / REFERENCE_FILE))


def reference_population(seed: int = 0) -> pd.DataFrame:
    """The reference line's true corrosion: drawn features plus the file's named ones.

    The population describes the line on the file's ``date``; the named features (``named`` in
    the file) keep their ids, the drawn ones are ``C00001``... by chainage.

    Args:
        seed: Seed of the drawn features (the named ones do not depend on it).

    Returns:
        The population (`POPULATION_COLUMNS`), sorted by chainage.

    Raises:
        CorrosionError: An invalid file.
    """
    data = read_yaml_mapping(reference_file(), CorrosionError, "corrosion file", label=REFERENCE_FILE)
    wall = _reference_wall()
    start = _float(data, "start_km") * M_PER_KM
    end = _float(data, "end_km") * M_PER_KM
    zones = [
        CorrosionZone(
            start_m=_float(z, "start_km") * M_PER_KM,
            end_m=_float(z, "end_km") * M_PER_KM,
            density_factor=float(z.get("density_factor", 1.0)),
            rate_factor=float(z.get("rate_factor", 1.0)),
            surface=z.get("surface"),
            clock_h=None if z.get("clock") is None else _clock_value(z["clock"]),
            kind=str(z.get("kind", "zone")),
        )
        for z in data.get("zones") or []
    ]
    drawn = draw_population(
        end - start,
        np.random.default_rng(seed),
        wall_m=wall,
        start_chainage_m=start,
        density_per_km=float(data.get("density_per_km", 2.0)),
        segment_m=float(data.get("segment_m", 1000.0)),
        depth_rate_median_m_per_year=float(data.get("depth_rate_median_mm_per_year", 0.05)) / MM_PER_M,
        segment_rate_sigma=float(data.get("segment_rate_sigma", 0.4)),
        feature_rate_sigma=float(data.get("feature_rate_sigma", 0.45)),
        age_years=float(data.get("age_years", 40.0)),
        external_share=float(data.get("external_share", 0.7)),
        length_rate_ratio=float(data.get("length_rate_ratio", 2.0)),
        zones=zones,
        max_depth_frac=float(data.get("max_depth_frac", 0.8)),
    )
    named = pd.DataFrame([_named(entry, wall) for entry in data.get("named") or []], columns=list(POPULATION_COLUMNS))
    both = pd.concat([drawn, named], ignore_index=True) if len(named) else drawn
    return both.sort_values("chainage_m", kind="stable").reset_index(drop=True)


def _reference_wall() -> Callable[[FloatArray], FloatArray]:
    """Nominal wall of the reference line as a function of chainage, from its pipe records."""
    from pumptwin.twin.hydraulic.io import load_network
    from pumptwin.twin.hydraulic.solver import compile_network
    from pumptwin.twin.integrity.pipe import load_pipe_properties, packaged_integrity_file
    from pumptwin.twin.whatif.path import main_path

    network = load_network()
    model = compile_network(network)
    pipes = load_pipe_properties(packaged_integrity_file(), network)
    path = main_path(model)
    starts, walls = [], []
    for i, link in enumerate(path.links):
        lid = model.link_ids[link]
        if lid in pipes:
            starts.append(float(path.chainage_m[i]))
            walls.append(pipes[lid].wall_m)
    order = np.argsort(starts, kind="stable")
    edge = np.asarray(starts)[order]
    value = np.asarray(walls)[order]

    def wall_at(chainage: FloatArray) -> FloatArray:
        k = np.clip(np.searchsorted(edge, chainage, side="right") - 1, 0, len(edge) - 1)
        return value[k]

    return wall_at


def _named(entry: Mapping[str, Any], wall: Callable[[FloatArray], FloatArray]) -> dict[str, Any]:
    """One named feature of the corrosion file as a population row."""
    if not isinstance(entry, Mapping) or "id" not in entry:
        raise CorrosionError(f"{REFERENCE_FILE}: named feature {shorten(entry)} needs an id")
    chainage = _float(entry, "chainage_km") * M_PER_KM
    wall_m = float(wall(np.array([chainage]))[0])
    depth_frac = _float(entry, "depth_frac")
    if not 0 <= depth_frac < 1:
        raise CorrosionError(f"{REFERENCE_FILE}: named feature {entry['id']!r}: depth_frac must be in [0, 1)")
    return {
        "feature_id": str(entry["id"]),
        "chainage_m": chainage,
        "clock_h": _clock_value(entry.get("clock", "6:00")),
        "depth_m": depth_frac * wall_m,
        "length_m": _float(entry, "length_mm") / MM_PER_M,
        "width_m": _float(entry, "width_mm") / MM_PER_M,
        "surface": str(entry.get("surface", "external")),
        "wall_m": wall_m,
        "depth_rate_m_per_year": float(entry.get("depth_rate_mm_per_year", 0.0)) / MM_PER_M,
        "length_rate_m_per_year": float(entry.get("length_rate_mm_per_year", 0.0)) / MM_PER_M,
    }


def _float(data: Mapping[str, Any], key: str) -> float:
    """A required finite number of the corrosion file."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CorrosionError(f"{REFERENCE_FILE}: {key} must be a number, got {shorten(value)}")
    return float(value)


def _clock_value(value: object) -> float:
    """A clock position from ``"6:00"`` or hours."""
    if isinstance(value, str) and ":" in value:
        h, m = value.split(":", 1)
        return (int(h) + int(m) / 60.0) % 12.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) % 12.0
    raise CorrosionError(f"{REFERENCE_FILE}: clock {shorten(value)} is not h:mm or hours")
