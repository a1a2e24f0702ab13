"""The checker: does a justification stay within its recommendation's evidence?

`check_text` refuses a text that cites a passage the evidence does not hold, writes a number that
no record holds (within the rounding the text shows), or names an action other than the chosen one.
It reads numbers the way an approver does: ``7.9 mm/s``, ``-10 %``, ``1,250 m3/h``, and leaves
alone the digits of identifiers and ids (``PS01.P1``, ``SOP-106#step-3``, ``WO-23017``,
``ISO 10816-3``), dates (``2024-05-02``), times (``14:30``) and the ordinals of numbered lists.

Example::

    result = check_text("Reduce PS01.P1 speed [SOP-103#step-2]: vibration 9.7 mm/s.", rec)
    result.problems
    # ('number 9.7 is not in the records (nearest: 7.9)',)
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pumptwin.agents.evidence import Candidate, Check, Passage, Recommendation
from pumptwin.twin.whatif.spec import BASE_NAME

BASE_CASE = "base case"
"""How a text names the base case (no change) without naming an alternative."""

_BRACKET = re.compile(r"\[([^\[\]\n]{1,300})\](?!\()")
"""A bracketed span that is not the text of a markdown link ``[text](url)``."""

_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
"""The target of a markdown link, ``](https://...)``."""

_ID = re.compile(r"(?:[A-Za-z][A-Za-z0-9_.-]*\d[A-Za-z0-9_.-]*|\d+)(?:#[A-Za-z0-9_.-]*)?")
"""A passage id as cited: letters then digits (``SOP-106``, ``WO-23017``) and an optional ``#slug``."""

_LIST_ORDINAL = re.compile(r"(?m)^[ \t]*(?:[-*+>][ \t]+)?\d{1,2}[.)](?=\s)")
"""The ordinal of a numbered list item at the start of a line (``1.``, ``- 2)``)."""

_TOKEN = re.compile(
    r"(?P<skip>"
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"  # date, date-time
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"  # time of day
    r"|\b(?:ISO|IEC|EN|API|ASME|DIN|ANSI|BS|IEEE|NFPA)[ ]?\d[\d.:/-]*"  # standards
    r"|[A-Za-z_]\w*(?:[-.#/]\w+)*"  # words and identifiers: PS01.P1, SOP-106#step-3, m3/h
    r")"
    r"|(?P<num>[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?P<pct>[ ]?%)?"
)
"""Words, identifiers, dates and times (skipped), and numbers with an optional percent sign."""

_REL_EPS = 1e-9
"""Relative slack on every comparison, for binary floating point."""


@dataclass(frozen=True, slots=True)
class WrittenNumber:
    """A number as written in a text.

    Attributes:
        text: The characters as written (``-10 %``).
        value: Its value, as written (``-10.0`` for ``-10 %``).
        tolerance: Half a unit in its last written place (decimal or significant figure).
        percent: True when followed by a percent sign.
    """

    text: str
    value: float
    tolerance: float
    percent: bool


def is_base_case(cand: Candidate) -> bool:
    """True for the base case: kind ``base``, or simulated as the base scenario (keep running as now).

    Args:
        cand: A candidate.

    Returns:
        Whether its figures are the base case's.
    """
    return cand.kind == "base" or (cand.spec is not None and cand.spec.name == BASE_NAME)


def plain(text: str) -> str:
    """Return ``text`` on one line, square brackets turned into parentheses.

    Record strings written into a justification go through it, so that they can neither read as
    citations nor break the markdown.

    Args:
        text: Any text.

    Returns:
        The text with runs of whitespace collapsed to one space and ``[``/``]`` replaced by ``(``/``)``.
    """
    return " ".join(text.replace("[", "(").replace("]", ")").split())


def citations(text: str) -> list[str]:
    """Return the passage ids a text cites, in order of appearance (repeats kept).

    A citation is a bracketed id (``[SOP-104#step-3]``) or several separated by commas or semicolons
    (``[WO-23017; WO-24002]``); a markdown link ``[text](url)`` is not one.

    Args:
        text: The text.

    Returns:
        The cited ids.
    """
    found: list[str] = []
    for match in _BRACKET.finditer(text):
        parts = [p.strip() for p in re.split(r"[,;]", match.group(1))]
        if parts and all(_ID.fullmatch(p) for p in parts):
            found.extend(parts)
    return found


def _mask(text: str, *, ordinals: bool) -> str:
    """Blank out citations, link targets and (when ``ordinals``) list ordinals, keeping offsets."""

    def blank(match: re.Match[str]) -> str:
        return " " * len(match.group(0))

    def blank_citation(match: re.Match[str]) -> str:
        parts = [p.strip() for p in re.split(r"[,;]", match.group(1))]
        return blank(match) if parts and all(_ID.fullmatch(p) for p in parts) else match.group(0)

    text = _BRACKET.sub(blank_citation, text)
    text = _LINK_TARGET.sub(lambda m: "]" + " " * (len(m.group(0)) - 1), text)
    return _LIST_ORDINAL.sub(blank, text) if ordinals else text


def _parse_number(raw: str, percent: bool) -> WrittenNumber:
    """Parse one number token, with the tolerance its written precision implies."""
    digits = raw.lstrip("+-\u2212").replace(",", "")
    value = float(digits) * (-1.0 if raw[:1] in ("-", "\u2212") else 1.0)
    whole, _, decimals = digits.partition(".")
    tolerance = 0.5 * 10.0 ** -len(decimals)
    if not decimals and value != 0:
        significant = len(whole.lstrip("0").rstrip("0")) or 1
        exponent = math.floor(math.log10(abs(value)))
        tolerance = max(tolerance, 0.5 * 10.0 ** (exponent - significant + 1))
    return WrittenNumber(raw + ("%" if percent else ""), value, tolerance, percent)


def numbers_in(text: str, *, skip_ordinals: bool = True) -> list[WrittenNumber]:
    """Return the numbers written in a text, skipping ids, identifiers, dates, times and list ordinals.

    Args:
        text: The text.
        skip_ordinals: Skip the ordinals of numbered list items (``1.`` at the start of a line).

    Returns:
        The numbers in order of appearance.
    """
    found: list[WrittenNumber] = []
    for match in _TOKEN.finditer(_mask(text, ordinals=skip_ordinals)):
        if match.group("num"):
            found.append(_parse_number(match.group("num"), bool(match.group("pct"))))
    return found


def _record_strings(rec: Recommendation) -> Iterator[str]:
    """Every string of the records whose numbers a text may repeat (not the alternatives' names)."""
    yield rec.chosen.name
    yield from rec.situation
    yield from rec.assets
    yield from rec.notes
    for cand in (rec.chosen, *rec.alternatives):
        yield cand.procedure
        yield from cand.numbers
        yield from cand.setpoints
        for term in cand.terms:
            yield term.name
            yield term.unit
    for score in rec.evidence.models:
        yield from (score.asset, score.name, score.version)


def _candidate_values(cand: Candidate) -> Iterator[float]:
    """A candidate's numbers, setpoints, terms (value, weight, contribution) and score."""
    yield from cand.numbers.values()
    yield from cand.setpoints.values()
    for term in cand.terms:
        yield from (term.value, term.weight, term.contribution)
    yield cand.score


def _passage_strings(passage: Passage) -> Iterator[str]:
    """A cited passage's text, title and id (its slug may name a step: ``#step-3``)."""
    yield passage.text
    yield passage.title
    yield re.sub(r"[-#_.]", " ", passage.id)


def allowed_values(rec: Recommendation, cited: Iterable[str]) -> list[float]:
    """Return the magnitudes a text about ``rec`` may write, sorted.

    Args:
        rec: The recommendation.
        cited: Ids of the passages the text cites: only their numbers are allowed.

    Returns:
        Absolute values of every number in the candidates, the situation, the model scores and
        the cited passages, ascending.
    """
    values: list[float] = []
    for cand in (rec.chosen, *rec.alternatives):
        values.extend(_candidate_values(cand))
    values.extend(score.value for score in rec.evidence.models)
    strings = list(_record_strings(rec))
    by_id = {p.id: p for p in rec.evidence.passages}
    for pid in set(cited):
        if pid in by_id:
            strings.extend(_passage_strings(by_id[pid]))
    for text in strings:  # as a text quotes them: on one line, brackets as parentheses
        values.extend(n.value for n in numbers_in(plain(text), skip_ordinals=False))
    return sorted({abs(v) for v in values if math.isfinite(v)})


def _matches(target: float, tolerance: float, allowed: list[float]) -> bool:
    """True when some allowed magnitude lies within ``tolerance`` of ``|target|``."""
    slack = tolerance * (1 + _REL_EPS) + _REL_EPS * abs(target)
    i = bisect.bisect_left(allowed, abs(target) - slack)
    return i < len(allowed) and allowed[i] <= abs(target) + slack


def _traceable(number: WrittenNumber, allowed: list[float]) -> bool:
    """True when the number, or for a percentage its fraction, matches an allowed value."""
    if _matches(number.value, number.tolerance, allowed):
        return True
    return number.percent and _matches(number.value / 100, number.tolerance / 100, allowed)


def _nearest(value: float, allowed: list[float]) -> float | None:
    """The allowed magnitude closest to ``|value|`` (None when nothing is allowed)."""
    if not allowed:
        return None
    i = bisect.bisect_left(allowed, abs(value))
    near = allowed[max(0, i - 1) : i + 1]
    return min(near, key=lambda v: abs(v - abs(value)))


def _names_in(haystack: str, name: str) -> bool:
    """True when ``name`` occurs in ``haystack`` (both lower case) not inside a longer word."""
    pattern = r"(?<![A-Za-z0-9])" + re.escape(name) + r"(?![A-Za-z0-9])"
    return re.search(pattern, haystack) is not None


def _name_problems(text: str, rec: Recommendation) -> list[str]:
    """Problems for every alternative the text names."""
    chosen = plain(rec.chosen.name).lower()
    body = plain(text).lower()
    if chosen:
        body = body.replace(chosen, " ")
    problems: list[str] = []
    for alt in rec.alternatives:
        name = plain(alt.name).lower()
        if not name or name == chosen:
            continue
        seen = body.replace(BASE_CASE, " ") if is_base_case(alt) else body
        if _names_in(seen, name):
            problems.append(f"names the alternative {alt.name!r}: only the chosen action {rec.chosen.name!r} may be")
    return problems


def check_text(text: str, rec: Recommendation, *, require_action: bool = False) -> Check:
    """Check a justification against its recommendation's records.

    Args:
        text: The justification (markdown).
        rec: The recommendation it justifies; its evidence lists the citable passages.
        require_action: Also refuse a text that does not name the chosen action (when there is a
            situation to act on and the action is not the base case): a language model's text must
            say what it recommends in the recommender's words.

    Returns:
        `Check` with one line per problem: an unknown citation, a number no record holds within
        the rounding written, an alternative named, the chosen action not named (with
        ``require_action``); ``ok`` when there is none.
    """
    if not text.strip():
        return Check(("empty text",))
    known = {p.id for p in rec.evidence.passages}
    cited = citations(text)
    problems = [
        f"cites [{pid}], which is not among the evidence passages" for pid in dict.fromkeys(cited) if pid not in known
    ]
    allowed = allowed_values(rec, (pid for pid in cited if pid in known))
    reported: set[str] = set()
    for number in numbers_in(text):
        if number.text in reported or _traceable(number, allowed):
            continue
        reported.add(number.text)
        near = _nearest(number.value, allowed)
        hint = "" if near is None else f" (nearest: {near:g})"
        problems.append(f"number {number.text} is not in the records{hint}")
    problems.extend(_name_problems(text, rec))
    if require_action and rec.situation and not is_base_case(rec.chosen) and rec.chosen.name not in plain(text):
        problems.append(f"does not name the chosen action {rec.chosen.name!r}")
    return Check(tuple(problems))
