"""The inspection report of an in-line inspection run, in the knowledge corpus's document format.

`ili_report_markdown` writes one markdown document with YAML front matter (``id``, ``doc_type:
inspection``, ``title``, ``assets: [LINE01]``, ``failure_modes: [leak]``, ``operations``,
``date``, ``revision``) and ``## `` sections, as the corpus loader (`agents.documents`) reads them,
so the recommender can retrieve and cite it: the run summary, the features by category, one
section per immediate or scheduled feature at the top of the dig list with its numbers, the
corrosion growth since the previous run, and the dig list. The document id is stable per run
(``ILI-LINE01-<run id>``), so re-assessing a run replaces its report instead of adding one.

Example::

    text = ili_report_markdown(run, assessed, dig, study, line=1)
    (reports_dir / f"{report_id(run.run_id, 1)}.md").write_text(text, encoding="utf-8")
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pumptwin.twin.integrity.diglist import clock_text
from pumptwin.twin.integrity.growth import GrowthStudy

if TYPE_CHECKING:
    from pumptwin.twin.integrity.ili import IliRun

MAX_FEATURE_SECTIONS = 20
"""Immediate and scheduled features of the dig list that get a section of their own (the rest are in the table)."""
MAX_TABLE_ROWS = 25
"""Rows of the dig list and segment tables in the report (the CSV holds all)."""
CATEGORIES = ("immediate", "scheduled", "monitor", "not assessed")
"""Categories in the order the report lists them."""
FAILURE_MODE = "leak"
"""The corpus failure mode of metal loss (a through-wall or burst defect ends in a leak)."""
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(heading: str) -> str:
    """A heading's passage slug as the corpus loader makes it (lowercase, runs of other characters as ``-``)."""
    return _NON_SLUG.sub("-", heading.lower()).strip("-")


def line_asset(line: int) -> str:
    """The corpus asset name of a line (``1`` -> ``LINE01``)."""
    return f"LINE{line:02d}"


def report_id(run_id: str, line: int = 1) -> str:
    """The report's document id, stable per run: ``ILI-LINE01-<run id>`` (unsafe characters as ``-``)."""
    safe = _ID_UNSAFE.sub("-", str(run_id)).strip("-") or "run"
    return f"ILI-{line_asset(line)}-{safe}"


def _mm(m: float) -> str:
    return f"{1e3 * m:.1f} mm" if math.isfinite(m) else "n/a"


def _mpa(pa: float) -> str:
    return f"{pa / 1e6:.2f} MPa" if math.isfinite(pa) else "n/a"


def _km(m: float) -> str:
    return f"{m / 1e3:.3f} km" if math.isfinite(m) else "unknown"


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _front_matter(run: IliRun, assessed: pd.DataFrame, line: int) -> str:
    asset = line_asset(line)
    date = pd.Timestamp(run.date)
    operations = ["maintenance"]
    if (assessed.get("category", pd.Series(dtype=object)) == "immediate").any():
        operations.append("throughput_reduction")
    by = " ".join(x for x in (run.vendor, run.tool) if x)
    title = f"In-line inspection of {asset}, run {run.run_id}{f' ({by})' if by else ''}, {date:%B %Y}"
    return "\n".join(
        [
            "---",
            f"id: {report_id(run.run_id, line)}",
            "doc_type: inspection",
            f"title: {_yaml_text(title)}",
            f"assets: [{asset}]",
            f"failure_modes: [{FAILURE_MODE}]",
            f"operations: [{', '.join(operations)}]",
            f"date: {date:%Y-%m-%d}",
            "revision: 1",
            "---",
            f"# {title}",
        ]
    )


def _yaml_text(text: str) -> str:
    """A one-line YAML string, quoted."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _summary(run: IliRun, assessed: pd.DataFrame, line: int) -> str:
    asset = line_asset(line)
    f = run.features
    metal = assessed.loc[assessed["feature_type"] == "metal_loss"]
    chain = f["chainage_m"].to_numpy(dtype=np.float64) if len(f) else np.array([np.nan])
    span = (
        f"from chainage {_km(float(np.nanmin(chain)))} to {_km(float(np.nanmax(chain)))}"
        if np.isfinite(chain).any()
        else "with no mapped chainage"
    )
    deepest = metal["depth_frac"].max() if len(metal) else math.nan
    return (
        f"In-line inspection (ILI) run {run.run_id} of pipeline {asset} on {pd.Timestamp(run.date):%Y-%m-%d}"
        f"{f' by {run.vendor}' if run.vendor else ''} with the {run.tool or 'ILI'} tool "
        f"(source file {Path(run.source).name}). The tool reported {len(f)} features and "
        f"{len(run.welds)} girth welds {span}; {len(metal)} features are metal loss (corrosion), the deepest "
        f"{100 * _num(deepest):.0f} % of the wall. Sizing uncertainty: depth +-{100 * run.depth_sd_frac:.1f} % of "
        f"wall and length +-{_mm(run.length_sd_m)} at one standard deviation. {len(run.quarantined)} rows of the "
        f"vendor's list were quarantined as unreadable. Metal loss on {asset} is assessed for burst and leak: "
        "the safe pressure of each feature is compared with the MAOP and the operating pressure at its chainage."
    )


def _by_category(assessed: pd.DataFrame, line: int) -> str:
    counts = assessed["category"].value_counts() if len(assessed) else pd.Series(dtype=int)
    rows = ["| category | features | lowest safe pressure | highest ERF |", "|---|---:|---:|---:|"]
    for cat in CATEGORIES:
        sub = assessed.loc[assessed["category"] == cat]
        low = _num(sub["safe_pa"].min()) if len(sub) else math.nan
        high = _num(sub["erf"].max()) if len(sub) else math.nan
        rows.append(f"| {cat} | {int(counts.get(cat, 0))} | {_mpa(low)} | {high:.2f} |".replace("| nan |", "| n/a |"))
    return (
        f"Metal-loss features of {line_asset(line)} by repair category (immediate: dig now and reduce pressure; "
        "scheduled: dig within the response time; monitor: leave to the next inspection). ERF is MAOP over the "
        "safe pressure; 1 or more means the corrosion feature cannot hold the MAOP with its safety factor.\n\n"
        + "\n".join(rows)
    )


def _feature_section(row: pd.Series, line: int) -> tuple[str, str]:
    fid = str(row["feature_id"])
    heading = f"{str(row['category']).capitalize()} feature {fid} at {_km(_num(row['chainage_m']))}"
    weld = _num(row.get("weld_number", math.nan))
    at_weld = (
        f" {_num(row.get('weld_distance_m', math.nan)):.2f} m downstream of girth weld {int(weld)},"
        if math.isfinite(weld)
        else ""
    )
    life = _num(row.get("remaining_life_years", math.nan))
    life_text = f"remaining life {life:.1f} years" if math.isfinite(life) else "remaining life not estimated"
    why = str(row.get("category_reason", "") or "")
    dig_by = pd.Timestamp(row["dig_by"])
    surface = str(row.get("surface", "") or "")
    body = (
        f"{surface.capitalize() + ' m' if surface else 'M'}etal loss (corrosion) {fid} on {line_asset(line)}"
        f"{', pipe ' + str(row['pipe_id']) if str(row.get('pipe_id', '') or '') else ''}, at chainage "
        f"{_km(_num(row['chainage_m']))},{at_weld} at {clock_text(_num(row['clock_h']))} o'clock. Depth "
        f"{100 * _num(row['depth_frac']):.0f} % of wall, length {_mm(_num(row['length_m']))}; safe pressure "
        f"{_mpa(_num(row['safe_pa']))}, ERF {_num(row['erf']):.2f}; {life_text}. Category {row['category']}"
        f"{f' ({why})' if why else ''}: dig by {dig_by:%Y-%m-%d}, rank {int(row['rank'])} of the dig list"
        f"{'; reduce the pressure until it is repaired' if row['category'] == 'immediate' else ''}."
    )
    return heading, body


def _growth_section(growth: GrowthStudy | None, line: int) -> str:
    asset = line_asset(line)
    if growth is None:
        return (
            f"No earlier inspection run of {asset} was available, so corrosion growth rates could not be measured; "
            "remaining lives use the half-life estimate (corrosion assumed to have grown over half the pipe's age)."
        )
    rates = growth.rates
    segs = growth.segments.sort_values("upper_rate_m_per_year", ascending=False).head(MAX_TABLE_ROWS)
    median = _num(rates["depth_rate_m_per_year"].median()) if len(rates) else math.nan
    lines = [
        f"Corrosion growth on {asset} between run {growth.old_run_id} and run {growth.new_run_id} "
        f"({growth.years:.1f} years). Alignment: {growth.alignment}. {growth.count('matched')} metal-loss features "
        f"matched, {growth.count('new')} new in this run, {growth.count('missing')} of the earlier run not "
        f"reported. Median depth growth {1e3 * median:.3f} mm/year; {int(rates['negative_rate'].sum())} matched "
        "features show a negative measured rate (sizing noise), kept in the data. Segments of "
        f"{growth.segment_m / 1e3:g} km with the highest upper rate (mean + 1.645 sd of the mean):",
        "",
        "| segment | features | mean mm/year | upper mm/year |",
        "|---|---:|---:|---:|",
    ]
    for _, s in segs.iterrows():
        lines.append(
            f"| {_km(_num(s['start_m']))}-{_km(_num(s['end_m']))} | {int(s['count'])} | "
            f"{1e3 * _num(s['mean_rate_m_per_year']):.3f} | {1e3 * _num(s['upper_rate_m_per_year']):.3f} |"
        )
    return "\n".join(lines)


def _dig_table(dig: pd.DataFrame, line: int) -> str:
    if dig.empty:
        return f"No metal-loss feature of {line_asset(line)} needs excavation before the next inspection."
    lines = [
        f"Dig list of {line_asset(line)}: {len(dig)} corrosion features to excavate, ranked (immediate first, "
        "then by dig-by date and remaining life, then ERF).",
        "",
        "| rank | feature | chainage | clock | depth | length | safe pressure | ERF | category | life | dig by |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for _, r in dig.head(MAX_TABLE_ROWS).iterrows():
        life = _num(r["remaining_life_years"])
        lines.append(
            f"| {int(r['rank'])} | {r['feature_id']} | {_km(_num(r['chainage_m']))} | "
            f"{clock_text(_num(r['clock_h']))} | {100 * _num(r['depth_frac']):.0f} % | {_mm(_num(r['length_m']))} | "
            f"{_mpa(_num(r['safe_pa']))} | {_num(r['erf']):.2f} | {r['category']} | "
            f"{f'{life:.1f} y' if math.isfinite(life) else 'n/a'} | {pd.Timestamp(r['dig_by']):%Y-%m-%d} |"
        )
    if len(dig) > MAX_TABLE_ROWS:
        lines.append(f"\n{len(dig) - MAX_TABLE_ROWS} more features are in the dig list file.")
    return "\n".join(lines)


def ili_report_markdown(
    run: IliRun,
    assessed: pd.DataFrame,
    dig: pd.DataFrame,
    growth: GrowthStudy | None = None,
    *,
    line: int = 1,
) -> str:
    """The inspection report of a run as a corpus document (markdown with YAML front matter).

    Args:
        run: The inspection run (id, date, vendor, tool, sizing uncertainty, features, welds).
        assessed: Its assessed features (`twin.integrity.assessment.assess_features`).
        dig: Its dig list (`twin.integrity.diglist.dig_list`).
        growth: The growth study from the previous run to this one (None with one run).
        line: The line inspected, 1-based (asset ``LINE01`` for line 1).

    Returns:
        The document's text; its id is `report_id` of the run.
    """
    parts = [_front_matter(run, assessed, line), ""]
    parts += ["## Run summary", "", _summary(run, assessed, line), ""]
    parts += ["## Features by category", "", _by_category(assessed, line), ""]
    shown = dig.loc[dig["category"].isin(["immediate", "scheduled"])].head(MAX_FEATURE_SECTIONS)
    slugs = {"run-summary", "features-by-category", "corrosion-growth", "dig-list"}
    for _, row in shown.iterrows():
        heading, body = _feature_section(row, line)
        base, k = heading, 1
        while _slug(heading) in slugs:  # two ids that differ only in punctuation or case
            k += 1
            heading = f"{base} ({k})"
        slugs.add(_slug(heading))
        parts += [f"## {heading}", "", body, ""]
    parts += ["## Corrosion growth", "", _growth_section(growth, line), ""]
    parts += ["## Dig list", "", _dig_table(dig, line), ""]
    return "\n".join(parts)
