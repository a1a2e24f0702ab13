"""Running Great Expectations over a prepared frame in chunks, merging results, per-tag statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations import Checkpoint, ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import PandasDatasource
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from pumptwin.features.validation.rules import (
    _INT64_MIN,
    _KEPT_INDEXES,
    _NO_TAG,
    _PARTIAL,
    _TAG_INDEX,
    TagRules,
    _json_value,
    _resolve_ranges,
)
from pumptwin.features.validation.suites import _instant, _Prepared, _ts_ints, _unit_of

# --- running Great Expectations ---------------------------------------------------------------------


def gx_context() -> AbstractDataContext:
    """A fresh in-memory Great Expectations context: no files, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_checkpoint(
    context: AbstractDataContext, source: PandasDatasource, suite: ExpectationSuite, asset: str, index_column: str
) -> Checkpoint:
    """A checkpoint over one dataframe asset, with COMPLETE results indexed by `index_column`."""
    import great_expectations as gx

    batch = source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe(asset)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=asset, data=batch, suite=context.suites.add(suite))
    )
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [index_column],
        "return_unexpected_index_query": False,
        "partial_unexpected_count": _PARTIAL,
        "exclude_unexpected_values": True,  # row ids only: values would be serialised row by row
    }
    return context.checkpoints.add(
        gx.Checkpoint(name=asset, validation_definitions=[definition], result_format=result_format)
    )


def run_checkpoint(checkpoint: Checkpoint, frame: pd.DataFrame) -> ExpectationSuiteValidationResult:
    """Validate `frame` with `checkpoint` and return the one suite result."""
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    return next(iter(result.run_results.values()))


def _label(config: ExpectationConfiguration) -> str:
    """`expectation_type(column)`: the name a quarantined row carries in `reason`."""
    kwargs = config.kwargs
    if "column" in kwargs:
        target = str(kwargs["column"])
    elif "column_A" in kwargs:
        target = f"{kwargs['column_A']},{kwargs['column_B']}"
    else:
        target = ",".join(kwargs.get("column_list", []))
    return f"{config.type}({target})"


def _exception(result: ExpectationValidationResult) -> str | None:
    """The message of an exception raised while evaluating an expectation, if any."""
    info = result.exception_info or {}
    if "raised_exception" in info:
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message") or "error")
    return None


@dataclass
class _Merged:
    """One expectation's results merged over chunks, with the positions of the rows it lists."""

    config: ExpectationConfiguration
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    missing_count: int = 0
    observed: object = None
    partial: list[object] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    lists_rows: bool = False
    exception: str | None = None

    @property
    def label(self) -> str:
        return _label(self.config)

    @property
    def action(self) -> str:
        return str((self.config.meta or {}).get("action", "quarantine"))

    @property
    def table_failure(self) -> bool:
        """Failed as a whole (a missing column, a naive ts column) rather than on listed rows."""
        return not self.success and not self.lists_rows and self.exception is None

    def add(self, result: ExpectationValidationResult, index_column: str) -> None:
        self.success = self.success and bool(result.success)
        self.exception = self.exception or _exception(result)
        body = result.result or {}
        self.element_count += int(body.get("element_count") or 0)
        self.unexpected_count += int(body.get("unexpected_count") or 0)
        self.missing_count += int(body.get("missing_count") or 0)
        if "observed_value" in body:
            self.observed = body["observed_value"]
        entries = body.get("unexpected_index_list")
        if entries is not None:  # [{index_column: [ids]}] without values, [{column: value, index_column: id}, ...] with
            self.lists_rows = True
            for entry in entries:
                ids = entry[index_column]
                self.positions.append(np.asarray(ids if isinstance(ids, list) else [ids], dtype=np.int64))

    def rows(self) -> np.ndarray:
        return np.concatenate(self.positions) if self.positions else np.zeros(0, dtype=np.int64)

    def to_gx(self) -> ExpectationValidationResult:
        from great_expectations.core.expectation_validation_result import ExpectationValidationResult

        result: dict[str, object] = {"element_count": self.element_count, "unexpected_count": self.unexpected_count}
        if self.observed is not None:
            result["observed_value"] = self.observed
        if self.lists_rows:
            rows = self.rows()
            checked = self.element_count - self.missing_count
            result["missing_count"] = self.missing_count
            result["unexpected_percent"] = 100.0 * self.unexpected_count / checked if checked else None
            result["partial_unexpected_list"] = [_json_value(v) for v in self.partial]
            result["unexpected_index_list"] = rows[:_KEPT_INDEXES].tolist()
            result["unexpected_index_list_truncated"] = bool(rows.size > _KEPT_INDEXES)
        info = {"raised_exception": self.exception is not None, "exception_message": self.exception}
        return ExpectationValidationResult(
            success=self.success, expectation_config=self.config, result=result, exception_info=info
        )


def _merge_suite(name: str, merged: list[_Merged], meta: dict[str, object]) -> ExpectationSuiteValidationResult:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    evaluated = len(merged)
    successful = sum(m.success for m in merged)
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": 100.0 * successful / evaluated if evaluated else None,
    }
    return ExpectationSuiteValidationResult(
        success=successful == evaluated,
        results=[m.to_gx() for m in merged],
        suite_name=name,
        statistics=statistics,
        meta=meta,
    )


def _validate(checkpoint: Checkpoint, frame: pd.DataFrame, index_column: str, chunk_rows: int) -> list[_Merged]:
    """Run the checkpoint over `frame` in chunks and merge each expectation's results."""
    merged: dict[str, _Merged] = {}
    for start in range(0, max(len(frame), 1), chunk_rows):
        for result in run_checkpoint(checkpoint, frame.iloc[start : start + chunk_rows]).results:
            config = result.expectation_config
            assert config is not None  # a suite's results always carry their expectation
            merged.setdefault(_label(config), _Merged(config=config)).add(result, index_column)
    for m in merged.values():  # a sample of the unexpected values, for the report
        column = m.config.kwargs.get("column")
        if m.lists_rows and column in frame.columns:
            m.partial = frame[column].iloc[m.rows()[:_PARTIAL]].tolist()
    return list(merged.values())


def _row_failures(merged: list[_Merged], n: int, ignore: set[str]) -> dict[str, np.ndarray]:
    """The rows each failed quarantining expectation sends to quarantine, by label.

    A failure that lists rows quarantines those rows. A failure without a row list (a table-level
    expectation: a missing column, naive timestamps) quarantines every row. An expectation that
    could not be evaluated quarantines every row too, unless a table-level failure explains it.
    Labels in `ignore` are checks without meaning for this frame (the ts bounds when ts is not a
    time-zone-aware timestamp column, which the type expectation reports).
    """
    table_failed = any(m.table_failure for m in merged)
    failures: dict[str, np.ndarray] = {}
    for m in merged:
        if m.success or m.action != "quarantine" or m.label in ignore:
            continue
        if m.lists_rows and m.exception is None:
            failures[m.label] = m.rows()
        elif m.exception is None or not table_failed:
            failures[m.label] = np.arange(n, dtype=np.int64)
    return failures


# --- per-tag statistics -----------------------------------------------------------------------------


def _station(tag: str) -> str:
    return tag.split(".", 1)[0] or _NO_TAG


def _tag_stats(
    prep: _Prepared, good: np.ndarray, ranges: pd.DataFrame, now_utc: pd.Timestamp, rules: TagRules
) -> pd.DataFrame:
    """One row per tag: counts, range, sample period, missing rate and staleness over its good rows.

    The window for the missing rate runs from the first to the last good reading of all tags.
    The sample period comes from the registry, else it is the lower quartile of the tag's intervals
    between good readings (robust to gaps in up to three quarters of the intervals).
    """
    n_tags = len(prep.tags)
    known = prep.codes >= 0
    resolved = _resolve_ranges(prep.tags, ranges)
    stats = pd.DataFrame(
        {
            "tag": prep.tags,
            "station": [_station(t) for t in prep.tags],
            "rows": np.bincount(prep.codes[known], minlength=n_tags),
            "good": np.bincount(prep.codes[good & known], minlength=n_tags),
            "low": resolved["low"].to_numpy(dtype="float64"),
            "high": resolved["high"].to_numpy(dtype="float64"),
            "unit": resolved["unit"].to_numpy(dtype=object),
            "sample_period_s": resolved["sample_period_s"].to_numpy(dtype="float64"),
        }
    )
    stats["has_range"] = stats["low"].notna() | stats["high"].notna()
    stats["period_source"] = np.where(stats["sample_period_s"].isna(), "intervals", "registry")
    stats["missing_rate"] = np.where(stats["good"] == 0, 1.0, np.nan)
    stats["first_good_ts"] = stats["last_good_ts"] = pd.Series(pd.NaT, index=stats.index, dtype="datetime64[ns, UTC]")
    stats["staleness_s"] = np.nan
    g = good & known
    if prep.ts_utc is not None and g.any():
        ts_int, per_second = _ts_ints(prep.ts_utc)
        unit = _unit_of(per_second)
        t, c = pd.Series(ts_int[g]), prep.codes[g]
        tags = range(n_tags)
        first = t.groupby(c).min().reindex(tags, fill_value=_INT64_MIN).to_numpy(dtype=np.int64)
        last = t.groupby(c).max().reindex(tags, fill_value=_INT64_MIN).to_numpy(dtype=np.int64)
        # good readings of a tag arrive in strictly increasing ts (repeats and late ones are quarantined)
        steps_s = t.groupby(c, sort=False).diff() / per_second
        typical_s = steps_s.groupby(c).quantile(0.25).reindex(tags).to_numpy(dtype="float64")
        period = stats["sample_period_s"].fillna(pd.Series(typical_s)).to_numpy(dtype="float64")
        span_s = (int(t.max()) - int(t.min())) / per_second
        with np.errstate(invalid="ignore", divide="ignore"):
            missing = np.clip(1.0 - stats["good"].to_numpy() / (np.floor(span_s / period) + 1.0), 0.0, 1.0)
        stats["sample_period_s"] = period
        stats["missing_rate"] = np.where(stats["good"] == 0, 1.0, missing)
        now_int = _instant(now_utc, unit)
        stats["staleness_s"] = np.where(last == _INT64_MIN, np.nan, (now_int - last) / per_second)
        stats["first_good_ts"] = _from_ints(first, unit)
        stats["last_good_ts"] = _from_ints(last, unit)
    limit = np.fmax(rules.stale_periods * stats["sample_period_s"].to_numpy(), rules.max_staleness.total_seconds())
    stats["staleness_limit_s"] = limit
    return stats


def _from_ints(ints: np.ndarray, unit: str) -> pd.Series:
    """datetime64[ns, UTC] from int64 instants in `unit` (the int64 minimum is NaT)."""
    return pd.Series(ints.view(f"datetime64[{unit}]")).dt.tz_localize("UTC").dt.as_unit("ns")


def _validate_tag_stats(checkpoint: Checkpoint, stats: pd.DataFrame) -> list[_Merged]:
    frame = stats[["tag", "missing_rate", "staleness_s", "staleness_limit_s", "has_range"]].copy()
    frame.insert(0, _TAG_INDEX, np.arange(len(frame), dtype=np.int64))
    frame["has_range"] = frame["has_range"].astype(bool)
    return _validate(checkpoint, frame, _TAG_INDEX, max(len(frame), 1))
