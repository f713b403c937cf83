"""The evaluation set: at least 95% of the phrasings in evaluation_set.py must be understood exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from chat_app.selectors import chat_catalog
from chat_app.understanding import Interpretation, interpret
from tests.chat_app.evaluation_set import CASES

pytestmark = pytest.mark.django_db
READ_ON = dt.datetime(2024, 11, 15, 12, 0, tzinfo=dt.UTC)


def understood(meaning: Interpretation, expected: dict) -> bool:
    if "process" in expected:
        return (meaning.intent, meaning.process, meaning.parameters) == ("start", expected["process"],
                                                                         expected["params"])
    intent = expected["intent"]
    if intent == "unknown":
        return meaning.intent in ("unknown", "clarify")
    if intent == "clarify":
        return meaning.intent == "clarify" and set(expected["candidates"]) <= {c.key for c in meaning.candidates}
    return (meaning.intent, meaning.execution_id) == (intent, expected.get("execution"))


def test_the_evaluation_set_is_big_and_varied_enough() -> None:
    assert len(CASES) >= 60
    expected_processes = {e.get("process") for _, e in CASES}
    assert {"order-processing", "report-generation", "data-sync", "monthly-report"} <= expected_processes
    assert sum(1 for _, e in CASES if e.get("intent") == "unknown") >= 5
    assert sum(1 for _, e in CASES if e.get("params") == {}) >= 5  # missing parameters


def test_at_least_95_percent_of_the_phrasings_are_understood() -> None:
    catalog = chat_catalog()
    confusion = []
    for text, expected in CASES:
        meaning = interpret(text, catalog, now=READ_ON)
        if not understood(meaning, expected):
            got = meaning.process or meaning.intent
            confusion.append(f"{text!r}: expected {expected}, got {got} {meaning.parameters} ({meaning.explanation})")
    accuracy = 1 - len(confusion) / len(CASES)
    print(f"\nchat evaluation: {len(CASES) - len(confusion)}/{len(CASES)} understood ({accuracy:.1%})")
    print("confusion list:" + ("".join(f"\n  {line}" for line in confusion) or " empty"))
    assert accuracy >= 0.95, "\n".join(confusion)
