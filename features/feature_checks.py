"""Great Expectations checks on a feature frame before it reaches the feature store.

A feature frame has one row per (``pump_id``, ``event_timestamp``) and float feature columns
(`features.transforms.build.pump_features`). The suite checks the keys (present, well-formed pump ids,
UTC timestamps, no duplicate key) and that no feature value is infinite; a row that fails goes
to quarantine with the expectation that failed as its reason, and the good rows go on. Missing
values are not errors (a stopped pump has no head residual), but the missing rate of every
column is reported so a feature that stops being computed shows up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pumptwin.features.validation import gx_checkpoint, gx_context, run_checkpoint
from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

KEYS = ("pump_id", "event_timestamp")
ROW_ID = "row_id"
NONFINITE = "nonfinite_values"
PUMP_ID_PATTERN = r"^[A-Z0-9_]+\.[A-Z0-9_]+$"
"""Pump ids are ``STATION.ASSET`` (``PS01.P2``)."""


class FeatureCheckError(PumptwinError, ValueError):
    """The frame cannot be checked at all (no key columns); the message names what is missing."""


@dataclass(frozen=True)
class FeatureCheck:
    """The outcome of checking a feature frame.

    Attributes:
        good: Rows that passed, in their input order (without the helper columns).
        quarantined: Rows that failed, with a ``reason`` column (the failed expectations, ``;``-joined).
        missing_rate: Fraction of missing values per feature column, over all rows.
        success: True when no row failed.
    """

    good: pd.DataFrame
    quarantined: pd.DataFrame
    missing_rate: pd.Series
    success: bool

    def to_markdown(self, worst: int = 10) -> str:
        """A short report: rows kept and quarantined by reason, and the columns missing most often."""
        lines = [
            f"- rows checked: {len(self.good) + len(self.quarantined):,}",
            f"- rows kept: {len(self.good):,}",
            f"- rows quarantined: {len(self.quarantined):,}",
        ]
        if len(self.quarantined):
            for reason, count in self.quarantined["reason"].value_counts().items():
                lines.append(f"  - {count:,} x `{reason}`")
        top = self.missing_rate.sort_values(ascending=False).head(worst)
        if len(top):
            lines += ["", "| feature | missing |", "|---|---:|"]
            lines += [f"| {name} | {rate:.1%} |" for name, rate in top.items()]
        return "\n".join(lines)


def feature_suite(name: str = "features") -> ExpectationSuite:
    """The expectations every feature frame must meet (row-level ones quarantine rows)."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="pump_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column="pump_id", regex=PUMP_ID_PATTERN))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="event_timestamp"))
    suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KEYS)))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=NONFINITE, min_value=0, max_value=0))
    return suite


def check_features(frame: pd.DataFrame, feature_cols: list[str] | None = None) -> FeatureCheck:
    """Check a feature frame; quarantine the rows that fail, keep the rest.

    Args:
        frame: Keys ``pump_id``, ``event_timestamp`` (UTC) and numeric feature columns.
        feature_cols: Columns to check for infinite values; None checks every non-key column.

    Returns:
        The good rows, the quarantined rows with their reasons, and per-column missing rates.

    Raises:
        FeatureCheckError: A key column is missing, or the timestamps are not time-zone aware.
    """
    missing = [k for k in KEYS if k not in frame.columns]
    if missing:
        raise FeatureCheckError(f"feature frame lacks key column(s) {missing}")
    ts = frame["event_timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise FeatureCheckError(f"event_timestamp must be a UTC timestamp column, not {ts.dtype}")
    cols = [c for c in frame.columns if c not in KEYS] if feature_cols is None else list(feature_cols)
    values = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan) if cols else np.zeros((len(frame), 0))
    checked = pd.DataFrame(
        {
            ROW_ID: np.arange(len(frame), dtype=np.int64),
            "pump_id": frame["pump_id"].to_numpy(),
            "event_timestamp": ts.to_numpy(),
            NONFINITE: np.isinf(values).sum(axis=1).astype(np.int64),
        }
    )
    reasons = _failed_rows(checked) if len(frame) else {}
    bad = np.zeros(len(frame), dtype=bool)
    labels: list[list[str]] = [[] for _ in range(len(frame))]
    for label, rows in reasons.items():
        bad[rows] = True
        for r in rows:
            labels[int(r)].append(label)
    quarantined = frame[bad].copy()
    quarantined["reason"] = ["; ".join(labels[i]) for i in np.flatnonzero(bad)]
    missing_rate = pd.Series(np.isnan(values).mean(axis=0) if len(frame) else np.zeros(len(cols)), index=cols)
    return FeatureCheck(frame[~bad], quarantined, missing_rate, not bad.any())


def _failed_rows(checked: pd.DataFrame) -> dict[str, np.ndarray]:
    """Positions of the rows each failed expectation lists, by ``expectation(column)`` label."""
    context = gx_context()
    source = context.data_sources.add_pandas("features")
    checkpoint = gx_checkpoint(context, source, feature_suite(), "feature_rows", ROW_ID)
    out: dict[str, np.ndarray] = {}
    for result in run_checkpoint(checkpoint, checked).results:
        if result.success:
            continue
        config = result.expectation_config
        assert config is not None  # a suite's results always carry their expectation
        kwargs = config.kwargs
        target = kwargs.get("column") or ",".join(kwargs.get("column_list", []))
        entries = (result.result or {}).get("unexpected_index_list") or []
        ids = [e[ROW_ID] for e in entries]
        flat = np.asarray([i for x in ids for i in (x if isinstance(x, list) else [x])], dtype=np.int64)
        # a failure that lists no rows (a table-level failure) sends every row to quarantine
        out[f"{config.type}({target})"] = flat if flat.size else np.arange(len(checked))
    return out
