"""Benchmark: the recommender's actions judged against an oracle that runs every candidate on the plant.

``python -m benchmarks.recommend`` draws situations from the plant simulator
(`benchmarks.recommend_situations`: each pump fault mode at two severities on different pumps and
speeds, leaks at several places and sizes, low suction pressure, healthy controls), folds each
one's readings into the twin, asks `pumptwin.agents.recommend.recommend` for its action (setpoint
search on, evidence from the packaged corpus indexed once into a local Qdrant folder under a
temporary directory) and has the oracle run every candidate of the recommendation (chosen and
alternatives, feasible or not) on a copy of the plant, scored with the same objective weights and
hard-limit rules on the plant's truth. Reported per situation and in total:

- **agreement**: the chosen action is the oracle's best (the feasible one with the highest plant
  score; a healthy control's best is no change); also the weaker reading, chosen within 5 % of
  the best's plant score and feasible on the plant;
- **hard-limit violations** of the chosen action on the plant (target 0);
- **citation precision**: share of cited passage ids whose metadata matches the situation (its
  asset, its failure mode, or for a procedure the chosen action's operation) (target >= 0.95);
- **numbers traceable**: share of texts that pass `pumptwin.agents.check.check_text` (target 100 %);
- **energy saved by the setpoint search** against the best fixed candidate, MWh/day, on the twin
  and on the plant (where both exist);
- **seconds per recommendation** (mean, p95), the machine and the command.

Situations are generated from seeds: the default report set (``split: report``) uses seeds the
recommender was never tuned on, ``--split tune`` others; ``--seeds`` picks any. ``--quick`` runs
eight situations of one seed. The JSON goes to ``<PUMPTWIN_HOME>/bench/recommend.json``
(``--out`` to change it) and a markdown summary is printed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.figures import write_figures
from benchmarks.recommend_situations import (
    RELATED_MODES,
    OracleVerdict,
    SituationSpec,
    actions_of,
    draw_situations,
    oracle,
    prepare,
    quick_situations,
    true_situations,
)
from pumptwin.agents.check import check_text, citations
from pumptwin.agents.evidence import Candidate, Passage, Recommendation
from pumptwin.agents.recommend import OPERATION_OF_KIND, Objective, fixed_actions, recommend, situations
from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from pumptwin.agents.retrieval import KnowledgeBase

SPLITS: dict[str, tuple[int, ...]] = {"report": (1001, 1002), "tune": (1, 2)}
"""Seeds of each split: the report seeds were never used to tune the recommender."""
QUICK_SEED = 1001
WITHIN = 0.05
"""The weaker agreement: the chosen action's plant score within this share of the best's."""
TARGETS = {"hard_limit_violations": 0, "citation_precision": 0.95, "numbers_traceable": 1.0}
ENERGY_TERM = "energy added at base throughput"


def energy_mwh_day(cand: Candidate | None) -> float:
    """The candidate's energy-added term, MWh/day (NaN without one)."""
    if cand is None:
        return math.nan
    return next((t.value for t in cand.terms if t.name == ENERGY_TERM), math.nan)


def related_modes(modes: Iterable[str]) -> frozenset[str]:
    """The corpus failure modes that speak of ``modes`` (a worn bearing shows as vibration)."""
    out: set[str] = set()
    for mode in modes:
        if mode:
            out |= RELATED_MODES.get(mode, frozenset({mode}))
    return frozenset(out)


def passage_matches(passage: Passage, assets: Iterable[str], modes: Iterable[str], chosen: Candidate) -> bool:
    """Whether a cited passage speaks of a situation: one of its assets or modes, or the chosen operation.

    The operation counts for procedures only; a healthy control has no asset or mode, so only
    the procedure of the chosen operation matches.
    """
    meta = passage.meta
    if {str(a) for a in meta.get("assets", []) or []} & set(assets):
        return True
    if {str(m) for m in meta.get("failure_modes", []) or []} & related_modes(modes):
        return True
    op = OPERATION_OF_KIND.get(chosen.kind, "")
    return passage.doc_type == "procedure" and bool(op) and op in {str(o) for o in meta.get("operations", []) or []}


def citation_counts(rec: Recommendation, assets: Iterable[str], modes: Iterable[str]) -> tuple[int, int]:
    """(cited ids, cited ids that match the assets or modes); an id not among the evidence never matches."""
    found = {p.id: p for p in rec.evidence.passages}
    cited = list(dict.fromkeys(citations(rec.text)))
    assets, modes = tuple(assets), tuple(modes)
    good = sum(1 for pid in cited if pid in found and passage_matches(found[pid], assets, modes, rec.chosen))
    return len(cited), good


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def evaluate(spec: SituationSpec, objective: Objective, kb: object | None, *, search: bool = True) -> dict[str, Any]:
    """Prepare one situation, recommend, run the oracle and measure; one JSON-ready row."""
    t0 = time.perf_counter()
    prepared = prepare(spec)
    t1 = time.perf_counter()
    run = recommend(prepared.state, prepared.view, objective, kb=kb, search=search, seed=0)
    rec = run.recommendation
    seen = situations(prepared.state, prepared.view)
    truth_sits = true_situations(spec, prepared.view, seen)
    cands = [rec.chosen, *rec.alternatives]
    wanted = {c.name: (c.kind, dict(c.setpoints)) for c in cands}
    if truth_sits and not any(s.asset in spec.assets for s in seen):
        # the twin missed the asset: the oracle also weighs the fixed candidates for the true situation
        for a in fixed_actions(truth_sits, prepared.view):
            wanted.setdefault(a.name, (a.kind, {}))
    known = {s.asset: s for s in (*seen, *truth_sits)}
    actions = actions_of(wanted, list(known.values()), prepared.view)
    missing = sorted(set(wanted) - set(actions))
    verdict: OracleVerdict = oracle(prepared, actions, truth_sits, objective)
    t2 = time.perf_counter()
    plant = verdict.candidates
    chosen_plant = plant.get(rec.chosen.name)
    best_plant = plant.get(verdict.best)
    best_score = best_plant.score if best_plant is not None else math.nan
    chosen_score = chosen_plant.score if chosen_plant is not None else math.nan
    feasible_on_plant = chosen_plant is not None and chosen_plant.feasible
    within = bool(
        feasible_on_plant
        and math.isfinite(best_score)
        and chosen_score >= best_score - WITHIN * max(abs(best_score), 1e-9)
    )
    n_cited, n_good = citation_counts(rec, spec.assets, (spec.mode,))
    _, n_alerted = citation_counts(rec, [s.asset for s in seen], [s.mode for s in seen])
    verdict_text = check_text(rec.text, rec)
    searched, fixed = run.searched, run.best_fixed
    twin_saved = energy_mwh_day(fixed) - energy_mwh_day(searched) if searched and fixed else math.nan
    plant_saved = math.nan
    if searched and fixed and searched.name in plant and fixed.name in plant:
        plant_saved = energy_mwh_day(plant[fixed.name]) - energy_mwh_day(plant[searched.name])
    return {
        "id": spec.id,
        "situation": asdict(spec),
        "alerted": [s.asset + ":" + s.mode for s in seen],
        "chosen": rec.chosen.name,
        "chosen_kind": rec.chosen.kind,
        "chosen_twin_score": _finite(rec.chosen.score),
        "oracle_best": verdict.best,
        "oracle_best_score": _finite(best_score),
        "chosen_plant_score": _finite(chosen_score),
        "agree": rec.chosen.name == verdict.best,
        "within_5pct": within,
        "hard_limit_violations": list(chosen_plant.rejected) if chosen_plant is not None else ["not simulated"],
        "candidates": len(cands),
        "candidates_not_rebuilt": missing,
        "plant_feasible": sum(1 for c in plant.values() if c.feasible),
        "twin_feasible": sum(1 for c in cands if c.feasible),
        "cited": n_cited,
        "cited_matching": n_good,
        "cited_matching_alerted": n_alerted,
        "traceable": verdict_text.ok,
        "check_problems": list(verdict_text.problems),
        "generator": rec.generator,
        "notes": list(rec.notes),
        "searched": searched.name if searched else None,
        "best_fixed": fixed.name if fixed else None,
        "energy_saved_twin_mwh_day": _finite(twin_saved),
        "energy_saved_plant_mwh_day": _finite(plant_saved),
        "evaluated": run.evaluated,
        "recommend_s": run.seconds,
        "prepare_s": t1 - t0,
        "oracle_s": t2 - t1 - run.seconds,
        "plant_ranking": [
            {"name": c.name, "score": _finite(c.score), "rejected": list(c.rejected)}
            for c in sorted(plant.values(), key=lambda c: (not c.feasible, -c.score))
        ][:6],
    }


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the situations, and per kind of situation."""

    def block(part: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        n = len(part)
        cited = sum(r["cited"] for r in part)
        good = sum(r["cited_matching"] for r in part)
        alerted = sum(r["cited_matching_alerted"] for r in part)
        seconds = [r["recommend_s"] for r in part]
        return {
            "situations": n,
            "agreement": sum(r["agree"] for r in part) / n if n else None,
            "within_5pct": sum(r["within_5pct"] for r in part) / n if n else None,
            "hard_limit_violations": sum(1 for r in part if r["hard_limit_violations"]),
            "citations": cited,
            "citation_precision": good / cited if cited else None,
            "citation_precision_alerted": alerted / cited if cited else None,
            "numbers_traceable": sum(r["traceable"] for r in part) / n if n else None,
            "energy_saved_twin_mwh_day_mean": _mean([r["energy_saved_twin_mwh_day"] for r in part]),
            "energy_saved_plant_mwh_day_mean": _mean([r["energy_saved_plant_mwh_day"] for r in part]),
            "energy_compared": sum(1 for r in part if r["energy_saved_twin_mwh_day"] is not None),
            "seconds_mean": float(np.mean(seconds)) if seconds else None,
            "seconds_p95": float(np.percentile(seconds, 95)) if seconds else None,
        }

    kinds = sorted({r["situation"]["kind"] for r in rows})
    by_mode = sorted({r["situation"]["mode"] or "healthy" for r in rows})
    total = block(rows)
    total["targets_met"] = {
        "hard_limit_violations": total["hard_limit_violations"] <= TARGETS["hard_limit_violations"],
        "citation_precision": total["citation_precision"] is not None
        and total["citation_precision"] >= TARGETS["citation_precision"],
        "numbers_traceable": total["numbers_traceable"] is not None
        and total["numbers_traceable"] >= TARGETS["numbers_traceable"],
    }
    return {
        "total": total,
        "by_kind": {k: block([r for r in rows if r["situation"]["kind"] == k]) for k in kinds},
        "by_mode": {m: block([r for r in rows if (r["situation"]["mode"] or "healthy") == m]) for m in by_mode},
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(record: Mapping[str, Any]) -> str:
    """The printed summary: totals, per mode, then one line per situation."""
    t = record["summary"]["total"]
    out = [
        "# Recommendation benchmark",
        "",
        f"- split: {record['split']} (seeds {', '.join(map(str, record['seeds']))}), {t['situations']} situations",
        f"- machine: {record['machine']['cpu_count']} cores, {record['machine']['platform']}",
        f"- command: `{record['command']}`",
        f"- knowledge store: {record['knowledge']}",
        "",
        "| metric | value | target |",
        "|---|---:|---:|",
        f"| agreement with the oracle's best | {_pct(t['agreement'])} | |",
        f"| chosen within 5 % of the best's plant score | {_pct(t['within_5pct'])} | |",
        f"| hard-limit violations on the plant | {t['hard_limit_violations']} | 0 |",
        f"| citation precision ({t['citations']} citations) | {_pct(t['citation_precision'])} | >= 95 % |",
        f"| citation precision against the twin's alerts (not the truth) | {_pct(t['citation_precision_alerted'])} | |",
        f"| numbers traceable | {_pct(t['numbers_traceable'])} | 100 % |",
        f"| energy saved by the search vs best fixed, twin (MWh/day, mean of {t['energy_compared']})"
        f" | {_num(t['energy_saved_twin_mwh_day_mean'])} | |",
        f"| energy saved by the search vs best fixed, plant (MWh/day)"
        f" | {_num(t['energy_saved_plant_mwh_day_mean'])} | |",
        f"| seconds per recommendation, mean / p95 | {_num(t['seconds_mean'])} / {_num(t['seconds_p95'])} | |",
        f"| wall time of the run, s | {record['wall_s']:.0f} | |",
        "",
        "| mode | n | agree | within 5 % | violations | citation precision | traceable |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, b in record["summary"]["by_mode"].items():
        out.append(
            f"| {mode} | {b['situations']} | {_pct(b['agreement'])} | {_pct(b['within_5pct'])} |"
            f" {b['hard_limit_violations']} | {_pct(b['citation_precision'])} | {_pct(b['numbers_traceable'])} |"
        )
    out += ["", "| situation | alerted | chosen | oracle best | agree | violations |", "|---|---|---|---|---|---|"]
    for r in record["situations"]:
        out.append(
            f"| {r['id']} | {', '.join(r['alerted']) or '-'} | {r['chosen']} | {r['oracle_best'] or '-'} |"
            f" {'yes' if r['agree'] else ('~' if r['within_5pct'] else 'no')} | {len(r['hard_limit_violations'])} |"
        )
    return "\n".join(out) + "\n"


def open_knowledge(folder: Path) -> tuple[KnowledgeBase | None, str]:
    """Index the packaged corpus into a local Qdrant folder and open it; (None, why) when that fails."""
    from pumptwin.agents.documents import default_corpus_dir
    from pumptwin.agents.retrieval import KnowledgeBase, RetrievalConfig, index_documents

    try:
        config = RetrievalConfig(path=folder)
        report = index_documents(config, [default_corpus_dir()])
        return KnowledgeBase(config), f"packaged corpus: {report.written + report.unchanged} passages indexed"
    except (PumptwinError, OSError, ValueError) as exc:  # still measured, without citations; the JSON says why
        return None, f"unavailable: {type(exc).__name__}: {exc}"[:300]


def objective_from_settings() -> Objective:
    """The objective weights of the settings (``PUMPTWIN_AGENTS_*``), as the flows read them."""
    from pumptwin.flows.recommend_steps import objective
    from pumptwin.flows.settings import get_settings

    return objective(get_settings())


def run(
    specs: Sequence[SituationSpec],
    objective: Objective,
    *,
    knowledge: bool = True,
    search: bool = True,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Evaluate every situation; the rows and what the knowledge store was."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="pumptwin-bench-kb-") as tmp:
        kb, what = open_knowledge(Path(tmp) / "qdrant") if knowledge else (None, "not used (--no-kb)")
        try:
            for i, spec in enumerate(specs, 1):
                row = evaluate(spec, objective, kb, search=search)
                rows.append(row)
                if progress:
                    print(
                        f"[{i}/{len(specs)}] {spec.id}: chose {row['chosen']!r}, oracle {row['oracle_best']!r}"
                        f" ({'agree' if row['agree'] else 'differ'}; {row['recommend_s']:.2f} s)",
                        file=sys.stderr,
                    )
        finally:
            if kb is not None:
                kb.close()
    return rows, what


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the summary and write the JSON; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="report", help="seed set (default: report)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to draw situations from (overrides --split)")
    parser.add_argument("--quick", action="store_true", help="eight situations of one seed")
    parser.add_argument("--no-kb", action="store_true", help="skip the knowledge store (no citations)")
    parser.add_argument("--no-search", action="store_true", help="fixed candidates only")
    parser.add_argument("--out", type=Path, help="JSON file (default <PUMPTWIN_HOME>/bench/recommend.json)")
    args = parser.parse_args(argv)
    seeds = tuple(args.seeds) if args.seeds else SPLITS[args.split]
    split = "custom" if args.seeds else args.split
    if args.quick:
        seeds = seeds[:1] if args.seeds else (QUICK_SEED if split == "report" else SPLITS[split][0],)
        specs = quick_situations(seeds[0])
    else:
        specs = draw_situations(seeds)
    objective = objective_from_settings()
    t0 = time.perf_counter()
    rows, knowledge = run(specs, objective, knowledge=not args.no_kb, search=not args.no_search)
    wall = time.perf_counter() - t0
    record = {
        "benchmark": "recommend",
        "split": split,
        "seeds": list(seeds),
        "tuned_on": list(SPLITS["tune"]),
        "quick": args.quick,
        "objective": asdict(objective),
        "knowledge": knowledge,
        "search": not args.no_search,
        "command": " ".join(
            ["python -m benchmarks.recommend", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]
        ),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "wall_s": wall,
        "targets": TARGETS,
        "summary": summarise(rows),
        "situations": rows,
    }
    out = write_figures(record, "recommend", args.out)
    print(markdown(record))
    print(f"wrote {out}")
    return 0 if all(record["summary"]["total"]["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
