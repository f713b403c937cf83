"""Understanding what a person typed: deterministic, explainable, no network model.

1. Built-in intents are recognised first: ``help``, ``recent`` executions, ``status``/``cancel``/``retry`` of an
   ``exec-…`` id, ``link <code>``, and yes/no words.
2. Each process is scored against its phrases (code ``chat_phrases``, its name and id, and the phrases and
   examples edited in admin). Words are compared one by one with rapidfuzz and two abbreviation rules
   (a prefix: "gen" for "generate"; the letters in order: "rpt" for "report"), so typos, abbreviations and
   case are tolerated. Words that became parameter values do not count.
3. Parameters come from the process's own parameter definition (:func:`extract`): ``key=value`` pairs,
   tokens that match a text field's ``regex`` (``ORD-…`` fills orderId), dropdown choices by fuzzy match
   ("high" → High), dates in words through dateparser ("last month"), numbers after their label, checkbox
   labels ("with regional breakdown").

The result says why (:attr:`Interpretation.explanation`); the engine stores it beside the message.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dateparser
from django.conf import settings
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein

EXEC_ID_RE = re.compile(r"\bexec-[0-9a-z]+\b", re.IGNORECASE)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that carry no meaning on either side ("the order", "report for me").
STOPWORDS = _word_set("a an the me my our for with as of to and on in at this that it is be by from")
# Words a person adds around a command ("please run", "can you show"): they count when a phrase has them but
# are not held against a phrase that lacks them.
FILLER = _word_set(
    "please pls plz can could would you i we want like now run start launch trigger execute kick off do some "
    "new let lets hey hi hello heptora bot just quickly what how show give get"
)
YES_WORDS = _word_set("yes y yeah yep yup sure ok okay confirm confirmed go proceed affirmative")
NO_WORDS = _word_set("no n nope cancel stop abort nevermind quit")
INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "help": ("help", "what can you do", "commands", "how does this work", "usage", "options"),
    "recent": ("recent executions", "show recent executions", "my executions", "last executions", "history",
               "list executions", "recent runs", "latest executions", "what did i run", "recent jobs"),
}
MIN_WORD_SIM = 0.7


@dataclass(frozen=True)
class ProcessEntry:
    """What chat knows about one process: the phrases that name it and its parameter definition."""

    slug: str
    name: str
    phrases: tuple[str, ...]
    fields: tuple[Mapping[str, Any], ...] = ()
    examples: tuple[str, ...] = ()
    ask_fields: tuple[str, ...] = ()


@dataclass
class Candidate:
    key: str  # a process slug, or "intent:help" / "intent:recent"
    score: float
    phrase: str
    parameters: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Interpretation:
    intent: str  # start, clarify, unknown, help, recent, status, cancel, retry, link, yes, no, empty
    process: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)
    execution_id: str | None = None
    code: str = ""
    explanation: str = ""


# --- Words ----------------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Lower case, no bot mention or slash-command punctuation, no possessive 's."""
    text = text.strip()
    text = re.sub(r"^@?heptora\b[:,]?\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^/heptora\b\s*", "", text, flags=re.IGNORECASE)
    if text.startswith("/"):
        text = text[1:].replace("_", " ")
    text = re.sub(r"(\w)['\u2019]s\b", r"\1", text)
    return text


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def word_similarity(typed: str, known: str) -> float:
    """How well a typed word stands for a known word (1 = the same)."""
    if typed == known:
        return 1.0
    if len(typed) >= 3 and known.startswith(typed):
        return 0.9  # an abbreviation by prefix: "gen" for "generate"
    if len(known) >= 4 and typed.startswith(known):
        return 0.85  # "reports" for "report", "processing" for "process"
    if len(typed) >= 3 and typed[0] == known[0] and _in_order(typed, known):
        return 0.85  # letters kept in order: "rpt" for "report", "ordr" for "order"
    if min(len(typed), len(known)) < 4:
        return 0.0
    similarity = max(fuzz.ratio(typed, known), DamerauLevenshtein.normalized_similarity(typed, known) * 100) / 100
    return similarity if similarity >= MIN_WORD_SIM else 0.0


def _in_order(short: str, long: str) -> bool:
    letters = iter(long)
    return all(char in letters for char in short)


def phrase_score(typed: Sequence[str], phrase: Sequence[str]) -> float:
    """0..1: how much of the phrase the typed words cover (70%) and how much of them it explains (30%)."""
    if not typed or not phrase:
        return 0.0
    covered = sum(max(word_similarity(t, p) for t in typed) for p in phrase) / len(phrase)
    meaningful = [t for t in typed if t not in FILLER]
    explained = (sum(1 for t in meaningful if max(word_similarity(t, p) for p in phrase) >= MIN_WORD_SIM)
                 / len(meaningful)) if meaningful else 1.0
    score = 0.7 * covered + 0.3 * explained
    if len(phrase) > 1 and _in_same_order(typed, phrase):
        score += 0.05  # "generate report monthly" is a report generated monthly, not a "monthly report"
    return round(min(score, 1.0), 3)


def _in_same_order(typed: Sequence[str], phrase: Sequence[str]) -> bool:
    positions = []
    for known in phrase:
        found = [i for i, t in enumerate(typed) if word_similarity(t, known) >= MIN_WORD_SIM]
        if not found:
            return False
        positions.append(found[0])
    return positions == sorted(positions)


# --- Parameters -----------------------------------------------------------------------------------------

MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
MONTH_WORDS = rf"(?:{MONTHS})[a-z]*"
DATE_PHRASES = re.compile(
    r"\b(?:"
    r"\d{4}-\d{2}-\d{2}|\d{4}-\d{2}"
    r"|(?:this|last|next|previous|current|past)\s+(?:month|week|year|quarter)"
    r"|today|yesterday|tomorrow"
    r"|\d+\s+(?:days?|weeks?|months?)\s+ago"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH_WORDS}(?:\s+\d{{4}})?"
    rf"|{MONTH_WORDS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|{MONTH_WORDS}\s+\d{{4}}"
    r")\b",
    re.IGNORECASE,
)
KEY_VALUE_RE = re.compile(r"([A-Za-z]\w{0,40})\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s,;]+)")
TOKEN_RE = re.compile(r"[\w$][\w\-./@$+]*")
NEGATIONS = frozenset({"no", "without", "not", "dont", "don't", "exclude", "skip"})


def parse_date(text: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A date written in words or digits ("last month", "3 november 2024", "2024-11-03"), or None."""
    config: dict[str, Any] = {"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    if now is not None:
        config["RELATIVE_BASE"] = now.replace(tzinfo=None)
    try:
        return dateparser.parse(text, languages=["en"], settings=config)
    except (ValueError, OverflowError, TypeError):
        return None


def as_field_value(spec: Mapping[str, Any], parsed: dt.datetime) -> str:
    kind = spec.get("type", "text")
    if kind == "month":
        return parsed.strftime("%Y-%m")
    if kind == "datetime":
        return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
    return parsed.strftime("%Y-%m-%d")


def choice_match(choices: Iterable[str], typed: str) -> tuple[str | None, float]:
    """The dropdown choice ``typed`` stands for ("high" → "High", "hgih" → "High"), with its score."""
    typed_norm = " ".join(words(typed))
    best: tuple[str | None, float] = (None, 0.0)
    for choice in choices:
        norm = " ".join(words(str(choice)))
        if not norm:
            continue
        if typed_norm == norm:
            return str(choice), 1.0
        if len(norm) <= 3 or len(typed_norm) <= 3:
            continue  # short codes (ERP, Low) only by exact match
        if len(norm) == 4 and sorted(typed_norm) != sorted(norm):
            continue  # four letters: only swapped letters ("hihg"), or "full" would be "Pull"
        score = max(fuzz.ratio(typed_norm, norm), DamerauLevenshtein.normalized_similarity(typed_norm, norm) * 100)
        if score >= 75 and score / 100 > best[1]:
            best = (str(choice), score / 100)
    return best


def _label_pattern(spec: Mapping[str, Any]) -> str:
    names = {spec["name"], str(spec.get("label", spec["name"]))}
    variants = set()
    for name in names:
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()
        variants.add(r"\s+".join(re.escape(w) for w in spaced.split()))
    return "|".join(sorted(variants, key=len, reverse=True))


def _compact(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class Extraction:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # the parts of the text that became values

    @property
    def consumed(self) -> set[str]:
        return {w for part in self.used for w in words(part)}

    def remainder(self, text: str) -> str:
        """``text`` without the parts that became values (they say nothing about which process it is)."""
        for part in self.used:
            text = text.replace(part, " ", 1)
        return text


def extract(fields: Sequence[Mapping[str, Any]], text: str, *, now: dt.datetime | None = None,
            only: Iterable[str] | None = None) -> Extraction:
    """Parameter values found in ``text`` for the parameter definition ``fields`` (raw, not yet validated)."""
    out = Extraction()
    wanted = set(only) if only is not None else None
    specs = [s for s in fields if wanted is None or s["name"] in wanted]
    by_key = {_compact(s["name"]): s for s in specs} | {_compact(str(s.get("label", ""))): s for s in specs}
    rest = text

    def take(spec: Mapping[str, Any], value: Any, source: str, used: str) -> None:
        out.values[spec["name"]] = value
        out.sources[spec["name"]] = source
        if used:
            out.used.append(used)

    # 1. key=value pairs (the fallback that always works: "orderId=ORD-1 priority=high")
    for match in list(KEY_VALUE_RE.finditer(text)):
        spec = by_key.get(_compact(match.group(1).split()[-1])) or by_key.get(_compact(match.group(1)))
        if spec is None:
            continue
        value = match.group(2).strip("\"'")
        if spec.get("type") == "dropdown":
            value = choice_match(spec["choices"], value)[0] or value
        take(spec, value, f"'{match.group(0)}' (key=value)", match.group(0))
        rest = rest.replace(match.group(0), " ")

    tokens = [t.rstrip(".,;:!?") for t in TOKEN_RE.findall(rest)]
    lowered = [t.lower() for t in tokens]
    used_tokens: set[int] = set()
    date_phrases = [m for m in DATE_PHRASES.finditer(rest)]
    used_dates: set[int] = set()

    for spec in specs:
        name, kind = spec["name"], spec.get("type", "text")
        if name in out.values:
            continue
        if kind in ("text", "textarea") and spec.get("regex"):
            pattern = spec["regex"]
            try:
                if re.search(pattern, "word") or re.search(pattern, "Word"):
                    continue  # a pattern that fits plain words cannot pick a value out of a sentence
            except re.error:
                continue
            for index, token in enumerate(tokens):
                if index in used_tokens or EXEC_ID_RE.fullmatch(token):
                    continue
                for candidate in (token, token.upper()):
                    if re.search(pattern, candidate):
                        take(spec, candidate, f"'{token}' (pattern {pattern})", token)
                        used_tokens.add(index)
                        break
                if name in out.values:
                    break
        elif kind == "email":
            for index, token in enumerate(tokens):
                if index not in used_tokens and re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", token, re.IGNORECASE):
                    take(spec, token, f"'{token}' (an e-mail address)", token)
                    used_tokens.add(index)
                    break
        elif kind == "dropdown":
            best: tuple[float, str, int, int] | None = None
            for choice in spec["choices"]:
                size = len(words(str(choice))) or 1
                for start in range(len(tokens) - size + 1):
                    span = range(start, start + size)
                    if any(i in used_tokens for i in span):
                        continue
                    typed = " ".join(lowered[i] for i in span)
                    matched, score = choice_match([choice], typed)
                    if matched and (best is None or score > best[0]):
                        best = (score, matched, start, size)
            if best is not None:
                score, matched, start, size = best
                typed = " ".join(tokens[start:start + size])
                how = "choice" if score == 1 else f"choice, {int(score * 100)}% alike"
                take(spec, matched, f"'{typed}' ({how})", typed)
                used_tokens.update(range(start, start + size))
        elif kind in ("date", "month", "datetime"):
            for index, match in enumerate(date_phrases):
                if index in used_dates or all(w in out.consumed for w in words(match.group(0))):
                    continue  # already another field's value ("this month" as the period's choice)
                parsed = parse_date(match.group(0), now=now)
                if parsed is None:
                    continue
                used_dates.add(index)
                take(spec, as_field_value(spec, parsed), f"'{match.group(0)}' (a date in words)", match.group(0))
                break
        elif kind == "number":
            number = r"\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
            found = re.search(rf"\b(?:{_label_pattern(spec)})\b\s*(?:of|is|to|at|=|:)?\s*{number}", rest, re.IGNORECASE)
            if found is None and spec.get("prefix") == "$":
                found = re.search(r"\$\s*(\d[\d,]*(?:\.\d+)?)", rest)
            if found is not None:
                take(spec, found.group(1).replace(",", ""), f"'{found.group(0).strip()}' (a number)", found.group(1))
        elif kind == "checkbox":
            label = [w for w in content_words(str(spec.get("label", name))) if w not in {"include", "enable"}]
            if not label:
                continue
            for start in range(len(tokens) - len(label) + 1):
                window = lowered[start:start + len(label)]
                if all(word_similarity(t, w) >= 0.8 for t, w in zip(window, label, strict=True)):
                    negated = start > 0 and lowered[start - 1] in NEGATIONS
                    take(spec, not negated, f"'{' '.join(tokens[start:start + len(label)])}' (a checkbox label)", "")
                    break
    _imply_conditions(specs, out)
    return out


def _imply_conditions(specs: Sequence[Mapping[str, Any]], out: Extraction) -> None:
    """A value for a field shown only under a condition implies the condition ("for EMEA" → breakdown)."""
    by_name = {s["name"]: s for s in specs}
    for name in list(out.values):
        for other, expected in (by_name.get(name, {}).get("show_if") or {}).items():
            if other in by_name and other not in out.values:
                out.values[other] = expected
                out.sources[other] = f"implied by {name}"


# --- Interpretation -------------------------------------------------------------------------------------


def _intent_candidates(typed: list[str]) -> list[Candidate]:
    found = []
    for intent, phrases in INTENT_PHRASES.items():
        score, phrase = max((phrase_score(typed, content_words(p) or words(p)), p) for p in phrases)
        found.append(Candidate(key=f"intent:{intent}", score=score, phrase=phrase))
    return found


def score_process(entry: ProcessEntry, text: str, *, now: dt.datetime | None = None) -> Candidate:
    extraction = extract(entry.fields, text, now=now)
    # Words that became values say little about the process, except when its phrases hold them ("sales
    # report"): score with and without them and keep the better.
    typings = [content_words(extraction.remainder(text)), content_words(text)]
    best, best_phrase = 0.0, ""
    for phrase in entry.phrases:
        known = content_words(phrase) or words(phrase)
        score = max(phrase_score(typed, known) for typed in typings)
        if score > best:
            best, best_phrase = score, phrase
    if best > 0 and extraction.values:
        evidence = sum(1 for source in extraction.sources.values() if "pattern" in source or "choice" in source)
        best = min(1.0, best + 0.05 * min(evidence, 2))
    return Candidate(key=entry.slug, score=round(best, 3), phrase=best_phrase, parameters=extraction.values,
                     sources=extraction.sources)


def interpret(text: str, catalog: Sequence[ProcessEntry], *, now: dt.datetime | None = None) -> Interpretation:
    """What ``text`` asks for, given the processes in ``catalog``."""
    text = normalize(text)
    lowered = text.lower()
    plain = " ".join(words(text))
    if not plain:
        return Interpretation(intent="empty", explanation="nothing typed")
    link = re.fullmatch(r"\s*link\s+([A-Za-z0-9-]{4,20})\s*", text, re.IGNORECASE)
    if link:
        return Interpretation(intent="link", code=link.group(1), explanation="the link command")
    if plain in YES_WORDS:
        return Interpretation(intent="yes", explanation=f"'{plain}' is a yes")
    if plain in NO_WORDS:
        return Interpretation(intent="no", explanation=f"'{plain}' is a no")
    execution = EXEC_ID_RE.search(lowered)
    if execution:
        execution_id = execution.group(0)
        verbs = set(words(lowered.replace(execution_id, " ")))
        if verbs & {"cancel", "stop", "abort", "kill"}:
            intent = "cancel"
        elif verbs & {"retry", "rerun", "restart", "again"}:
            intent = "retry"
        else:
            intent = "status"
        return Interpretation(intent=intent, execution_id=execution_id,
                              explanation=f"an execution id ({execution_id}) with '{intent}'")

    typed = content_words(text)
    candidates = _intent_candidates(typed or words(text))
    candidates += [score_process(entry, text, now=now) for entry in catalog]
    candidates.sort(key=lambda c: c.score, reverse=True)
    candidates = [c for c in candidates if c.score > 0]
    threshold = settings.HEPTORA_CHAT_MATCH_THRESHOLD
    if not candidates:
        return Interpretation(intent="unknown", explanation="no phrase of any process or command matched")
    best = candidates[0]
    runner_up = candidates[1].score if len(candidates) > 1 else 0.0
    why = f"'{best.phrase}' matched {best.score:.2f}"
    if best.parameters:
        why += "; " + "; ".join(f"{name} from {source}" for name, source in best.sources.items())
    if best.score >= threshold and round(best.score - runner_up, 3) >= 0.05:
        if best.key.startswith("intent:"):
            return Interpretation(intent=best.key.split(":", 1)[1], score=best.score, candidates=candidates[:3],
                                  explanation=why)
        return Interpretation(intent="start", process=best.key, parameters=best.parameters, score=best.score,
                              candidates=candidates[:3], explanation=why)
    close = [c for c in candidates[:3] if c.score >= max(0.4, best.score - 0.25)]
    if best.score >= 0.45 and close:
        names = ", ".join(f"{c.key} {c.score:.2f}" for c in close)
        return Interpretation(intent="clarify", score=best.score, candidates=close,
                              explanation=f"not sure: {names}")
    return Interpretation(intent="unknown", score=best.score, candidates=candidates[:3],
                          explanation=f"best guess {best.key} only {best.score:.2f}")
