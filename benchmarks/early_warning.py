"""Benchmark: early warning of pump failures on simulated run-to-failure histories, against DCS alarms.

``python -m benchmarks.early_warning`` simulates one line of the reference pipeline (two stations,
three pumps each, two on duty) at 60 s steps:

- **Run-to-failure histories**: for every pump degradation mode (`pumptwin.plant.health.PUMP_MODES`)
  and every seed, one duty pump degrades from ``ONSET_S`` (7 days of healthy running first) to
  functional failure 8 to 12 days later (drawn from the seed); the run ends a day after failure.
  The faulty pump rotates between duty pumps with the seed.
- **Healthy runs** (other seeds, ``HEALTHY_DAYS`` long, no fault) measure false alarms.

Per run: plant readings -> `features.transforms.pump_features` (10-minute rows) -> the production
pump detector, exactly as the ``train`` flow trains and registers it: `models.fleet.FleetDetector`
over `models.monitoring.build_pump_detector` with `models.monitoring.add_detector_inputs` (nine
tolerance-scaled physics inputs, head and efficiency residuals relative to the running sister
pumps of the station, against a drift-aware straight-line baseline; a two-sided CUSUM, threshold
calibrated on the held-out last quarter of the training rows to ``TARGET_FAR``, never below the
CUSUM's own boundary), trained per duty pump on its own rows from day 1 to day 6 (the first day
fills the 24 h windows). Variants (`VARIANTS`): ``pump`` (the headline) and
``constant_baseline`` (the same with the training median as baseline, to show what the
drift-aware baseline buys); ``--autoencoder`` adds ``pump_autoencoder``.

The detector's design (straight-line baseline with its prediction band, sister-pump reference for
the head and efficiency residuals) was chosen on the seeds `TUNING_SEEDS` and
`TUNING_HEALTHY_SEEDS`; the figures are reported on other seeds (`SEEDS`, `HEALTHY_SEEDS`).

An alarm must persist ``MIN_RUN`` rows (1 h). Only rows where the pump ran the whole hour are
scored. The warning is the first alarm that begins at or after the onset (an alarm already
standing at the onset is a false alarm, not a warning).

The conventional alarm is what a DCS computes from the raw tags (good-quality samples only, a
limit must hold for ``CONFIRM_SAMPLES`` consecutive samples of a tag, the usual on-delay that
ignores a single spike), or a protection trip of the pump, whichever comes first:

- vibration velocity RMS at either bearing >= 7.1 mm/s: the zone C/D boundary of ISO 10816-3 for
  group 1 machines (300 kW to 50 MW; these pumps draw about 0.85 MW) on rigid foundations, the
  level at which vibration is deemed severe enough to damage the machine;
- bearing temperature >= 95 degC: a common trip setting for rolling-element bearings (alarm
  about 85 degC; the lubricant and cage limit lies a little above);
- winding temperature >= 155 degC: the limiting temperature of class F insulation (IEC 60034-1),
  the usual RTD trip setting of a class F motor;
- a ``trip`` in the plant's operations log (its protection trips a pump at functional failure
  for the modes that trip).

Reported per mode and overall: detection rate (warning between onset and functional failure),
median and quartiles of the lead time before functional failure and before the threshold alarm
(cases where the threshold alarm never fired are listed separately, with their lead before
failure), and false alarms per asset-month: alarm episodes (runs of alarming rows, runs less than
``MERGE_GAP_S`` apart counted once) on the duty pumps of the healthy runs after training, and
separately on the pumps without a fault in the faulty runs before the fault's failure. Targets:
median warning >= 24 h ahead of the threshold alarm, <= 0.1 false alarms per asset-month.
Figures go to ``<PUMPTWIN_HOME>/bench/early_warning.json``. ``--no-drift`` repeats the benchmark
with the instruments' linear drift turned off (``sensors.drift_fraction = 0``; by default 5 % of
the analogue tags drift, `pumptwin.plant.sensors.SensorConfig`), to show how much of the false-alarm
rate is instrument drift, and writes ``early_warning_no_drift.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.features.transforms import pump_features
from pumptwin.models.evaluation import MONTH_S, alarm_episodes, false_alarms_per_asset_month, first_alarm, lead_time_s
from pumptwin.models.fleet import POOLED, FleetDetector
from pumptwin.models.monitoring import (
    DETECTOR_COLUMNS,
    INPUTS,
    RUNNING_COLUMN,
    MonitorConfig,
    add_detector_inputs,
    build_pump_detector,
    describe,
)
from pumptwin.plant.health import PUMP_MODES
from pumptwin.plant.scenario import Scenario, scenario_from_dict
from pumptwin.plant.simulator import GroundTruth, Plant

DAY_S = 86_400.0
START = "2024-03-01T00:00:00Z"
TRAIN_START_S = 1 * DAY_S
"""Training rows start here: the 24 h feature windows are full."""
TRAIN_END_S = 6 * DAY_S
"""Training rows end here (five days of healthy running per pump)."""
ONSET_S = 7 * DAY_S
"""Fault onset: one healthy day is monitored after training."""
LIFE_RANGE_S = (8 * DAY_S, 12 * DAY_S)
"""Onset-to-failure time, drawn per run."""
AFTER_FAILURE_S = 1 * DAY_S
HEALTHY_DAYS = 40.0
SEEDS = (4, 5, 6)
HEALTHY_SEEDS = (114, 115, 116)
"""Seeds reported: never used to choose the detector's settings."""
TUNING_SEEDS = (1, 2, 3)
TUNING_HEALTHY_SEEDS = (111, 112, 113)
"""Seeds on which the detector's settings were chosen (excluded from the report)."""
DUTY_PUMPS = ("PS01.P1", "PS01.P2", "PS02.P1", "PS02.P2")
"""Pumps on duty at the start of the reference line (P3 is each station's standby)."""

VIB_LIMIT_MM_S = 7.1
"""ISO 10816-3, group 1, rigid foundation: zone C/D boundary (mm/s RMS)."""
BEARING_TRIP_C = 95.0
"""Rolling-element bearing temperature trip (degC)."""
WINDING_TRIP_C = 155.0
"""Class F insulation limit, winding RTD trip (degC)."""
CONFIRM_SAMPLES = 2
"""Consecutive good samples beyond a limit before the DCS alarms."""
THRESHOLD_LIMITS: dict[str, float] = {
    "VIB_DE_RMS": VIB_LIMIT_MM_S,
    "VIB_NDE_RMS": VIB_LIMIT_MM_S,
    "BRG_DE_TEMP": BEARING_TRIP_C,
    "BRG_NDE_TEMP": BEARING_TRIP_C,
    "MOTOR_WINDING_TEMP": WINDING_TRIP_C,
}
"""Limit per measure of the conventional alarm."""

CADENCE_S = 600.0
"""Feature row spacing, s."""
TARGET_FAR = 0.005
MIN_RUN = 6
MERGE_GAP_S = 6 * 3600.0
"""Alarm runs closer than this are one episode (an operator sees one standing alarm)."""
RUNNING_FRACTION = 0.99
MIN_TRAIN_ROWS = 100
"""Fewest training rows for a pump's own model (a pump below it is not monitored here)."""
TARGET_LEAD_S = 24 * 3600.0
TARGET_FALSE_PER_ASSET_MONTH = 0.1


@dataclass(frozen=True, slots=True)
class Case:
    """One run-to-failure history.

    Attributes:
        mode: Degradation mode.
        seed: Scenario seed.
        target: Faulty pump.
        life_s: Onset to functional failure, s.
    """

    mode: str
    seed: int
    target: str
    life_s: float


def cases(modes: Sequence[str], seeds: Sequence[int]) -> list[Case]:
    """Every mode x seed, the faulty duty pump rotating and the life drawn from the seed."""
    out = []
    for i, seed in enumerate(seeds):
        rng = np.random.default_rng([seed, 7])
        for j, mode in enumerate(modes):
            life = float(rng.uniform(*LIFE_RANGE_S))
            out.append(Case(mode, seed, DUTY_PUMPS[(i + j) % len(DUTY_PUMPS)], round(life / 3600.0) * 3600.0))
    return out


def fault_scenario(case: Case, drift: bool = True) -> Scenario:
    """The scenario of a case: healthy until `ONSET_S`, functional failure ``life_s`` later.

    ``drift=False`` turns off the instruments' linear drift (a diagnostic run).
    """
    failure_s = ONSET_S + case.life_s
    return scenario_from_dict(
        {
            **_sensors(drift),
            "name": f"ew_{case.mode}_{case.seed}",
            "start": START,
            "duration": failure_s + AFTER_FAILURE_S,
            "step": 60,
            "seed": case.seed,
            "fleet": {"network": "reference", "lines": 1},
            "operations": {"speed": 0.95, "daily_swing": 0.03, "nomination": "4h"},
            "faults": [{"mode": case.mode, "target": case.target, "onset": ONSET_S, "failure": failure_s}],
        }
    )


def _sensors(drift: bool) -> dict[str, Any]:
    return {} if drift else {"sensors": {"drift_fraction": 0.0}}


def healthy_scenario(seed: int, days: float, drift: bool = True) -> Scenario:
    """A fault-free run of ``days`` days (``drift=False``: no instrument drift)."""
    return scenario_from_dict(
        {
            **_sensors(drift),
            "name": f"ew_healthy_{seed}",
            "start": START,
            "duration": days * DAY_S,
            "step": 60,
            "seed": seed,
            "fleet": {"network": "reference", "lines": 1},
            "operations": {"speed": 0.95, "daily_swing": 0.03, "nomination": "4h"},
        }
    )


def threshold_alarm(
    readings: pd.DataFrame,
    asset: str,
    limits: dict[str, float],
    confirm: int = CONFIRM_SAMPLES,
    trips: Sequence[pd.Timestamp] = (),
) -> tuple[pd.Timestamp | None, str]:
    """First conventional (DCS) alarm of a pump: a limit held for ``confirm`` samples, or a trip.

    Args:
        readings: Tag table ``tag, ts, value, quality``.
        asset: Pump ``PS01.P1``.
        limits: Upper limit per measure (``VIB_DE_RMS``...), in the tag's unit.
        confirm: Consecutive good samples of one tag at or above its limit.
        trips: Protection trip times of the pump.

    Returns:
        ``(time, reason)``: the earliest alarm (the measure, or ``trip``), or ``(None, "")``.
    """
    best: tuple[pd.Timestamp | None, str] = (None, "")
    for measure, limit in limits.items():
        rows = readings[(readings["tag"] == f"{asset}.{measure}") & (readings["quality"] == "good")]
        if rows.empty:
            continue
        rows = rows.sort_values("ts")
        above = (rows["value"].to_numpy(dtype=float) >= limit).astype(np.int64)
        if confirm > 1:
            run = np.convolve(above, np.ones(confirm, dtype=np.int64), mode="full")[: above.size]
            hit = np.flatnonzero(run >= confirm)
        else:
            hit = np.flatnonzero(above)
        if hit.size:
            ts = pd.Timestamp(rows["ts"].iloc[int(hit[0])])
            if best[0] is None or ts < best[0]:
                best = (ts, measure)
    for trip in trips:
        ts = pd.Timestamp(trip)
        if best[0] is None or ts < best[0]:
            best = (ts, "trip")
    return best


VARIANTS: dict[str, MonitorConfig] = {
    "pump": MonitorConfig(target_far=TARGET_FAR, min_run=MIN_RUN),
    "constant_baseline": MonitorConfig(target_far=TARGET_FAR, min_run=MIN_RUN, trend=False),
}
"""Detectors measured: ``pump`` (the headline, `models.monitoring.build_pump_detector` as the train
flow builds it) and the same detector with a constant (median) baseline instead of the drift-aware
line. ``--autoencoder`` adds ``pump_autoencoder`` (the autoencoder as a second member)."""
AUTOENCODER_VARIANT = ("pump_autoencoder", MonitorConfig(target_far=TARGET_FAR, min_run=MIN_RUN, autoencoder=True))


def fleet_detector(config: MonitorConfig) -> FleetDetector:
    """The unfitted fleet detector of a variant: per-pump clones of the production pump detector."""
    return FleetDetector(
        build_pump_detector(config),
        DETECTOR_COLUMNS,
        running_column=RUNNING_COLUMN,
        running_fraction=RUNNING_FRACTION,
        min_rows=MIN_TRAIN_ROWS,
        inputs=add_detector_inputs,
    )


def score_run(
    features: pd.DataFrame, pumps: Sequence[str], start: pd.Timestamp, config: MonitorConfig
) -> dict[str, pd.DataFrame]:
    """Train the fleet detector on days 1-6 and score the monitored pumps' later rows.

    Rows of the first day (partly filled 24 h windows) never reach the detector: a causal
    statistic would carry their transient into every later row.

    Args:
        features: `pump_features` output of one run.
        pumps: Pumps monitored.
        start: Scenario start.
        config: Detector settings.

    Returns:
        Per pump with its own model: ``ts``, ``score`` (1 is the alarm threshold) and ``alarm``
        (persistent ``MIN_RUN`` rows) for the rows after training where the pump ran.
    """
    train_lo, train_hi = start + pd.Timedelta(seconds=TRAIN_START_S), start + pd.Timedelta(seconds=TRAIN_END_S)
    # Every pump's rows go in, so a standby that starts is a sister of the pump it joins.
    rows = features[features["event_timestamp"] >= train_lo].reset_index(drop=True)
    fleet = fleet_detector(config).fit(rows[rows["event_timestamp"] < train_hi])
    scored = fleet.score(rows)
    scored = scored[scored["pump_id"].isin(list(pumps)) & scored["score"].notna() & (scored["model"] != POOLED)]
    out: dict[str, pd.DataFrame] = {}
    for pump, group in scored.groupby("pump_id", sort=True):
        g = group.sort_values("event_timestamp")
        g = g[g["event_timestamp"] >= train_hi]
        out[str(pump)] = pd.DataFrame(
            {"ts": g["event_timestamp"].to_numpy(), "score": g["score"].to_numpy(), "alarm": g["alarm"].to_numpy()}
        )
    return out


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, quartiles, min and max of the finite values (None where there are none), and their count."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0, "median": None, "q25": None, "q75": None, "min": None, "max": None}
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {"n": int(v.size), "median": float(med), "q25": float(q25), "q75": float(q75),
            "min": float(v.min()), "max": float(v.max())}  # fmt: skip


def episodes_and_time(scored: pd.DataFrame, until: pd.Timestamp | None = None) -> tuple[int, float]:
    """Alarm episodes and monitored time (rows x 10 min) of one pump's scored rows before ``until``."""
    rows = scored if until is None else scored[scored["ts"] < until]
    if rows.empty:
        return 0, 0.0
    episodes = alarm_episodes(rows["ts"], rows["alarm"].to_numpy(), merge_gap_s=MERGE_GAP_S)
    return len(episodes), len(rows) * CADENCE_S


def evaluate_case(
    case: Case, scored: dict[str, pd.DataFrame], truth: GroundTruth, dcs: tuple[pd.Timestamp | None, str]
) -> dict[str, Any]:
    """Warning, lead times and false alarms of one history from the scored pumps."""
    label = truth.labels.iloc[0]
    onset, failure = pd.Timestamp(label["onset_ts"]), pd.Timestamp(label["failure_ts"])
    dcs_ts, dcs_reason = dcs
    target = scored.get(case.target)
    warn = None if target is None else first_alarm(target["ts"], target["alarm"].to_numpy(), after=onset, new_only=True)
    detected = warn is not None and warn <= failure
    pre_onset = (0, 0.0) if target is None else episodes_and_time(target, until=onset)
    others = [episodes_and_time(s, until=failure) for p, s in scored.items() if p != case.target]
    return {
        "mode": case.mode,
        "seed": case.seed,
        "target": case.target,
        "onset": onset.isoformat(),
        "failure": failure.isoformat(),
        "life_h": case.life_s / 3600.0,
        "warning": None if warn is None else warn.isoformat(),
        "detected": bool(detected),
        "lead_before_failure_h": lead_time_s(warn if detected else None, failure) / 3600.0,
        "threshold_alarm": None if dcs_ts is None else dcs_ts.isoformat(),
        "threshold_reason": dcs_reason,
        "threshold_before_failure_h": lead_time_s(dcs_ts, failure) / 3600.0,
        "lead_before_threshold_h": lead_time_s(warn if detected else None, dcs_ts) / 3600.0,
        "false_episodes_pre_onset": pre_onset[0],
        "monitored_pre_onset_s": pre_onset[1],
        "false_episodes_other_pumps": sum(e for e, _ in others),
        "monitored_other_pumps_s": sum(t for _, t in others),
    }


def run_case(case: Case, variants: dict[str, MonitorConfig], drift: bool = True) -> dict[str, dict[str, Any]]:
    """Simulate one history; per detector variant, its warning, the threshold alarm and false alarms."""
    scenario = fault_scenario(case, drift)
    plant = Plant(scenario)
    readings = plant.run()
    truth = plant.ground_truth()
    features = pump_features(readings, plant.registry, plant.network, cadence_s=CADENCE_S)
    ops = truth.operations
    trips = ops[(ops["action"] == "trip") & ops["pumps"].str.split(",").apply(lambda p: case.target in p)]["ts"]
    dcs = threshold_alarm(readings, case.target, THRESHOLD_LIMITS, trips=list(trips))
    return {
        v: evaluate_case(case, score_run(features, DUTY_PUMPS, scenario.start, c), truth, dcs)
        for v, c in variants.items()
    }


def run_healthy(
    seed: int, days: float, variants: dict[str, MonitorConfig], drift: bool = True
) -> dict[str, dict[str, Any]]:
    """Simulate a fault-free run; per variant, alarm episodes on its duty pumps after training."""
    scenario = healthy_scenario(seed, days, drift)
    plant = Plant(scenario)
    readings = plant.run()
    features = pump_features(readings, plant.registry, plant.network, cadence_s=CADENCE_S)
    out = {}
    for v, c in variants.items():
        per_pump = {p: episodes_and_time(s) for p, s in score_run(features, DUTY_PUMPS, scenario.start, c).items()}
        out[v] = {
            "seed": seed,
            "days": days,
            "episodes": {p: e for p, (e, _) in per_pump.items()},
            "episodes_total": sum(e for e, _ in per_pump.values()),
            "monitored_s": sum(t for _, t in per_pump.values()),
        }
    return out


def summarise(results: list[dict[str, Any]], healthy: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-mode and overall figures from the case and healthy-run results."""

    def block(rows: list[dict[str, Any]]) -> dict[str, Any]:
        fired = [r for r in rows if r["threshold_alarm"] is not None]
        never = [r for r in rows if r["threshold_alarm"] is None]
        return {
            "cases": len(rows),
            "detected": sum(r["detected"] for r in rows),
            "detection_rate": sum(r["detected"] for r in rows) / len(rows) if rows else None,
            "lead_before_failure_h": spread([r["lead_before_failure_h"] for r in rows]),
            "lead_before_threshold_h": spread([r["lead_before_threshold_h"] for r in fired]),
            "threshold_fired": len(fired),
            "threshold_before_failure_h": spread([r["threshold_before_failure_h"] for r in fired]),
            "threshold_never_fired": len(never),
            "lead_before_failure_when_threshold_never_fired_h": spread([r["lead_before_failure_h"] for r in never]),
        }

    modes = sorted({r["mode"] for r in results})
    healthy_eps = sum(h["episodes_total"] for h in healthy)
    healthy_s = sum(h["monitored_s"] for h in healthy)
    other_eps = sum(r["false_episodes_other_pumps"] + r["false_episodes_pre_onset"] for r in results)
    other_s = sum(r["monitored_other_pumps_s"] + r["monitored_pre_onset_s"] for r in results)
    overall = block(results)
    far = false_alarms_per_asset_month(healthy_eps, healthy_s) if healthy_s > 0 else None
    return {
        "per_mode": {m: block([r for r in results if r["mode"] == m]) for m in modes},
        "overall": overall,
        "false_alarms": {
            "healthy_runs": {
                "episodes": healthy_eps,
                "asset_months": healthy_s / MONTH_S,
                "per_asset_month": far,
            },
            "healthy_pumps_in_faulty_runs": {
                "episodes": other_eps,
                "asset_months": other_s / MONTH_S,
                "per_asset_month": false_alarms_per_asset_month(other_eps, other_s) if other_s > 0 else None,
            },
        },
        "targets": {
            "median_lead_before_threshold_h": TARGET_LEAD_S / 3600.0,
            "false_alarms_per_asset_month": TARGET_FALSE_PER_ASSET_MONTH,
            "lead_met": overall["lead_before_threshold_h"]["median"] is not None
            and overall["lead_before_threshold_h"]["median"] >= TARGET_LEAD_S / 3600.0,
            "false_alarms_met": far is not None and far <= TARGET_FALSE_PER_ASSET_MONTH,
        },
    }


def _fmt(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return f"{s['median']:.1f} [{s['q25']:.1f}, {s['q75']:.1f}] n={s['n']}"


def print_table(summary: dict[str, Any]) -> None:
    """Print the per-mode table and the false-alarm figures."""
    head = f"{'mode':<18}{'detected':>9}  {'lead before failure h':<28}{'lead before threshold h':<28}{'DCS never':>9}"
    print(head)
    print("-" * len(head))
    for mode, b in [*summary["per_mode"].items(), ("overall", summary["overall"])]:
        print(
            f"{mode:<18}{b['detected']:>4}/{b['cases']:<4}  {_fmt(b['lead_before_failure_h']):<28}"
            f"{_fmt(b['lead_before_threshold_h']):<28}{b['threshold_never_fired']:>9}"
        )
    for name, fa in summary["false_alarms"].items():
        rate = "-" if fa["per_asset_month"] is None else f"{fa['per_asset_month']:.3f}"
        print(
            f"false alarms, {name}: {fa['episodes']} episodes in {fa['asset_months']:.1f} asset-months"
            f" = {rate}/asset-month"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--healthy-seeds", type=int, nargs="+", default=list(HEALTHY_SEEDS))
    parser.add_argument("--healthy-days", type=float, default=HEALTHY_DAYS)
    parser.add_argument("--modes", nargs="+", default=[m.value for m in PUMP_MODES])
    parser.add_argument(
        "--autoencoder", action="store_true", help="also measure the pump detector with the autoencoder member"
    )
    parser.add_argument(
        "--no-drift",
        action="store_true",
        help="diagnostic: instruments do not drift (writes early_warning_no_drift.json)",
    )
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    variants = dict(VARIANTS)
    if args.autoencoder:
        variants[AUTOENCODER_VARIANT[0]] = AUTOENCODER_VARIANT[1]
    names = list(variants)
    t0 = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for case in cases(args.modes, args.seeds):
        per_variant = run_case(case, variants, drift=not args.no_drift)
        for v, r in per_variant.items():
            results[v].append(r)
        r = per_variant[names[0]]
        print(
            f"{case.mode:<18} seed {case.seed} {case.target}:"
            f" warning {r['lead_before_failure_h']:.1f} h before failure,"
            f" DCS {r['threshold_reason'] or 'never'} {r['threshold_before_failure_h']:.1f} h before failure"
        )
    healthy: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for seed in args.healthy_seeds:
        for v, h in run_healthy(seed, args.healthy_days, variants, drift=not args.no_drift).items():
            healthy[v].append(h)
    seconds = time.perf_counter() - t0
    summaries = {v: summarise(results[v], healthy[v]) for v in variants}
    for v in names:
        print(f"\ndetector {v}: {describe(variants[v])}")
        print_table(summaries[v])
    print(f"\n{seconds:.0f} s")
    report = {
        "benchmark": "early_warning",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "headline": names[0],
        "seeds": {"faulty": list(args.seeds), "healthy": list(args.healthy_seeds)},
        "tuning_seeds": {"faulty": list(TUNING_SEEDS), "healthy": list(TUNING_HEALTHY_SEEDS)},
        "instrument_drift": not args.no_drift,
        "detectors": {v: describe(c) for v, c in variants.items()},
        "inputs": {name: {"tolerance": i.tolerance, "direction": i.direction} for name, i in INPUTS.items()},
        "limits": {
            "vibration_mm_s": VIB_LIMIT_MM_S,
            "bearing_c": BEARING_TRIP_C,
            "winding_c": WINDING_TRIP_C,
            "confirm_samples": CONFIRM_SAMPLES,
        },  # fmt: skip
        "merge_gap_s": MERGE_GAP_S,
        "seconds": seconds,
        "summary": summaries,
        "cases": results,
        "healthy_runs": healthy,
    }
    out_dir = Path(get_settings().bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ("early_warning_no_drift.json" if args.no_drift else "early_warning.json")
    out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"wrote {out}")
    head = summaries[names[0]]["targets"]
    return 0 if head["lead_met"] and head["false_alarms_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
