"""Validation summaries: JSON, markdown and the HTML report."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )

from pumptwin.features.validation.engine import _Merged, _station
from pumptwin.features.validation.rules import _HTML_TAGS, _NO_TAG, ROWS_SUITE, TagSuites, _json_value
from pumptwin.features.validation.suites import _Prepared

# --- summary and report -----------------------------------------------------------------------------


def _summary(
    *,
    run_id: str,
    source: str | None,
    started: pd.Timestamp,
    now_utc: pd.Timestamp,
    prep: _Prepared,
    masks: np.ndarray,
    failures: dict[str, np.ndarray],
    merged: dict[str, list[_Merged]],
    stats: pd.DataFrame,
) -> dict[str, Any]:
    quarantined = masks != 0
    station_of_tag = [_station(t) for t in prep.tags]
    stations = sorted(set(station_of_tag) | ({_NO_TAG} if (prep.codes < 0).any() else set()))
    index = {s: i for i, s in enumerate(stations)}
    code_station = np.array([index[s] for s in station_of_tag] + [index.get(_NO_TAG, 0)], dtype=np.int64)
    row_station = code_station[prep.codes]
    rows_in = np.bincount(row_station, minlength=len(stations))
    bad = np.bincount(row_station[quarantined], minlength=len(stations))
    per_reason = {label: np.bincount(row_station[rows], minlength=len(stations)) for label, rows in failures.items()}
    by_station = [
        {
            "station": s,
            "rows_in": int(rows_in[i]),
            "good": int(rows_in[i] - bad[i]),
            "quarantined": int(bad[i]),
            "by_reason": {label: int(counts[i]) for label, counts in per_reason.items() if counts[i]},
        }
        for i, s in enumerate(stations)
        if rows_in[i]
    ]
    expectations = [
        {
            "suite": suite,
            "label": m.label,
            "type": m.config.type,
            "description": m.config.description,
            "action": m.action,
            "success": m.success,
            "element_count": m.element_count,
            "unexpected_count": m.unexpected_count,
            "observed_value": _json_value(m.observed),
            "sample_unexpected": [_json_value(v) for v in m.partial[:10]],
            "exception": m.exception,
        }
        for suite, items in merged.items()
        for m in items
    ]

    def failing_tags(label: str) -> list[str]:
        return stats.loc[stats[label], "tag"].tolist() if label in stats.columns else []

    return {
        "run_id": run_id,
        "source": source,
        "validated_at": started.isoformat(),
        "now": now_utc.isoformat(),
        "success": bool(not quarantined.any() and all(m.success for items in merged.values() for m in items)),
        "rows_in": len(masks),
        "good": int(len(masks) - quarantined.sum()),
        "quarantined": int(quarantined.sum()),
        "by_reason": {label: int(rows.size) for label, rows in failures.items()},
        "by_station": by_station,
        "table_failures": [m.label for m in merged[ROWS_SUITE] if m.table_failure],
        "expectations": expectations,
        "tags": {
            "count": len(stats),
            "bad_name": failing_tags("expect_column_values_to_match_regex(tag)"),
            "stale": failing_tags("expect_column_pair_values_a_to_be_greater_than_b(staleness_limit_s,staleness_s)"),
            "high_missing_rate": failing_tags("expect_column_values_to_be_between(missing_rate)"),
            "without_range": failing_tags("expect_column_values_to_be_in_set(has_range)"),
        },
        "notes": list(prep.notes),
        "report_files": {},
    }


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """Render a validation summary as markdown, for a Prefect artifact or a terminal.

    Args:
        summary: `ValidationOutcome.summary`.

    Returns:
        Rows in, good and quarantined; quarantined rows by expectation and per station; the tag
        findings; table-level failures and notes; where the report is.
    """
    descriptions = {e["label"]: e["description"] or "" for e in summary["expectations"]}
    lines = [f"## Tag validation `{summary['run_id']}`", ""]
    if summary.get("source"):
        lines += [f"Source: `{summary['source']}`", ""]
    lines += [
        "| rows in | good | quarantined |",
        "|---:|---:|---:|",
        f"| {summary['rows_in']:,} | {summary['good']:,} | {summary['quarantined']:,} |",
        "",
    ]
    if summary["by_reason"]:
        lines += ["**Quarantined by reason** (a row can fail several expectations)", ""]
        lines += ["| expectation | rows | checks |", "|---|---:|---|"]
        for label, count in sorted(summary["by_reason"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| `{label}` | {count:,} | {descriptions.get(label, '')} |")
        lines.append("")
    else:
        lines += ["No row was quarantined.", ""]
    if summary["by_station"]:
        lines += [
            "**Per station**",
            "",
            "| station | rows in | good | quarantined | by reason |",
            "|---|---:|---:|---:|---|",
        ]
        for s in summary["by_station"]:
            reasons = "<br>".join(f"`{label}` {count:,}" for label, count in s["by_reason"].items())
            lines.append(f"| {s['station']} | {s['rows_in']:,} | {s['good']:,} | {s['quarantined']:,} | {reasons} |")
        lines.append("")
    tags = summary["tags"]
    lines.append(f"**Tags**: {tags['count']:,} checked.")
    for key, text in (
        ("bad_name", "badly named (all their readings quarantined)"),
        ("stale", "stale"),
        ("high_missing_rate", "missing too many samples"),
        ("without_range", "without a physical range"),
    ):
        if tags[key]:
            lines.append(f"- {len(tags[key]):,} {text}: {_names(tags[key])}")
    lines.append("")
    if summary["table_failures"]:
        failed = ", ".join(f"`{x}`" for x in summary["table_failures"])
        lines += [f"**Table-level failures** (every row quarantined): {failed}", ""]
    errors = [e for e in summary["expectations"] if e["exception"]]
    if errors and not summary["table_failures"]:
        lines += ["**Not evaluated**: " + ", ".join(f"`{e['label']}` ({e['exception']})" for e in errors), ""]
    lines += [f"- {note}" for note in summary["notes"]]
    if summary["notes"]:
        lines.append("")
    if summary.get("report_files", {}).get("html"):
        lines += [f"Report: `{summary['report_files']['html']}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def _write_report(
    report_dir: Path,
    run_id: str,
    summary: dict[str, Any],
    suites: TagSuites,
    results: Mapping[str, ExpectationSuiteValidationResult],
    stats: pd.DataFrame,
) -> dict[str, Path]:
    """Write `<report_dir>/<run_id>/` (report.html, results.json; summary.md is written by the caller)."""
    folder = report_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    files = {"html": folder / "report.html", "json": folder / "results.json", "markdown": folder / "summary.md"}
    summary["report_files"] = {kind: str(path) for kind, path in files.items()}
    payload = {
        "summary": summary,
        "suites": {suite.name: suite.to_json_dict() for suite in (suites.rows, suites.tags)},
        "results": {name: result.to_json_dict() for name, result in results.items()},
        "tags": json.loads(stats.to_json(orient="records", date_format="iso")),
    }
    files["json"].write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    files["html"].write_text(_html_report(summary, stats), encoding="utf-8")
    _write_index(report_dir)
    return files


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    "td.n{text-align:right}.ok{color:#1a7f37}.fail{color:#cf222e}.warn{color:#9a6700}"
    "code{background:#f4f4f4;padding:0 .2rem}"
)


def _html_table(header: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are HTML already (escape them before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_expectations(summary: Mapping[str, Any]) -> str:
    e = html.escape
    rows = []
    for x in summary["expectations"]:
        status = "ok" if x["success"] else ("warn" if x["action"] == "report" else "fail")
        word = "passed" if x["success"] else ("error" if x["exception"] else "failed")
        detail = x["exception"] or ", ".join(map(str, x["sample_unexpected"])) or str(x["observed_value"] or "")
        rows.append(
            [
                e(x["suite"]),
                f"<code>{e(x['label'])}</code><br>{e(x['description'] or '')}",
                e(x["action"]),
                f"<span class={status}>{word}</span>",
                f"{x['element_count']:,}",
                f"{x['unexpected_count']:,}",
                e(detail),
            ]
        )
    header = ["suite", "expectation", "on failure", "result", "checked", "unexpected", "sample or detail"]
    return _html_table(header, rows, frozenset({4, 5}))


def _html_report(summary: Mapping[str, Any], stats: pd.DataFrame) -> str:
    e = html.escape
    source = f"; source <code>{e(str(summary['source']))}</code>" if summary.get("source") else ""
    counts = [[f"{summary['rows_in']:,}", f"{summary['good']:,}", f"{summary['quarantined']:,}"]]
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>{e(summary['run_id'])}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Tag validation <code>{e(summary['run_id'])}</code></h1>",
        f"<p>Validated {e(summary['validated_at'])} against now = {e(summary['now'])}{source}.</p>",
        _html_table(["rows in", "good", "quarantined"], counts, frozenset({0, 1, 2})),
    ]
    if summary["notes"]:
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in summary["notes"]) + "</ul>")
    parts += ["<h2>Expectations</h2>", _html_expectations(summary), "<h2>Per station</h2>"]
    station_rows = [
        [
            e(s["station"]),
            f"{s['rows_in']:,}",
            f"{s['good']:,}",
            f"{s['quarantined']:,}",
            "<br>".join(f"<code>{e(k)}</code>: {v:,}" for k, v in s["by_reason"].items()),
        ]
        for s in summary["by_station"]
    ]
    header = ["station", "rows in", "good", "quarantined", "quarantined by expectation"]
    parts.append(_html_table(header, station_rows, frozenset({1, 2, 3})))
    flags = [c for c in stats.columns if c.startswith("expect_")]
    shown = stats[stats[flags].any(axis=1)] if flags else stats.iloc[:0]
    more = f" (first {_HTML_TAGS} shown)" if len(shown) > _HTML_TAGS else ""
    parts += [f"<h2>Tags</h2><p>{len(stats):,} tags, {len(shown):,} with findings{more}.</p>"]
    columns = [
        "tag",
        "station",
        "rows",
        "good",
        "low",
        "high",
        "unit",
        "sample_period_s",
        "missing_rate",
        "staleness_s",
    ]
    tag_rows = [
        [e(_cell(row[c])) for c in columns] + [e(", ".join(f for f in flags if row[f]))]
        for _, row in shown.head(_HTML_TAGS).iterrows()
    ]
    parts += [_html_table([*columns, "failed"], tag_rows, frozenset({2, 3, 4, 5, 7, 8, 9})), "</body></html>"]
    return "\n".join(parts)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _write_index(report_dir: Path) -> None:
    runs = sorted((p.name for p in report_dir.iterdir() if (p / "report.html").is_file()), reverse=True)
    items = "".join(f'<li><a href="{html.escape(r)}/report.html">{html.escape(r)}</a></li>' for r in runs)
    (report_dir / "index.html").write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>pumptwin validation runs</title>"
        f"<style>{_CSS}</style></head><body><h1>Validation runs</h1><ul>{items}</ul></body></html>",
        encoding="utf-8",
    )
