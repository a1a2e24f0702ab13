"""The steps of the integrity flow: ILI exports read, assessed against the line's pressures, growth, dig list, files.

Plain functions over the settings, wrapped by the Prefect flow ``integrity`` (`flows.integrity`):

- `ili_files` lists the exports to read: the one given, or every CSV/XLSX in the ILI drop folder
  (``settings.integrity.ili_dir``, default ``<home>/integrity/ili``);
- `read_runs` reads each with `twin.integrity.ili.read_ili`, mapped onto chainage through the
  markers of the integrity file (``settings.integrity.pipe_file`` or the packaged one); a run's bad
  rows go to ``<home>/quarantine/ili/<run>_quarantine.csv`` with their reasons, and a file the
  loader refuses is moved from the drop folder to ``<home>/quarantine/ili/`` beside a
  ``<file>.reason.txt`` (a file given by path is left where it is): the other files go on;
- `line_profile` solves the twin's base steady state of the configured network and gives, along
  the line's main path, each pipe's chainage span, MAOP and the pressure at both ends;
- `assess_runs` assesses the newest run (MAOP and operating pressure at each feature's chainage,
  interpolated along its pipe; ``settings.integrity.method`` and ``safety_factor``), measures growth
  against the run before it when there is one, projects each feature's remaining life and ranks
  the dig list;
- `write_outputs` writes the assessed features (`twin.integrity.store.write_assessed`), the dig list
  and growth tables as CSV into ``settings.integrity_dir`` and the inspection report into
  ``<home>/integrity/reports/``; `integrity_markdown` is the run's artifact.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.integrity.assessment import AssessmentSettings, IntegrityError, assess_features
from pumptwin.twin.integrity.diglist import DEFAULT_HORIZON_YEARS, clock_text, dig_list, dig_list_csv
from pumptwin.twin.integrity.growth import GrowthStudy, feature_rates, remaining_life_years, study_growth
from pumptwin.twin.integrity.ili import IliRun, read_ili, write_quarantine
from pumptwin.twin.integrity.pipe import (
    PipeProperties,
    load_pipe_properties,
    packaged_integrity_file,
    reference_markers,
)
from pumptwin.twin.integrity.report import ili_report_markdown, report_id
from pumptwin.twin.integrity.store import write_assessed
from pumptwin.twin.whatif.engine import WhatIf, evaluate
from pumptwin.twin.whatif.path import main_path

ILI_SUFFIXES = frozenset({".csv", ".xlsx"})
"""Files of the ILI drop folder that are read."""
DEFAULT_PIPE_AGE_YEARS = 40.0
"""Age assumed by the half-life growth rate when no pipe of the line records the year it was laid, years."""
SEGMENT_M = 1000.0
"""Segment length of the growth per segment, m."""
ARTIFACT_ROWS = 10
"""Rows of the dig list in the artifact."""


@dataclass(frozen=True)
class ReadRuns:
    """The exports read.

    Attributes:
        runs: The runs read, oldest first.
        refused: ``(file, reason)`` of each export the loader refused.
        quarantine: Files of quarantined rows written, by run id.
    """

    runs: tuple[IliRun, ...]
    refused: tuple[tuple[str, str], ...] = ()
    quarantine: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class LineProfile:
    """The line's pipes along its main path with the base steady state's pressures.

    Attributes:
        pipe_ids: Pipes along the path, source first (pumps and valves left out).
        start_m: Chainage of each pipe's upstream end along the path, m.
        end_m: Chainage of each pipe's downstream end, m.
        maop_pa: MAOP of each pipe (NaN where none is set), gauge Pa.
        p_start_pa: Base-state pressure at each pipe's upstream end, gauge Pa.
        p_end_pa: Base-state pressure at each pipe's downstream end, gauge Pa.
        pipes: Pipe properties by pipe id (grade, wall, diameter).
    """

    pipe_ids: tuple[str, ...]
    start_m: np.ndarray
    end_m: np.ndarray
    maop_pa: np.ndarray
    p_start_pa: np.ndarray
    p_end_pa: np.ndarray
    pipes: dict[str, PipeProperties]


@dataclass(frozen=True)
class Assessment:
    """The newest run assessed.

    Attributes:
        run: The run assessed.
        assessed: Its features with the assessment, ``pipe_id``, ``maop_pa``, ``operating_pa`` and
            ``remaining_life_years`` columns.
        dig: The dig list.
        growth: Growth from the run before (None with one run).
        life: Remaining life per metal-loss feature.
        notes: What the assessment could not do (growth refused, ...).
    """

    run: IliRun
    assessed: pd.DataFrame
    dig: pd.DataFrame
    growth: GrowthStudy | None
    life: pd.DataFrame
    notes: tuple[str, ...] = ()


def ili_dir(settings: Settings) -> Path:
    """The ILI drop folder: the configured one or ``<home>/integrity/ili``."""
    return settings.integrity.ili_dir if settings.integrity.ili_dir is not None else settings.integrity_dir / "ili"


def integrity_file(settings: Settings) -> Path:
    """The integrity file (pipe properties and markers): the configured one or the packaged one."""
    return settings.integrity.pipe_file if settings.integrity.pipe_file is not None else packaged_integrity_file()


def quarantine_dir(settings: Settings) -> Path:
    """Where quarantined ILI rows and refused exports go: ``<home>/quarantine/ili``."""
    return settings.home / "quarantine" / "ili"


def reports_dir(settings: Settings) -> Path:
    """Where inspection reports are written: ``<home>/integrity/reports``."""
    return settings.integrity_dir / "reports"


def ili_files(settings: Settings, path: str | None = None) -> list[Path]:
    """The exports to read: ``path``, or every CSV/XLSX file of the drop folder (sorted by name)."""
    if path is not None:
        return [Path(path)]
    folder = ili_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ILI_SUFFIXES)


def _refuse(settings: Settings, file: Path, reason: str, move: bool) -> None:
    """Record why an export was refused; move it out of the drop folder when it came from there."""
    folder = quarantine_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{file.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    if move and file.exists():
        shutil.move(str(file), str(folder / file.name))


def read_runs(settings: Settings, path: str | None = None) -> ReadRuns:
    """Read the ILI exports, quarantining bad rows and refused files with their reasons.

    Args:
        settings: Settings (drop folder, integrity file, home).
        path: One export to read (None: every export of the drop folder).

    Returns:
        The runs read (oldest first), the refused files with reasons and the quarantine files.

    Raises:
        PipeError: An unreadable integrity file (its markers are needed for every run).
    """
    markers = reference_markers(integrity_file(settings))
    runs: list[IliRun] = []
    refused: list[tuple[str, str]] = []
    quarantined: dict[str, Path] = {}
    for file in ili_files(settings, path):
        try:
            run = read_ili(file, markers=markers)
            written = write_quarantine(run, quarantine_dir(settings))
        except (PumptwinError, OSError, ValueError) as exc:  # a file the loader refuses: recorded, the rest go on
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            refused.append((str(file), reason))
            _refuse(settings, file, reason, move=path is None)
            continue
        if written is not None:
            quarantined[run.run_id] = written
        runs.append(run)
    runs.sort(key=lambda r: (pd.Timestamp(r.date), r.run_id))
    return ReadRuns(tuple(runs), tuple(refused), quarantined)


def line_profile(settings: Settings) -> LineProfile:
    """The base steady state of the configured network along its main path, pipe by pipe.

    Raises:
        NetworkError: An unreadable network or one that does not solve.
        PipeError: An unreadable integrity file.
    """
    network = load_network(settings.twin.network)
    model = compile_network(network)
    result = evaluate(model, [WhatIf("base")], accuracy=settings.twin.accuracy)
    path = main_path(model)
    npipe = len(network.pipes)
    pressure = result.line.pressure_pa[0]
    ids, start, end, maop, p0, p1 = [], [], [], [], [], []
    for k, link in enumerate(path.links):
        if link >= npipe:
            continue
        pipe = network.pipes[link]
        ids.append(pipe.id)
        start.append(float(path.chainage_m[k]))
        end.append(float(path.chainage_m[k + 1]))
        maop.append(math.nan if pipe.maop_pa is None else float(pipe.maop_pa))
        p0.append(float(pressure[path.nodes[k]]))
        p1.append(float(pressure[path.nodes[k + 1]]))
    return LineProfile(
        tuple(ids),
        np.array(start),
        np.array(end),
        np.array(maop),
        np.array(p0),
        np.array(p1),
        load_pipe_properties(integrity_file(settings), network),
    )


def locate(chainage_m: np.ndarray, profile: LineProfile) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pipe, MAOP and base operating pressure at each chainage along the main path.

    A chainage on a boundary belongs to the pipe downstream of it (at a station: the discharge
    side). Chainages beyond the path's ends take its first or last pipe; an unknown chainage
    (NaN) takes, conservatively, the lowest MAOP and the highest operating pressure of the line
    and the pipe of the lowest MAOP.

    Args:
        chainage_m: Chainage of each feature, m.
        profile: `line_profile`.

    Returns:
        Pipe ids, MAOP (gauge Pa) and operating pressure (gauge Pa) per feature.
    """
    c = np.asarray(chainage_m, dtype=np.float64)
    known = np.isfinite(c)
    k = np.clip(
        np.searchsorted(profile.start_m, np.where(known, c, 0.0), side="right") - 1, 0, len(profile.pipe_ids) - 1
    )
    span = np.maximum(profile.end_m[k] - profile.start_m[k], 1e-9)
    frac = np.clip((np.where(known, c, 0.0) - profile.start_m[k]) / span, 0.0, 1.0)
    operating = profile.p_start_pa[k] + frac * (profile.p_end_pa[k] - profile.p_start_pa[k])
    maop = profile.maop_pa[k]
    worst = int(np.nanargmin(profile.maop_pa)) if np.isfinite(profile.maop_pa).any() else 0
    top = float(np.nanmax(np.concatenate([profile.p_start_pa, profile.p_end_pa])))
    ids = [profile.pipe_ids[worst] if not ok else profile.pipe_ids[i] for i, ok in zip(k, known, strict=True)]
    maop = np.where(known, maop, profile.maop_pa[worst])
    operating = np.where(known, operating, top)
    return ids, maop, operating


def assess_runs(settings: Settings, read: ReadRuns, profile: LineProfile) -> Assessment:
    """Assess the newest run, with growth from the run before it, remaining life and the dig list.

    Args:
        settings: Settings (method, safety factor).
        read: The runs read (at least one).
        profile: The line's pipes and base pressures.

    Returns:
        The assessment of the newest run.

    Raises:
        IntegrityError: No run to assess, or features the assessment refuses.
    """
    if not read.runs:
        raise IntegrityError("no ILI run to assess")
    run = read.runs[-1]
    method = AssessmentSettings(method=settings.integrity.method, safety_factor=settings.integrity.safety_factor)
    features = run.features.copy()
    ids, maop, operating = locate(features["chainage_m"].to_numpy(dtype=np.float64), profile)
    features["pipe_id"] = ids
    assessed = assess_features(features, profile.pipes, maop, operating, method)
    assessed["maop_pa"] = maop
    assessed["operating_pa"] = operating
    notes: list[str] = []
    study = None
    if len(read.runs) > 1:
        try:
            study = study_growth(read.runs[-2], run, segment_m=SEGMENT_M)
        except IntegrityError as exc:
            notes.append(f"growth not measured: {exc}")
    age, age_note = corrosion_age_years(profile.pipes.values(), pd.Timestamp(run.date))
    notes.append(age_note)
    rates = feature_rates(assessed, study, age_years=age)
    life = remaining_life_years(assessed, rates, profile.pipes, maop, method)
    assessed = assessed.merge(life[["feature_id", "remaining_life_years"]], on="feature_id", how="left")
    dig = dig_list(assessed, life, horizon_years=DEFAULT_HORIZON_YEARS, as_of=pd.Timestamp(run.date))
    return Assessment(run, assessed, dig, study, life, tuple(notes))


def corrosion_age_years(pipes: Iterable[PipeProperties], when: pd.Timestamp) -> tuple[float, str]:
    """Age of the line's corrosion for the half-life growth rate, years, and a note saying where it came from.

    The youngest pipe's age (the shortest age gives the highest half-life rate, the conservative
    side); `DEFAULT_PIPE_AGE_YEARS` when no pipe records the year it was laid.
    """
    years = [p.installed_year for p in pipes if p.installed_year is not None]
    if not years:
        return DEFAULT_PIPE_AGE_YEARS, f"pipe age not recorded: {DEFAULT_PIPE_AGE_YEARS:g} years assumed"
    age = max(float(when.year - max(years)), 1.0)
    return age, f"half-life rates use an age of {age:g} years (the youngest pipe, laid in {max(years)})"


def write_outputs(settings: Settings, result: Assessment, line: int = 1) -> dict[str, Path]:
    """Write the assessed features, dig list, growth tables and inspection report; return the files by kind."""
    folder = settings.integrity_dir
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"assessed": write_assessed(result.assessed, folder, line)}
    dig_path = folder / f"dig_list_line{line:02d}.csv"
    dig_path.write_text(dig_list_csv(result.dig), encoding="utf-8")
    paths["dig_list"] = dig_path
    if result.growth is not None:
        paths["growth"] = folder / f"growth_line{line:02d}.csv"
        result.growth.rates.to_csv(paths["growth"], index=False)
        paths["segments"] = folder / f"growth_segments_line{line:02d}.csv"
        result.growth.segments.to_csv(paths["segments"], index=False)
    reports = reports_dir(settings)
    reports.mkdir(parents=True, exist_ok=True)
    paths["report"] = reports / f"{report_id(result.run.run_id, line)}.md"
    text = ili_report_markdown(result.run, result.assessed, result.dig, result.growth, line=line)
    paths["report"].write_text(text, encoding="utf-8")
    return paths


def counts(result: Assessment) -> dict[str, int]:
    """Features by category of the newest run, and the dig list's length."""
    by = result.assessed["category"].value_counts()
    out = {c: int(by.get(c, 0)) for c in ("immediate", "scheduled", "monitor", "not assessed")}
    out["dig_list"] = len(result.dig)
    return out


def integrity_markdown(read: ReadRuns, result: Assessment | None, paths: dict[str, Path], line: int = 1) -> str:
    """The artifact of an integrity run: runs read, counts, growth, the top of the dig list, files."""
    out = [f"# Integrity of line {line}", ""]
    if read.runs:
        out.append("Runs read: " + ", ".join(f"`{r.run_id}` ({pd.Timestamp(r.date):%Y-%m-%d})" for r in read.runs))
    for file, reason in read.refused:
        out.append(f"- refused `{Path(file).name}`: {reason}")
    for run_id, qpath in read.quarantine.items():
        out.append(f"- rows of `{run_id}` quarantined: `{qpath}`")
    if result is None:
        out += ["", "No ILI run could be assessed."]
        return "\n".join(out) + "\n"
    c = counts(result)
    out += [
        "",
        f"Run `{result.run.run_id}`: {c['immediate']} immediate, {c['scheduled']} scheduled, {c['monitor']} monitor, "
        f"{c['not assessed']} not assessed; {c['dig_list']} features on the dig list.",
    ]
    if result.growth is not None:
        g = result.growth
        out.append(
            f"Growth since `{g.old_run_id}` ({g.years:.1f} years): {g.count('matched')} matched, {g.count('new')} new, "
            f"{g.count('missing')} missing; {g.alignment}."
        )
    out += [f"Note: {n}" for n in result.notes]
    if len(result.dig):
        out += [
            "",
            "| rank | feature | km | clock | depth | safe MPa | ERF | category | life (y) | dig by |",
            "|---:|---|---:|---:|---:|---:|---:|---|---:|---|",
        ]
        for _, r in result.dig.head(ARTIFACT_ROWS).iterrows():
            out.append(
                f"| {int(r['rank'])} | {r['feature_id']} | {r['chainage_m'] / 1e3:.3f} | {clock_text(r['clock_h'])} | "
                f"{100 * r['depth_frac']:.0f} % | {r['safe_pa'] / 1e6:.2f} | {r['erf']:.2f} | {r['category']} | "
                f"{r['remaining_life_years']:.1f} | {pd.Timestamp(r['dig_by']):%Y-%m-%d} |"
            )
    out += ["", "Files:", ""] + [f"- {kind}: `{p}`" for kind, p in paths.items()]
    return "\n".join(out) + "\n"


def summary(read: ReadRuns, result: Assessment | None, paths: dict[str, Path]) -> dict[str, Any]:
    """The flow's return value: runs, refused files, counts, growth and files (paths as strings)."""
    return {
        "runs": [r.run_id for r in read.runs],
        "assessed_run": None if result is None else result.run.run_id,
        "refused": [{"file": f, "reason": r} for f, r in read.refused],
        "counts": {} if result is None else counts(result),
        "growth": None
        if result is None or result.growth is None
        else {
            "from": result.growth.old_run_id,
            "years": result.growth.years,
            "matched": result.growth.count("matched"),
            "new": result.growth.count("new"),
            "missing": result.growth.count("missing"),
        },
        "top": [] if result is None else result.dig["feature_id"].head(ARTIFACT_ROWS).tolist(),
        "files": {k: str(v) for k, v in paths.items()},
    }
