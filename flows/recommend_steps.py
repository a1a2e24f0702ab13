"""The steps of the recommending agent: index the knowledge, recommend an action per alerted line, answer questions.

Plain functions over the settings: the Prefect flow ``recommend`` (`flows.recommend`) wraps them as
tasks, the CLI (``pumptwin knowledge``, ``pumptwin recommend``, ``pumptwin ask``) and the demo call
them directly. The twin is the saved calibration and state (`flows.twin_store`); the knowledge store
is a local Qdrant folder under ``<home>/knowledge`` unless ``PUMPTWIN_AGENTS_QDRANT_URL`` names a
server. Each recommendation is written to ``<home>/recommend/<UTC stamp>-<suffix>/line<n>/``:
``recommendation.md``, ``recommendation.json`` and the what-if files (plots) of the chosen action
beside the base case and the runners-up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.agents.evidence import Candidate
from pumptwin.agents.recommend import Objective, RecommendRun, Refusal, held_refusals, recommend
from pumptwin.agents.twin_view import TwinView
from pumptwin.flows.implement_steps import twin_refusals
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import lines_registry, load_twin
from pumptwin.flows.what_if_steps import integrity_basis, load_integrity, new_run_folder, twin_basis, write_whatif
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.estimation import TwinCalibration, calibrated_network
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.sync import alerted_lines, machine_conditions, operating_network, rated_speeds_rpm
from pumptwin.twin.whatif.spec import BASE_NAME

SCORE_TOLERANCE = 1e-9
"""Score differences below this are ties in the alternatives' table."""
ALTERNATIVES_PLOTTED = 3
"""Runners-up drawn beside the chosen action and the base case."""


def retrieval_config(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.retrieval.RetrievalConfig
    """The knowledge store's configuration from the settings (local folder or server URL)."""
    from pumptwin.agents.retrieval import RetrievalConfig

    a = settings.agents
    return RetrievalConfig(
        path=None if a.qdrant_url else settings.knowledge_dir,
        url=a.qdrant_url,
        api_key=a.qdrant_api_key.get_secret_value() if a.qdrant_api_key is not None else None,
        collection=a.collection,
        top_k=a.top_k,
    )


def knowledge_sources(settings: Settings) -> list[Path]:
    """The packaged corpus, the operator's own documents, then the reports the flows wrote.

    The packaged corpus unless ``PUMPTWIN_AGENTS_PACKAGED_CORPUS=false``; the integrity flow's
    inspection reports (``<home>/integrity/reports``) and the feedback flow's outcome reports
    (``<home>/feedback/reports``) once any is written.
    """
    from pumptwin.agents.documents import default_corpus_dir
    from pumptwin.flows.feedback_steps import outcome_reports_dir
    from pumptwin.flows.integrity_steps import reports_dir

    packaged = [default_corpus_dir()] if settings.agents.packaged_corpus else []
    folders = (reports_dir(settings), outcome_reports_dir(settings))
    written = [d for d in folders if d.is_dir() and any(d.glob("*.md"))]
    return [*packaged, *settings.agents.documents, *written]


def index_knowledge(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.retrieval.IndexReport
    """Index (or re-index: only what changed) the corpus and the operator's documents."""
    from pumptwin.agents.retrieval import index_documents

    return index_documents(retrieval_config(settings), knowledge_sources(settings))


def index_markdown(report: Any, where: str) -> str:  # noqa: ANN401 - pumptwin.agents.retrieval.IndexReport
    """What an indexing run did, as markdown: passages written, unchanged, deleted, and files skipped with why."""
    out = [
        "# Knowledge index",
        "",
        f"- store: {where}",
        f"- passages written (new or changed): {report.written:,}",
        f"- passages unchanged: {report.unchanged:,}",
        f"- passages deleted (gone from their file): {report.deleted:,}",
    ]
    if report.skipped:
        out += ["", f"Skipped ({len(report.skipped)}):", "", *[f"- `{path}`: {why}" for path, why in report.skipped]]
    return "\n".join(out) + "\n"


def open_knowledge(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.retrieval.KnowledgeBase
    """The knowledge base of the settings; a local store is first brought up to date with its sources.

    Re-indexing embeds only what changed (nothing, in a fraction of a second, when the corpus and
    the operator's documents are as indexed). A Qdrant server is indexed by ``pumptwin knowledge
    index`` only.
    """
    from pumptwin.agents.retrieval import KnowledgeBase

    if settings.agents.qdrant_url is None:
        index_knowledge(settings)
    return KnowledgeBase(retrieval_config(settings))


def evaluate_knowledge(
    settings: Settings, *, split: str | None = None, k: int = 5, questions: Sequence[Path] = ()
) -> Any:  # noqa: ANN401 - pumptwin.agents.evaluation.EvaluationReport
    """Score retrieval on the evaluation questions: recall@k and MRR, dense, sparse and hybrid."""
    from pumptwin.agents.evaluation import default_question_files, evaluate, load_questions

    kb = open_knowledge(settings)
    qs = load_questions(list(questions) or default_question_files())
    if split is not None:
        qs = [q for q in qs if q.split == split]
    return evaluate(kb, qs, k=k)


def held_back(settings: Settings, line: int, now: pd.Timestamp | None = None) -> tuple[Refusal, ...]:
    """Approved actions on ``line`` refused or undelivered (`twin_refusals`) within the hold before ``now``.

    The hold is ``agents.refusal_hold_s``.

    ``now`` defaults to the wall clock, the audit log's clock.
    """
    at = now if now is not None else pd.Timestamp.now(tz="UTC")
    return held_refusals(twin_refusals(settings, line), at, settings.agents.refusal_hold_s)


def objective(settings: Settings) -> Objective:
    """The recommender's weights from the settings."""
    a = settings.agents
    return Objective(
        risk=a.weight_risk,
        margin=a.weight_margin,
        energy_per_mwh=a.weight_energy_per_mwh,
        throughput_per_pct=a.weight_throughput_per_pct,
        maintenance=a.weight_maintenance,
        min_gain=a.min_gain,
    )


def llm_config(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.generate.LLMConfig or None
    """The language-model endpoint of ``PUMPTWIN_AGENTS_LLM_*``, None without ``PUMPTWIN_AGENTS_LLM_URL``."""
    a = settings.agents
    if a.llm_url is None:
        return None
    from pumptwin.agents.generate import LLMConfig

    key = a.llm_api_key.get_secret_value() if a.llm_api_key is not None else None
    return LLMConfig(url=a.llm_url, model=a.llm_model, api_key=key, timeout_s=a.llm_timeout_s)


def generator(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.generate.Generator or None
    """The language-model generator when ``PUMPTWIN_AGENTS_LLM_URL`` is set, else None (grounded text)."""
    config = llm_config(settings)
    if config is None:
        return None
    from pumptwin.agents.generate import ChatGenerator

    return ChatGenerator(config)


def agent_config(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.agents.generate.LLMConfig or None
    """The language model for the tool-using agent when ``PUMPTWIN_AGENTS_LLM_AGENT`` is on, else None."""
    return llm_config(settings) if settings.agents.llm_agent else None


def twin_view(settings: Settings, cal: TwinCalibration | None, line: int = 1) -> TwinView:
    """The line of the twin as it runs now: the calibrated network and machines, or the as-built network.

    The line's integrity assessment, when there is one, is read as the what-if flow reads it
    (`flows.what_if_steps.load_integrity`): its features' safe pressures and the derating are hard limits.
    """
    as_built = load_network(settings.twin.network)
    n_lines = max(cal.lines, default=1) if cal is not None else 1
    registry = lines_registry(settings.twin.network, n_lines)
    common = {
        "registry": registry,
        "line": line,
        "rated_speed_rpm": rated_speeds_rpm(registry, line),
        "accuracy": settings.twin.accuracy,
        "max_memory_mb": settings.twin.max_memory_mb,
        "integrity": load_integrity(settings, line),
    }
    if cal is None or cal.ts is None:
        return TwinView(as_built, basis=twin_basis(None), **common)  # type: ignore[arg-type]
    net = calibrated_network(operating_network(as_built, cal, line), cal, line)
    return TwinView(
        net,
        conditions=machine_conditions(cal, registry, as_built, line),
        basis=twin_basis(cal.ts),
        **common,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class UnavailableKnowledge:
    """A knowledge store that could not be opened: every search raises its error again.

    The recommender treats it as any store failing mid-run: no passages, a note naming the store,
    and the twin's numbers still reach the approver.
    """

    error: Exception

    def search(self, *args: Any, **kwargs: Any) -> list[Any]:  # noqa: ANN401 - the KnowledgeBase signature
        """Raise the error that kept the store closed."""
        raise self.error

    lookup = search


def knowledge_or_unavailable(settings: Settings) -> Any:  # noqa: ANN401 - a KnowledgeBase or UnavailableKnowledge
    """The knowledge store, or an `UnavailableKnowledge` naming why it could not be opened."""
    try:
        return open_knowledge(settings)
    except PumptwinError as exc:
        return UnavailableKnowledge(exc)


@dataclass(frozen=True)
class LineRecommendation:
    """One line's recommendation and where it was written."""

    line: int
    run: RecommendRun
    folder: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class RecommendReport:
    """The recommendations of one run.

    Attributes:
        state: The twin state they answer (None before the first synchronisation).
        lines: One per line with an active alert.
        message: What happened, in one line.
    """

    state: TwinState | None
    lines: tuple[LineRecommendation, ...]
    message: str

    @property
    def attention(self) -> bool:
        """True when some line has an action other than keeping on as now."""
        return any(r.run.recommendation.chosen.kind not in ("base", "maintenance") for r in self.lines)

    def to_markdown(self) -> str:
        """Every line's recommendation as markdown."""
        if not self.lines:
            return f"# Recommendation\n\n{self.message}\n"
        return "\n".join(recommendation_markdown(r) for r in self.lines)


def _fmt(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.3g}"


def _why_lost(c: Candidate, chosen: Candidate) -> str:
    if c.rejected:
        return "rejected: " + "; ".join(c.rejected)
    worse = sorted(
        ((tc.contribution - tw.contribution, tc.name) for tc, tw in zip(c.terms, chosen.terms, strict=False)),
    )
    parts = [f"{name} {diff:+.3g}" for diff, name in worse if diff < -SCORE_TOLERANCE][:2]
    return f"score {_fmt(c.score)} vs {_fmt(chosen.score)}" + (f" ({', '.join(parts)})" if parts else "")


def recommendation_markdown(item: LineRecommendation) -> str:
    """The recommend artifact of one line: action, effect, risk, alternatives, justification, citations, plots."""
    rec, run = item.run.recommendation, item.run
    chosen = rec.chosen
    base = next((c for c in rec.alternatives if c.kind in ("base", "maintenance")), None)
    out = [f"# Recommendation for line {item.line}: {chosen.name}", ""]
    if rec.situation:
        out += ["## Situation", "", *[f"- {s}" for s in rec.situation], ""]
    out += ["## Expected effect (twin)", "", "| figure | now | after |", "|---|---:|---:|"]
    before = base.numbers if base is not None and base is not chosen else chosen.numbers
    for key, value in chosen.numbers.items():
        out.append(f"| {key} | {_fmt(before.get(key, math.nan))} | {_fmt(value)} |")
    out += ["", "## Score", "", "| term | value | unit | weight | contribution |", "|---|---:|---|---:|---:|"]
    out += [f"| {t.name} | {_fmt(t.value)} | {t.unit} | {t.weight:g} | {_fmt(t.contribution)} |" for t in chosen.terms]
    out += [f"| **total** | | | | **{_fmt(chosen.score)}** |", ""]
    if rec.alternatives:
        out += ["## Alternatives (best first) and why each lost", "", "| action | score | why not |", "|---|---:|---|"]
        out += [f"| {c.name} | {_fmt(c.score)} | {_why_lost(c, chosen)} |" for c in rec.alternatives]
        out.append("")
    out += ["## Justification", "", rec.text.strip(), "", f"Written by: {rec.generator}."]
    if not rec.check.ok:
        out += ["", "Language-model text refused by the checker:", *[f"- {p}" for p in rec.check.problems]]
    passages = rec.evidence.passages
    if passages:
        out += ["", "## Citations", "", "| id | type | title |", "|---|---|---|"]
        out += [f"| {p.id} | {p.doc_type} | {p.title} |" for p in passages]
    if rec.evidence.models:
        out += ["", "## Model scores", "", "| asset | score | value | model version |", "|---|---|---:|---|"]
        out += [f"| {m.asset} | {m.name} | {_fmt(m.value)} | {m.version} |" for m in rec.evidence.models]
    out += ["", "## Notes", "", *[f"- {n}" for n in rec.notes]]
    out.append(f"- {run.evaluated} scenarios simulated in {run.seconds:.2f} s")
    if item.paths:
        out += ["", "Files:", "", *[f"- {kind}: `{path}`" for kind, path in item.paths.items()]]
    return "\n".join(out) + "\n"


def recommendation_dict(item: LineRecommendation) -> dict[str, Any]:
    """A JSON-ready record of one line's recommendation."""
    rec = item.run.recommendation
    return {
        "line": item.line,
        "situation": list(rec.situation),
        "assets": list(rec.assets),
        "chosen": rec.chosen.to_dict(),
        "alternatives": [c.to_dict() for c in rec.alternatives],
        "text": rec.text,
        "generator": rec.generator,
        "check": list(rec.check.problems),
        "citations": [{"id": p.id, "doc_type": p.doc_type, "title": p.title} for p in rec.evidence.passages],
        "models": [
            {"asset": m.asset, "name": m.name, "value": m.value, "version": m.version} for m in rec.evidence.models
        ],
        "notes": list(rec.notes),
        "evaluated": item.run.evaluated,
        "seconds": item.run.seconds,
        "state_ts": item.run.state_ts.isoformat() if item.run.state_ts is not None else None,
    }


def write_recommendation(
    item: LineRecommendation, view: TwinView, folder: Path, *, plots: bool = True
) -> dict[str, Path]:
    """Write one line's markdown, JSON and the what-if of the chosen action, base case and runners-up."""
    folder.mkdir(parents=True, exist_ok=True)
    rec = item.run.recommendation
    shown: list[Candidate] = [rec.chosen, *[c for c in rec.alternatives if c.feasible][:ALTERNATIVES_PLOTTED]]
    specs = [c.spec for c in shown if c.spec is not None and c.spec.name != BASE_NAME]
    paths: dict[str, Path] = {}
    if specs:
        report = view.simulate(specs)
        paths.update(
            write_whatif(
                report,
                view.network,
                folder / "whatif",
                twin=view.basis,
                line=item.line,
                plots=plots,
                integrity=integrity_basis(view.integrity),
            )
        )
    done = LineRecommendation(item.line, item.run, folder, paths)
    paths["markdown"] = folder / "recommendation.md"
    paths["json"] = folder / "recommendation.json"
    paths["markdown"].write_text(recommendation_markdown(done), encoding="utf-8")
    paths["json"].write_text(json.dumps(recommendation_dict(done), indent=1), encoding="utf-8")
    return paths


def recommend_line(
    settings: Settings, state: TwinState, view: TwinView, kb: object | None, gen: object | None, *, search: bool
) -> RecommendRun:
    """The recommendation for ``view``'s line with the settings' objective and language model, and its held refusals."""
    return recommend(
        state,
        view,
        objective(settings),
        kb=kb,
        generator=gen,
        search=search,
        agent=agent_config(settings),
        refused=held_back(settings, view.line),
    )


def recommend_lines(settings: Settings, *, search: bool = True, plots: bool = True) -> RecommendReport:
    """Recommend an action for every line with an active alert, from the saved twin state.

    A knowledge store that cannot be opened (empty, unreachable server) does not stop the run:
    the recommendation is made without passages and its notes say why, so the twin's numbers
    still reach the approver.
    """
    cal, state = load_twin(settings)
    if state is None:
        return RecommendReport(None, (), "no twin state yet: run `pumptwin sync` (or the twin-sync flow) first")
    view1 = twin_view(settings, cal, 1)
    lines = alerted_lines(state, view1.registry)
    if not lines:
        return RecommendReport(
            state, (), f"no active alerts in the twin state of {state.ts.isoformat()}: nothing to do"
        )
    kb = knowledge_or_unavailable(settings)
    gen = generator(settings)
    folder = new_run_folder(settings.recommend_dir)
    items = []
    for line in lines:
        view = view1 if line == 1 else twin_view(settings, cal, line)
        run = recommend_line(settings, state, view, kb, gen, search=search)
        item = LineRecommendation(line, run)
        paths = write_recommendation(item, view, folder / f"line{line}", plots=plots)
        items.append(LineRecommendation(line, run, folder / f"line{line}", paths))
    msg = f"{len(items)} recommendation(s) for the twin state of {state.ts.isoformat()} in {folder}"
    return RecommendReport(state, tuple(items), msg)


def ask_question(settings: Settings, question: str) -> Any:  # noqa: ANN401 - pumptwin.agents.ask.Answer
    """Answer an operator's question from the knowledge store and the saved twin state."""
    from pumptwin.agents.ask import answer

    _, state = load_twin(settings)
    return answer(question, open_knowledge(settings), state, top_k=settings.agents.top_k)
