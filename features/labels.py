"""Training labels per (pump_id, event_timestamp) from fault records and maintenance records.

A fault record (``GroundTruth.labels`` of the plant simulator, or faults confirmed in the field)
has ``asset`` (``PS01.P1``), ``mode`` (``bearing_wear``...), ``onset_ts`` and ``failure_ts``
(functional failure). A fault is *active* from its onset until a maintenance record repairs it.
For each key row `pump_labels` gives:

- ``anomaly`` (int 0/1): a fault of the pump is active (onset <= ts);
- ``mode`` (str): ``"healthy"``, or the mode of the active fault that fails first;
- ``ttf_s`` (float): seconds from ts to the earliest functional failure among the active faults,
  0 once failed, NaN when no fault is developing (or its failure time is unknown);
- ``failed`` (bool): an active fault has reached its functional failure (ts >= failure_ts).

Leak records (asset ``LINEnn.<junction>`` or mode ``leak``) are not pump faults and are ignored.

Maintenance records (a DataFrame, e.g. read from a CSV with these columns):

==========  ========  ===============================================================
column      required  meaning
==========  ========  ===============================================================
asset       yes       pump ``STATION.ASSET``
ts          yes       when the work was done (UTC)
action      yes       ``repair`` or ``replace`` (ends faults), anything else (``inspect``)
                      only adds a finding
mode        no        the failure mode repaired or found; empty or ``healthy`` means
                      every mode of the pump
onset_ts    no        for a finding: when the fault began (adds a fault record)
failure_ts  no        for a finding: when it failed or would fail
==========  ========  ===============================================================

A ``repair``/``replace`` at time M ends every matching fault with onset <= M: from M on the pump
is healthy again (a later onset still counts). A record with ``onset_ts`` adds a fault of its
``mode`` (which must be given), so field findings become labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pumptwin.twin.errors import PumptwinError

HEALTHY = "healthy"
"""Mode label of a pump without an active fault."""
RESET_ACTIONS = frozenset({"repair", "replace"})
"""Maintenance actions that end a fault."""
LABEL_COLUMNS = ("anomaly", "mode", "ttf_s", "failed")
"""Columns `pump_labels` adds to the keys."""
_LEAK_MODE = "leak"
_LINE_PREFIX = "LINE"


class LabelError(PumptwinError, ValueError):
    """Invalid keys, fault or maintenance records; the message names the column or value."""


def _utc(values: pd.Series, what: str) -> pd.Series:
    try:
        return pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"{what}: not a timestamp column: {exc}") from None


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LabelError(f"{what}: missing columns {missing}")


def pump_faults(labels: pd.DataFrame, maintenance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pump fault intervals ``pump_id, mode, onset_ts, failure_ts, end_ts`` (end: repair or NaT).

    Args:
        labels: Fault records ``asset, mode, onset_ts, failure_ts`` (more columns are ignored).
        maintenance: Maintenance records (see the module docstring), or None.

    Raises:
        LabelError: Missing columns, unparseable times, or a finding without a mode.
    """
    _require(labels, ("asset", "mode", "onset_ts", "failure_ts"), "fault labels")
    faults = pd.DataFrame(
        {
            "pump_id": labels["asset"].astype(str).to_numpy(),
            "mode": labels["mode"].astype(str).to_numpy(),
            "onset_ts": _utc(labels["onset_ts"], "fault labels onset_ts").to_numpy(),
            "failure_ts": _utc(labels["failure_ts"], "fault labels failure_ts").to_numpy(),
        }
    )
    repairs = pd.DataFrame(columns=["pump_id", "mode", "ts"])
    if maintenance is not None and len(maintenance):
        _require(maintenance, ("asset", "ts", "action"), "maintenance records")
        m = maintenance.copy()
        m["ts"] = _utc(m["ts"], "maintenance ts")
        mode = m["mode"] if "mode" in m.columns else pd.Series(HEALTHY, index=m.index)
        m["mode"] = mode.fillna(HEALTHY).astype(str).str.strip().replace("", HEALTHY)
        if "onset_ts" in m.columns:
            found = m[m["onset_ts"].notna()]
            if (found["mode"] == HEALTHY).any():
                raise LabelError("maintenance records: a finding with onset_ts needs a failure mode")
            failure = found["failure_ts"] if "failure_ts" in found.columns else pd.Series(pd.NaT, index=found.index)
            added = pd.DataFrame(
                {
                    "pump_id": found["asset"].astype(str).to_numpy(),
                    "mode": found["mode"].to_numpy(),
                    "onset_ts": _utc(found["onset_ts"], "maintenance onset_ts").to_numpy(),
                    "failure_ts": _utc(failure, "maintenance failure_ts").to_numpy(),
                }
            )
            if len(added):
                faults = added if faults.empty else pd.concat([faults, added], ignore_index=True)
        action = m["action"].astype(str).str.strip().str.lower()
        repairs = pd.DataFrame({"pump_id": m["asset"].astype(str), "mode": m["mode"], "ts": m["ts"]})[
            action.isin(RESET_ACTIONS).to_numpy()
        ]
    is_leak = (faults["mode"] == _LEAK_MODE) | faults["pump_id"].str.startswith(_LINE_PREFIX)
    faults = faults[~is_leak].reset_index(drop=True)
    faults["end_ts"] = pd.Series(pd.NaT, index=faults.index, dtype="datetime64[ns, UTC]")
    if len(repairs) and len(faults):
        pairs = faults.reset_index(names="_fault").merge(repairs, on="pump_id", suffixes=("", "_repair"))
        match = (pairs["mode_repair"] == HEALTHY) | (pairs["mode_repair"] == pairs["mode"])
        pairs = pairs[match & (pairs["ts"] >= pairs["onset_ts"])]
        first = pairs.groupby("_fault")["ts"].min()
        faults.loc[first.index, "end_ts"] = first.to_numpy()
    return faults


def pump_labels(keys: pd.DataFrame, labels: pd.DataFrame, maintenance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Labels of each (pump_id, event_timestamp) row: anomaly, mode, time to failure, failed.

    Args:
        keys: ``pump_id``, ``event_timestamp`` (other columns are kept).
        labels: Fault records ``asset, mode, onset_ts, failure_ts`` (``GroundTruth.labels``).
        maintenance: Maintenance records (see the module docstring), or None.

    Returns:
        ``keys`` (same rows, same order, fresh index) plus ``anomaly`` (int64 0/1), ``mode``
        (str), ``ttf_s`` (float64 s, NaN when no fault develops) and ``failed`` (bool).

    Raises:
        LabelError: Missing columns or unparseable times.
    """
    _require(keys, ("pump_id", "event_timestamp"), "keys")
    out = keys.reset_index(drop=True).copy()
    ts = _utc(out["event_timestamp"], "keys event_timestamp")
    faults = pump_faults(labels, maintenance)
    anomaly = np.zeros(len(out), dtype=np.int64)
    mode = np.full(len(out), HEALTHY, dtype=object)
    ttf = np.full(len(out), np.nan)
    failed = np.zeros(len(out), dtype=bool)
    if len(out) and len(faults):
        rows = pd.DataFrame({"_row": np.arange(len(out)), "pump_id": out["pump_id"].astype(str).to_numpy(), "ts": ts})
        pairs = rows.merge(faults, on="pump_id")
        active = (pairs["onset_ts"] <= pairs["ts"]) & (pairs["end_ts"].isna() | (pairs["ts"] < pairs["end_ts"]))
        pairs = pairs[active.to_numpy()].copy()
        pairs["ttf_s"] = ((pairs["failure_ts"] - pairs["ts"]).dt.total_seconds()).clip(lower=0.0)
        pairs = pairs.sort_values(["_row", "ttf_s"], na_position="last").drop_duplicates("_row")
        r = pairs["_row"].to_numpy()
        anomaly[r] = 1
        mode[r] = pairs["mode"].to_numpy()
        ttf[r] = pairs["ttf_s"].to_numpy(dtype=np.float64)
        failed[r] = (pairs["ts"] >= pairs["failure_ts"]).to_numpy()
    out["anomaly"] = anomaly
    out["mode"] = pd.Series(mode, dtype=object)
    out["ttf_s"] = ttf
    out["failed"] = failed
    return out
