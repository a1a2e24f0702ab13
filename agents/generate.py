"""Justification text for a recommendation: templates over its evidence, or an optional language model.

`grounded_text` is the default: markdown an approver checks line by line, every number taken from the
records and written with `format_number`, every passage cited by its id. A language model
(`ChatGenerator`, any OpenAI-compatible endpoint through Haystack) is optional; `write_justification`
checks its text with `pumptwin.agents.check.check_text` and falls back to the grounded text when it
fails, when the endpoint cannot be reached or answers nothing.

Example::

    rec = write_justification(rec, ChatGenerator(LLMConfig("http://127.0.0.1:8000/v1", "local")))
    rec.generator  # "local", or "grounded (fallback from local: number 9.7 is not in the records ...)"
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pumptwin.agents.check import BASE_CASE, check_text, is_base_case, plain
from pumptwin.agents.evidence import Candidate, Check, Passage, Recommendation, Term
from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.tools import Tool

SIGNIFICANT_FIGURES = 3
"""Significant figures of every number the grounded text writes (integer digits are always kept)."""

EXCERPT_CHARS = 220
"""Longest excerpt of a passage quoted in the grounded text, characters."""

SYSTEM_PROMPT = """You write the justification of an action on a crude-oil pipeline and its pump stations,
for the operator who must approve it. The user message holds the evidence as JSON. Rules:
- Recommend only the chosen action (evidence "chosen"), named exactly as given. Never name or
  recommend any other action; call the unchanged operation "the base case".
- Use only numbers that appear in the evidence, as given or rounded. Do not compute differences,
  ratios, sums or any new figure.
- Cite passages only by their id from the evidence, one id per pair of square brackets, for example
  [SOP-103#step-2]. Use square brackets for nothing else.
- Write short markdown: the situation, the chosen action and its simulated effect (base case ->
  chosen), why it beats the runner-up (score terms), the procedure steps to follow, what past work
  orders show, relevant inspection findings, and the model scores with their versions."""
"""The rules a language model is given; `pumptwin.agents.check.check_text` enforces them."""


class GenerationError(PumptwinError, RuntimeError):
    """A language model could not give a text: endpoint unreachable, HTTP error, timeout, empty answer."""


class LLMConfigError(PumptwinError, ValueError):
    """An invalid language-model configuration; the message names the field."""


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """How to reach an OpenAI-compatible chat endpoint (a local vLLM or Ollama, or a hosted API).

    Attributes:
        url: Base URL of the API, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: Model name sent to the endpoint; also what `Recommendation.generator` records.
        api_key: API key, None when the endpoint needs none. Never serialised.
        timeout_s: Timeout of one request, s.
        max_retries: Retries after a failed request (0: fail at once and fall back).
    """

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise LLMConfigError(f"LLMConfig.url must be an http(s) URL, got {self.url!r}")
        if not self.model.strip():
            raise LLMConfigError("LLMConfig.model must not be empty")
        if not self.timeout_s > 0:
            raise LLMConfigError(f"LLMConfig.timeout_s must be > 0 s, got {self.timeout_s}")
        if self.max_retries < 0:
            raise LLMConfigError(f"LLMConfig.max_retries must be >= 0, got {self.max_retries}")


class Generator(Protocol):
    """Writes the justification of a recommendation."""

    @property
    def name(self) -> str:
        """What `Recommendation.generator` records for its texts."""
        ...

    def generate(self, rec: Recommendation) -> str:
        """Return the justification (markdown) of ``rec``."""
        ...


def format_number(x: float) -> str:
    """Format a number to `SIGNIFICANT_FIGURES` significant figures, keeping every integer digit.

    Args:
        x: The value.

    Returns:
        ``7.94`` for 7.936, ``1250`` for 1249.6, ``0.0123`` for 0.012345, ``n/a`` when not finite;
        never an exponent, never ``-0``.
    """
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    decimals = max(0, SIGNIFICANT_FIGURES - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The passage's text on one line, cut at a word boundary before ``limit`` characters."""
    flat = plain(text)
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " ..."


def _base_case(rec: Recommendation) -> Candidate | None:
    """The base case (keep running as now): the chosen candidate or the alternative that is it."""
    if is_base_case(rec.chosen):
        return rec.chosen
    return next((c for c in rec.alternatives if is_base_case(c)), None)


def _runner_up(rec: Recommendation) -> Candidate | None:
    """The best feasible alternative (alternatives come best first)."""
    return next((c for c in rec.alternatives if c.feasible and c.name != rec.chosen.name), None)


def _effect_lines(rec: Recommendation) -> list[str]:
    """Simulated figures of the chosen action, base case -> chosen where the base case has them."""
    base = _base_case(rec)
    lines: list[str] = []
    for label, value in rec.chosen.numbers.items():
        if base is not None and base is not rec.chosen and label in base.numbers:
            before, after = format_number(base.numbers[label]), format_number(value)
            change = f"{after} (unchanged)" if before == after else f"{before} -> {after}"
            lines.append(f"- {plain(label)}: {change}")
        else:
            lines.append(f"- {plain(label)}: {format_number(value)}")
    return lines


_NO_UNIT = ("", "-", "1")
"""Units of dimensionless terms, not written."""


def _term_line(term: Term, other: Term | None, other_label: str) -> str:
    """One score term of the chosen action, with the runner-up's (``other_label``) where it has the same term."""
    unit = "" if term.unit.strip() in _NO_UNIT else f" {plain(term.unit)}"
    line = (
        f"- {plain(term.name)}: {format_number(term.value)}{unit} x weight {format_number(term.weight)}"
        f" = {format_number(term.contribution)}"
    )
    if other is not None:
        line += f" ({other_label}: {format_number(other.value)}{unit}, {format_number(other.contribution)})"
    return line


def _why_lines(rec: Recommendation) -> list[str]:
    """Why the chosen action beats the runner-up, term by term."""
    runner = _runner_up(rec)
    if runner is None:
        head = f"- Score {format_number(rec.chosen.score)}; no other feasible action was found."
    else:
        label = f"the {BASE_CASE}" if is_base_case(runner) else f"the runner-up (a {plain(runner.kind)} action)"
        head = f"- Score {format_number(rec.chosen.score)} against {format_number(runner.score)} for {label}."
    others = {t.name: t for t in runner.terms} if runner is not None else {}
    other_label = BASE_CASE if runner is not None and is_base_case(runner) else "runner-up"
    return [head] + [_term_line(t, others.get(t.name), other_label) for t in rec.chosen.terms]


def _procedure_lines(passages: tuple[Passage, ...]) -> list[str]:
    """Numbered procedure steps, each citing its passage."""
    return [f"{i}. {_titled(p)} [{p.id}]" for i, p in enumerate(passages, start=1)]


def _titled(p: Passage) -> str:
    """``Title: excerpt`` of a passage (the excerpt alone when it has no title)."""
    title = plain(p.title)
    return f"{title}: {_excerpt(p.text)}" if title else _excerpt(p.text)


_OUTCOME = re.compile(r"Outcome:\s*(.+?)(?:\.(?:\s|$)|$)")
_DOWNTIME = re.compile(r"Downtime:\s*([0-9][0-9.,]*\s*h)\b")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _work_order_line(p: Passage) -> str:
    """A past work order: its outcome and downtime when the text gives them, else an excerpt."""
    outcome = _OUTCOME.search(p.text)
    downtime = _DOWNTIME.search(p.text)
    if outcome is None and downtime is None:
        return f"- {_excerpt(p.text)} [{p.id}]"
    parts = []
    if outcome is not None:
        parts.append(f"outcome: {_excerpt(outcome.group(1), 160)}")
    if downtime is not None:
        parts.append(f"downtime {plain(downtime.group(1))}")
    date = str(p.meta.get("date", "") or "")
    when = f" ({date})" if _ISO_DATE.fullmatch(date) else ""
    return f"- Work order{when}: {'; '.join(parts)} [{p.id}]"


_VERDICT = re.compile(r"Verdict:\s*(.+?\))\.")
_EFFECT = re.compile(r"Effect on (.+?after)\.")


def _outcome_line(p: Passage) -> str:
    """An earlier action's outcome report: its verdict and effects when the text gives them, else an excerpt."""
    verdict = _VERDICT.search(p.text)
    effects = _EFFECT.findall(p.text)
    if verdict is None and not effects:
        return f"- {_titled(p)} [{p.id}]"
    parts = ([verdict.group(1)] if verdict else []) + [f"on {e}" for e in effects]
    return f"- {plain(p.title)}: {'; '.join(plain(x) for x in parts)} [{p.id}]"


def _model_lines(rec: Recommendation) -> list[str]:
    """Model scores with the versions that produced them."""
    return [
        f"- {plain(m.asset)} {plain(m.name)}: {format_number(m.value)} (model version {plain(m.version)})"
        for m in rec.evidence.models
    ]


def grounded_text(rec: Recommendation) -> str:
    """Write the justification of ``rec`` from its records alone (the default generator).

    Args:
        rec: The recommendation: chosen action, alternatives, situation and evidence.

    Returns:
        Markdown: situation, chosen action and its simulated effect, why it beats the runner-up,
        procedure steps, past work orders, earlier actions' outcomes, inspection findings, manuals and
        model scores, citing
        every passage as ``[id]``; numbers to `SIGNIFICANT_FIGURES` significant figures. When nothing
        needs doing (base case chosen, no alert) a short statement.
    """
    ev = rec.evidence
    if rec.chosen.kind == "base" and not rec.situation:
        lines = ["**No action needed.** No alert is active; keep the base case."]
        if ev.models:
            lines += ["", "**Model scores**", *_model_lines(rec)]
        return "\n".join(lines)

    procedure = f" (procedure: {plain(rec.chosen.procedure)})" if rec.chosen.procedure.strip() else ""
    lines = [f"**Recommended action: {plain(rec.chosen.name)}**{procedure}"]
    if rec.situation:
        lines += ["", "**Situation**", *(f"- {plain(s)}" for s in rec.situation)]
    if rec.chosen.numbers:
        base = _base_case(rec)
        head = f"{BASE_CASE} -> recommended" if base is not None and base is not rec.chosen else "recommended"
        lines += ["", f"**Expected effect** (simulated by the twin, {head})", *_effect_lines(rec)]
    lines += ["", "**Why this action**", *_why_lines(rec)]
    sections = (
        ("**Procedure to follow**", _procedure_lines(ev.procedures)),
        ("**Past work orders on the assets**", [_work_order_line(p) for p in ev.work_orders]),
        ("**What earlier actions of the loop did**", [_outcome_line(p) for p in ev.outcomes]),
        ("**Inspection findings**", [f"- {_titled(p)} [{p.id}]" for p in ev.inspections]),
        ("**Limits from manuals and datasheets**", [f"- {_titled(p)} [{p.id}]" for p in ev.manuals]),
        ("**Model scores**", _model_lines(rec)),
    )
    for title, body in sections:
        if body:
            lines += ["", title, *body]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class GroundedGenerator:
    """The default generator: `grounded_text`, no language model."""

    name: str = "grounded"

    def generate(self, rec: Recommendation) -> str:
        """Return `grounded_text` of ``rec``."""
        return grounded_text(rec)


def _candidate_json(cand: Candidate, *, named: bool) -> dict[str, Any]:
    """A candidate as the language model sees it (without its name unless ``named``)."""
    out: dict[str, Any] = {"kind": cand.kind, "score": cand.score}
    if named:
        out |= {"name": cand.name, "procedure": cand.procedure, "setpoints": dict(cand.setpoints)}
    out["numbers"] = _finite(cand.numbers)
    out["terms"] = [
        {"name": t.name, "value": t.value, "unit": t.unit, "weight": t.weight, "contribution": t.contribution}
        for t in cand.terms
    ]
    return out


def _finite(numbers: Mapping[str, float]) -> dict[str, float | None]:
    """Numbers by label, None for a value that is not finite (JSON has no NaN)."""
    return {k: (v if math.isfinite(v) else None) for k, v in numbers.items()}


def evidence_json(rec: Recommendation) -> str:
    """The evidence of ``rec`` as compact JSON for a language model.

    Args:
        rec: The recommendation.

    Returns:
        JSON with ``chosen`` (name, numbers, terms, setpoints), ``base_case`` (numbers) and
        ``runner_up`` (kind, score, terms; no name), ``situation``, ``assets``, ``passages``
        (id, type, title, text) and ``model_scores`` (asset, name, value, version).
    """
    base = _base_case(rec)
    runner = _runner_up(rec)
    payload = {
        "chosen": _candidate_json(rec.chosen, named=True),
        "base_case": None if base is None or base is rec.chosen else {"numbers": _finite(base.numbers)},
        "runner_up": None if runner is None else _candidate_json(runner, named=False),
        "situation": list(rec.situation),
        "assets": list(rec.assets),
        "passages": [{"id": p.id, "type": p.doc_type, "title": p.title, "text": p.text} for p in rec.evidence.passages],
        "model_scores": [
            {"asset": m.asset, "name": m.name, "value": m.value, "version": m.version} for m in rec.evidence.models
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)


def chat_generator(config: LLMConfig, tools: list[Tool] | None = None) -> OpenAIChatGenerator:
    """Build Haystack's `OpenAIChatGenerator` for ``config`` (the key is a token, never serialised).

    Args:
        config: Endpoint, model, key and timeout.
        tools: Haystack tools the model may call (None: plain chat).

    Returns:
        The `haystack.components.generators.chat.OpenAIChatGenerator`.
    """
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.utils import Secret

    return OpenAIChatGenerator(
        api_key=Secret.from_token(config.api_key or "no-key"),
        api_base_url=config.url,
        model=config.model,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        tools=tools,
    )


def request_error(config: LLMConfig, exc: Exception) -> GenerationError:
    """Turn a failed request into a one-line `GenerationError` (timeout, HTTP status, connection)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return GenerationError(f"{config.model} timed out after {config.timeout_s:g} s")
    if isinstance(exc, openai.APIStatusError):
        return GenerationError(f"{config.model} answered HTTP {exc.status_code}")
    if isinstance(exc, openai.APIConnectionError):
        return GenerationError(f"cannot reach {config.url}: {exc.__cause__ or exc}")
    return GenerationError(f"{config.model} request failed: {type(exc).__name__}: {exc}")


class ChatGenerator:
    """A language model behind an OpenAI-compatible endpoint, prompted with `SYSTEM_PROMPT` and `evidence_json`.

    Example::

        gen = ChatGenerator(LLMConfig("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct", timeout_s=30))
        text = gen.generate(rec)  # raises GenerationError when the endpoint fails
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._chat: OpenAIChatGenerator | None = None

    @property
    def name(self) -> str:
        """The model's name."""
        return self.config.model

    def generate(self, rec: Recommendation) -> str:
        """Ask the model for the justification of ``rec``.

        Raises:
            GenerationError: The endpoint cannot be reached, answers an HTTP error, times out or
                answers no text.
        """
        from haystack.dataclasses import ChatMessage

        if self._chat is None:
            self._chat = chat_generator(self.config)
        messages = [ChatMessage.from_system(SYSTEM_PROMPT), ChatMessage.from_user(evidence_json(rec))]
        try:
            replies = self._chat.run(messages=messages)["replies"]
        except Exception as exc:
            raise request_error(self.config, exc) from exc
        text = replies[0].text if replies else None
        if not text or not text.strip():
            raise GenerationError(f"{self.config.model} answered no text")
        return str(text)


def write_justification(rec: Recommendation, generator: Generator | None = None) -> Recommendation:
    """Write ``rec.text`` with ``generator``, checked; the grounded text when it fails.

    Args:
        rec: The recommendation.
        generator: A language-model generator; None for the grounded text.

    Returns:
        ``rec`` with ``text``, ``generator`` and ``check`` set: the model's name and an ``ok`` check
        when its text passes; otherwise the grounded text, ``generator`` =
        ``grounded (fallback from <model>: <first problem>)`` and the problems (or the error) in ``check``.
    """
    if generator is None:
        return replace(rec, text=grounded_text(rec), generator="grounded", check=Check())
    try:
        text = generator.generate(rec)
        verdict = check_text(text, rec, require_action=True)
    except Exception as exc:  # any failure of an optional model falls back to the grounded text
        verdict = Check((" ".join(str(exc).split()) or type(exc).__name__,))
    if verdict.ok:
        return replace(rec, text=text, generator=generator.name, check=verdict)
    return replace(
        rec,
        text=grounded_text(rec),
        generator=f"grounded (fallback from {generator.name}: {verdict.problems[0]})",
        check=verdict,
    )
