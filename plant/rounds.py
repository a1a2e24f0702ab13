"""Inspection rounds on the simulated plant: what a technician's instruments read on a visit.

A route visit to a pump measures the plant's hidden truth through portable instruments, never
through the online tags:

- **Portable vibration** (velocity RMS, mm/s) at the DE and NDE bearing in the horizontal (H),
  vertical (V) and axial (A) directions. The true overall value per bearing is the plant's own
  vibration model (`pumptwin.plant.health.vibration_rms_mm_s`: imbalance, misalignment, hydraulic
  excitation, resonance, recirculation, bearing defect, cavitation), split into four bands whose
  root sum of squares is the overall: ``1x`` (imbalance and resonance), ``2x`` (misalignment),
  ``low`` (hydraulic excitation and recirculation, and the floor of a stopped machine) and
  ``high`` (bearing defect and cavitation). The online transmitter sits in the horizontal
  direction (factor 1); vertical and axial read `DIRECTION_FACTORS` of it. The collector adds
  relative and absolute Gaussian noise of mean zero, so readings are unbiased.
- **Thermography** spot temperatures (degC) of the DE and NDE bearing housings (the true bearing
  temperatures), and of the motor frame (ambient plus `MOTOR_FRAME_SHARE` of the true winding
  rise), against the ambient as reference, with the camera's error.
- **Visual findings** (severity 0 none .. 4 critical) at four check points, each judged from the
  true quantity as the inspector perceives it (a log-normal error): the mechanical seal (weep in
  L/h at 1 bar g), the suction strainer's local differential pressure gauge (bar), cavitation
  noise (the plant's cavitation intensity) and a performance check on the local gauges (the head
  deficit at the running speed: 1 - (1 - w)^2 (1 - d) of impeller wear w and the cavitation head
  drop d). Strainer, noise and performance
  are only judged while the pump runs.

The frames are the route frames of the inspection contract (`VIBRATION_COLUMNS`,
`THERMOGRAPHY_COLUMNS`, `VISUAL_COLUMNS`); `export_route_files` writes them as a collector's
CSV export (vendor-style headers with units in brackets).

This module belongs to the plant: it reads the plant's hidden state (the thermal state, the
last step's true operating point and degradation), which nothing on the twin's side may do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.plant.health import (
    CAVITATION_ONSET_RATIO,
    DE_TO_NDE_BEARING,
    IDLE_VIBRATION_MM_S,
    NDE_WEIGHTS,
    SEAL_REFERENCE_PA,
    cavitation_head_drop,
    hydraulic_excitation,
    recirculation_knee,
    resonance_amplification,
    seal_leak_m3s,
)
from pumptwin.plant.simulator import Plant, ambient_c
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.inspection.routes import KINDS, THERMOGRAPHY_COLUMNS, VIBRATION_COLUMNS, VISUAL_COLUMNS

FloatArray = NDArray[np.float64]

ROUTE_KINDS = KINDS
"""The route frames, in the order `route_readings` returns them."""

DIRECTION_FACTORS: dict[str, float] = {"H": 1.0, "V": 0.85, "A": 0.6}
"""Reading in each direction over the horizontal (the online transmitter's direction)."""
MOTOR_FRAME_SHARE = 0.5
"""Share of the winding's rise over ambient seen on the motor frame's surface."""
SOURCE = "plant.rounds"
"""``source`` of simulated route records (a loader replaces it with the file name)."""

SEAL_LEVELS_L_H = (1.0, 5.0, 20.0, 50.0)
"""Seal weep (L/h at 1 bar g) from which the seal finding is severity 1, 2, 3, 4."""
STRAINER_LEVELS_BAR = (0.2, 0.35, 0.7, 1.0)
"""Strainer differential pressure (bar) for severity 1..4 (0.35 bar = 5 psi, the usual cleaning point)."""
CAVITATION_LEVELS = (0.15, 0.3, 0.6, 0.9)
"""Cavitation intensity (0..1) for severity 1..4 (audible crackle to gravel noise)."""
PERFORMANCE_LEVELS = (0.03, 0.05, 0.08, 0.11)
"""Head deficit at the running speed (fraction) for severity 1..4."""


class RoundsError(PumptwinError, ValueError):
    """A route visit that cannot be simulated; the message names the value."""


@dataclass(frozen=True, slots=True)
class RouteInstruments:
    """Accuracy of the route's instruments and inspectors.

    Attributes:
        vib_noise_rel: Standard deviation of the portable collector's relative error (-).
        vib_noise_abs_mm_s: Standard deviation of its absolute error, mm/s.
        camera_sd_k: Standard deviation of a thermography spot's error, K.
        reference_sd_k: Standard deviation of the reference (ambient) reading's error, K.
        perception_sd: Standard deviation of the log of an inspector's perceived over true quantity (-).
    """

    vib_noise_rel: float = 0.05
    vib_noise_abs_mm_s: float = 0.05
    camera_sd_k: float = 1.0
    reference_sd_k: float = 0.5
    perception_sd: float = 0.2

    def __post_init__(self) -> None:
        """Reject negative or non-finite errors."""
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise RoundsError(f"route instrument setting {name} must be a finite number >= 0, got {value}")


# --------------------------------------------------------------------------------------------
# The truth at the plant's current time
# --------------------------------------------------------------------------------------------


def _bands(  # noqa: PLR0913 - the plant's vibration causes
    speed: FloatArray,
    flow_ratio: FloatArray,
    running: NDArray[np.bool_],
    weights: tuple[float, float, float, float],
    bearing: FloatArray,
    cavitation: FloatArray,
    wear: FloatArray,
    plant: Plant,
) -> dict[str, FloatArray]:
    """True vibration bands (mm/s) of one bearing of every pump; their root sum of squares is the overall."""
    p = plant.params
    s = np.where(running, np.maximum(speed, 0.0), 0.0)
    s2 = s * s
    w_imb, w_mis, w_hyd, w_cav = weights
    imb = w_imb * p.imbalance_mm_s * s2 * (1.0 + 10.0 * wear)
    mis = w_mis * p.misalignment_mm_s * s
    hyd = w_hyd * p.hydraulic_mm_s * s2 * hydraulic_excitation(flow_ratio, p.low_flow_asymmetry)
    res = w_hyd * p.resonance_mm_s * s2 * (resonance_amplification(s, p.critical_speed, p.damping) - 1.0)
    rec = w_hyd * p.recirculation_mm_s * s2 * recirculation_knee(flow_ratio, p.recirculation_onset)
    brg = (0.15 + 7.0 * bearing * bearing) * s
    cav = 4.0 * w_cav * cavitation * s2
    idle = np.where(running, 0.0, IDLE_VIBRATION_MM_S)
    on = running.astype(np.float64)
    return {
        "band_1x_mm_s": np.hypot(imb, res) * on,
        "band_2x_mm_s": mis * on,
        "band_low_mm_s": np.hypot(np.hypot(hyd, rec) * on, idle),
        "band_high_mm_s": np.hypot(brg, cav) * on,
    }


def _cavitation_drop(intensity: FloatArray) -> FloatArray:
    """Head drop of cavitation at an intensity c (the NPSH ratio is 1.3 - 0.5 c below full intensity)."""
    c = np.asarray(intensity, dtype=np.float64)
    return np.where(c > 0, cavitation_head_drop(CAVITATION_ONSET_RATIO - 0.5 * c), 0.0)


def true_condition(plant: Plant) -> pd.DataFrame:
    """The true condition of every pump at ``plant.now``, as instruments on the spot would sense it.

    Args:
        plant: A plant that has run at least one step.

    Returns:
        One row per pump: ``asset, station, running, speed, flow_ratio``, the true vibration
        bands per bearing (``de_band_1x_mm_s`` ...) and overall (``de_overall_mm_s``,
        ``nde_overall_mm_s``), ``bearing_de_c, bearing_nde_c, winding_c, ambient_c`` (degC),
        ``seal_leak_l_h`` (at 1 bar g), ``strainer_dp_bar`` (local gauge), ``cavitation`` (0..1),
        ``head_deficit`` (fraction, impeller wear and cavitation).

    Raises:
        RoundsError: The plant has not run yet.
    """
    truth = plant._truth_pumps  # noqa: SLF001 - the plant's own hidden state
    thermal = plant._health  # noqa: SLF001
    if not truth or thermal is None:
        raise RoundsError("the plant has not run yet: advance it before a route visit")
    _, cols = truth[-1]
    last = {name: np.asarray(values[-1], dtype=np.float64) for name, values in cols.items()}
    running = last["running"] > 0.5  # noqa: PLR2004 - a stored boolean
    reg = plant.registry
    flow_ratio = np.where(running, last["percent_bep"] / 100.0, 0.0)
    wear = last["impeller_wear"]
    de = _bands(
        last["speed"], flow_ratio, running, (1.0, 1.0, 1.0, 1.0), last["bearing_de"], last["cavitation"], wear, plant
    )
    nde_damage = last["bearing_nde"] + DE_TO_NDE_BEARING * last["bearing_de"]
    nde = _bands(last["speed"], flow_ratio, running, NDE_WEIGHTS, nde_damage, last["cavitation"], wear, plant)
    station_ambient = ambient_c(
        np.array([plant.elapsed_s]),
        plant._clock_s,  # noqa: SLF001
        plant.scenario.ambient,
        plant._station_offset,  # noqa: SLF001
        plant.scenario.seed,
    )[0]
    amb = station_ambient[plant._pump_station]  # noqa: SLF001
    seal = seal_leak_m3s(plant.params.seal_leak_m3s, last["seal_leak_m3h"] / 3600.0, SEAL_REFERENCE_PA, 0.0)
    bep = np.array([p.bep_flow_m3s for p in reg.pumps])
    q = np.maximum(last["flow_m3h"], 0.0) / 3600.0
    clean_bar = plant._clean_dp / 1e5  # noqa: SLF001
    strainer = np.where(running, (clean_bar + last["strainer_dp_bar"]) * (q / bep) ** 2, 0.0)
    frame: dict[str, object] = {
        "asset": [p.name for p in reg.pumps],
        "station": [p.station for p in reg.pumps],
        "running": running,
        "speed": np.where(running, last["speed"], 0.0),
        "flow_ratio": flow_ratio,
    }
    for prefix, bands in (("de", de), ("nde", nde)):
        for name, values in bands.items():
            frame[f"{prefix}_{name}"] = values
        frame[f"{prefix}_overall_mm_s"] = np.sqrt(sum(v * v for v in bands.values()))
    frame.update(
        {
            "bearing_de_c": np.asarray(thermal.bearing_de_c, dtype=np.float64),
            "bearing_nde_c": np.asarray(thermal.bearing_nde_c, dtype=np.float64),
            "winding_c": np.asarray(thermal.winding_c, dtype=np.float64),
            "ambient_c": amb,
            "seal_leak_l_h": seal * 3.6e6,
            "strainer_dp_bar": strainer,
            "cavitation": np.where(running, last["cavitation"], 0.0),
            "head_deficit": np.where(
                running, 1.0 - (1.0 - wear) ** 2 * (1.0 - _cavitation_drop(last["cavitation"])), 0.0
            ),
        }
    )
    return pd.DataFrame(frame)


# --------------------------------------------------------------------------------------------
# Route readings
# --------------------------------------------------------------------------------------------


def level_of(value: float, levels: Sequence[float]) -> int:
    """Severity 0..len(levels): how many of the ascending ``levels`` ``value`` reaches."""
    return int(sum(value >= lv for lv in levels)) if math.isfinite(value) else 0


def _vibration_rows(row: pd.Series, ts: pd.Timestamp, rng: np.random.Generator, inst: RouteInstruments) -> list[dict]:
    out: list[dict] = []
    bands = ("band_low_mm_s", "band_1x_mm_s", "band_2x_mm_s", "band_high_mm_s")
    for point in ("DE", "NDE"):
        prefix = point.lower()
        for direction, factor in DIRECTION_FACTORS.items():
            true = np.array([float(row[f"{prefix}_{b}"]) * factor for b in bands])
            noisy = true * (1.0 + rng.normal(0.0, inst.vib_noise_rel, true.size))
            noisy = np.abs(noisy + rng.normal(0.0, inst.vib_noise_abs_mm_s / 2.0, true.size))
            overall_true = float(np.sqrt(np.sum(true * true)))
            overall = overall_true * (1.0 + rng.normal(0.0, inst.vib_noise_rel)) + rng.normal(
                0.0, inst.vib_noise_abs_mm_s
            )
            out.append(
                {
                    "ts": ts,
                    "asset": row["asset"],
                    "point": point,
                    "direction": direction,
                    "overall_mm_s": max(overall, 0.0),
                    **dict(zip(bands, noisy.tolist(), strict=True)),
                }
            )
    return out


def _thermography_rows(
    row: pd.Series, ts: pd.Timestamp, rng: np.random.Generator, inst: RouteInstruments
) -> list[dict]:
    amb = float(row["ambient_c"])
    spots = {
        "DE bearing": float(row["bearing_de_c"]),
        "NDE bearing": float(row["bearing_nde_c"]),
        "motor": amb + MOTOR_FRAME_SHARE * (float(row["winding_c"]) - amb),
    }
    out: list[dict] = []
    for component, true in spots.items():
        spot = true + rng.normal(0.0, inst.camera_sd_k)
        reference = amb + rng.normal(0.0, inst.reference_sd_k)
        out.append(
            {
                "ts": ts,
                "asset": row["asset"],
                "component": component,
                "spot_c": spot,
                "reference_c": reference,
                "delta_k": spot - reference,
            }
        )
    return out


def _visual_rows(row: pd.Series, ts: pd.Timestamp, rng: np.random.Generator, inst: RouteInstruments) -> list[dict]:
    running = bool(row["running"])
    checks: list[tuple[str, float, Sequence[float], str, bool]] = [
        ("mechanical seal", float(row["seal_leak_l_h"]), SEAL_LEVELS_L_H, "seal weep {v:.1f} L/h", True),
        ("suction strainer", float(row["strainer_dp_bar"]), STRAINER_LEVELS_BAR, "strainer dP {v:.2f} bar", running),
        ("pump noise", float(row["cavitation"]), CAVITATION_LEVELS, "cavitation noise", running),
        ("performance", float(row["head_deficit"]), PERFORMANCE_LEVELS, "head {p:.0f} % below curve", running),
    ]
    out: list[dict] = []
    stamp = ts.strftime("%Y%m%dT%H%M")
    for i, (check, true, levels, text, judged) in enumerate(checks):
        perceived = true * math.exp(rng.normal(0.0, inst.perception_sd)) if judged else 0.0
        severity = level_of(perceived, levels) if judged else 0
        finding = f"{check}: " + (text.format(v=perceived, p=100.0 * perceived) if severity else "no finding")
        out.append(
            {
                "ts": ts,
                "asset": row["asset"],
                "finding": finding if judged else f"{check}: not judged (pump stopped)",
                "severity": severity,
                "method": "visual",
                "photo_ref": f"IMG_{row['asset'].replace('.', '_')}_{stamp}_{i + 1}.jpg" if severity else "",
            }
        )
    return out


def _frame(rows: list[dict], columns: Sequence[str], collector: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=list(columns))
    df["collector"] = collector
    df["source"] = SOURCE
    if "ts" in df.columns:
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.loc[:, list(columns)].reset_index(drop=True)


def route_readings(
    plant: Plant,
    assets: Sequence[str],
    ts: pd.Timestamp,
    rng: np.random.Generator,
    *,
    instruments: RouteInstruments | None = None,
    collector: str = "route",
) -> dict[str, pd.DataFrame]:
    """Route readings of a visit to ``assets`` at the plant's current time.

    Args:
        plant: The plant, advanced to the visit (``ts`` within one step of ``plant.now``).
        assets: Pumps visited (``STATION.ASSET``).
        ts: Time written on the records (UTC).
        rng: Source of the instruments' errors.
        instruments: Instrument and inspector accuracy (default `RouteInstruments`).
        collector: Name of the collector or inspector.

    Returns:
        ``{"vibration": ..., "thermography": ..., "visual": ...}`` in the canonical columns:
        6 vibration rows (DE/NDE x H/V/A), 3 thermography rows and 4 visual rows per asset.

    Raises:
        RoundsError: An unknown asset, or a time away from the plant's.
    """
    inst = instruments or RouteInstruments()
    when = pd.Timestamp(ts)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    if abs((when - plant.now).total_seconds()) > plant.step_s:
        raise RoundsError(f"a visit at {when} must be at the plant's time {plant.now} (visits read the plant now)")
    truth = true_condition(plant).set_index("asset", drop=False)
    unknown = [a for a in assets if a not in truth.index]
    if unknown:
        raise RoundsError(f"assets {unknown} are not pumps of the plant")
    vib: list[dict] = []
    thermo: list[dict] = []
    visual: list[dict] = []
    for asset in assets:
        row = truth.loc[asset]
        vib += _vibration_rows(row, when, rng, inst)
        thermo += _thermography_rows(row, when, rng, inst)
        visual += _visual_rows(row, when, rng, inst)
    return {
        "vibration": _frame(vib, VIBRATION_COLUMNS, collector),
        "thermography": _frame(thermo, THERMOGRAPHY_COLUMNS, collector),
        "visual": _frame(visual, VISUAL_COLUMNS, collector),
    }


# --------------------------------------------------------------------------------------------
# Collector exports
# --------------------------------------------------------------------------------------------

EXPORT_HEADERS: dict[str, dict[str, str]] = {
    "vibration": {
        "asset": "Asset",
        "point": "Point",
        "direction": "Direction",
        "overall_mm_s": "Overall (mm/s)",
        "band_low_mm_s": "Band Low (mm/s)",
        "band_1x_mm_s": "Band 1x (mm/s)",
        "band_2x_mm_s": "Band 2x (mm/s)",
        "band_high_mm_s": "Band High (mm/s)",
        "ts": "Date",
        "collector": "Collector",
    },
    "thermography": {
        "asset": "Asset",
        "component": "Component",
        "spot_c": "Spot (degC)",
        "reference_c": "Reference (degC)",
        "delta_k": "Delta (K)",
        "ts": "Date",
        "collector": "Collector",
    },
    "visual": {
        "asset": "Asset",
        "finding": "Finding",
        "severity": "Severity",
        "method": "Method",
        "photo_ref": "Photo",
        "ts": "Date",
        "collector": "Collector",
    },
}
"""Vendor-style column headers of each export, by canonical column (units in brackets)."""


def export_route_files(frames: Mapping[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write route frames as a collector's CSV exports, one file per kind: ``<kind>_<first ts>.csv``.

    Dates are written as ISO 8601 UTC (``2024-03-01T08:00:00Z``); numbers with 3 decimals.

    Args:
        frames: Route frames by kind (``vibration``, ``thermography``, ``visual``); empty ones are skipped.
        folder: Output folder (created).

    Returns:
        The files written.

    Raises:
        RoundsError: An unknown kind or a frame missing canonical columns.
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind, frame in frames.items():
        if kind not in EXPORT_HEADERS:
            raise RoundsError(f"unknown route kind {kind!r}; use one of {ROUTE_KINDS}")
        headers = EXPORT_HEADERS[kind]
        missing = sorted(set(headers) - set(frame.columns))
        if missing:
            raise RoundsError(f"{kind} frame lacks columns {missing}")
        if frame.empty:
            continue
        df = frame.loc[:, list(headers)].copy()
        stamps = pd.to_datetime(df["ts"], utc=True)
        df["ts"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        path = out_dir / f"{kind}_{stamps.min().strftime('%Y%m%dT%H%M')}.csv"
        df.rename(columns=headers).to_csv(path, index=False, float_format="%.3f")
        written.append(path)
    return written
