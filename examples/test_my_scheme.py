"""Property tests for our own stage scheme and our own calculator.

Copy this file next to your tests and replace SCHEME and the calculator with yours.
Run it with: pytest test_my_scheme.py  (needs: pip install 'pipelinekit[testing]')
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given, settings
from pydantic import BaseModel, ConfigDict

from pipelinekit import History, PipelineError, StageScheme
from pipelinekit.testing import (
    InvalidRecords,
    check_calculator,
    check_scheme,
    histories,
    invalid_records,
)

# Our sales process: won stages follow one another up to payment (as in the Polish
# sales-process article).
SCHEME = StageScheme.model_validate(
    {
        "name": "acme",
        "stages": [
            {"key": "lead", "label": "Lead", "labels": {"pl": "Kontakt"}, "weight": "5"},
            {"key": "meeting", "label": "Meeting", "labels": {"pl": "Spotkanie"}, "weight": "20"},
            {"key": "offer", "label": "Offer", "labels": {"pl": "Oferta"}, "weight": "50"},
            {"key": "order", "label": "Order", "labels": {"pl": "Zamówienie"}, "weight": "80",
             "outcome": "won"},
            {"key": "paid", "label": "Paid", "labels": {"pl": "Zapłacone"}, "weight": "100",
             "outcome": "won"},
            {"key": "lost", "label": "Lost", "labels": {"pl": "Przegrane"}, "weight": "0",
             "outcome": "lost"},
        ],
        "reopen": True,
    }
)  # fmt: skip


def test_our_scheme_has_no_errors_and_only_the_warnings_we_chose() -> None:
    findings = check_scheme(SCHEME)
    assert not [f for f in findings if f.severity == "error"]
    # An order counts 80 % until it is paid: intended, so that warning is accepted.
    unexpected = [f for f in findings if f.severity == "warning" and f.stage != "order"]
    assert not unexpected, [f.message for f in unexpected]


# Our own report: how many deals sit at each stage. Counts add up, so results merge,
# which lets a distributed engine compute it per partition of opportunities.
class DealsByStage(BaseModel):
    model_config = ConfigDict(frozen=True)

    counts: tuple[tuple[str, int], ...]

    def merge(self, other: DealsByStage) -> DealsByStage:
        total = Counter(dict(self.counts)) + Counter(dict(other.counts))
        return DealsByStage(counts=tuple(sorted(total.items())))


class DealsByStageReport:
    def compute(self, history: History, *, as_of: datetime) -> DealsByStage:
        pipeline = history.until(as_of).as_of(as_of)
        counts = Counter(deal.stage for deal in pipeline.values())
        return DealsByStage(counts=tuple(sorted(counts.items())))


@settings(max_examples=30, deadline=None)
@given(histories(SCHEME, min_opportunities=1, max_opportunities=6))
def test_our_report_keeps_the_calculator_laws(history: History) -> None:
    # no look-ahead, determinism, and merge consistency (the result has .merge)
    assert check_calculator(DealsByStageReport(), history)[-1] == "merge"


@settings(max_examples=30, deadline=None)
@given(histories(SCHEME, max_opportunities=6))
def test_every_deal_is_counted_once(history: History) -> None:
    if history.end is not None:
        counts = DealsByStageReport().compute(history, as_of=history.end)
        assert sum(n for _, n in counts.counts) == len(history.opportunity_ids)


@settings(max_examples=30, deadline=None)
@given(histories(SCHEME, max_opportunities=4, lose=False, reopen=False))
def test_without_losses_no_deal_ends_lost(history: History) -> None:
    if history.end is not None:
        assert not history.as_of(history.end).lost()


# Our import code: CRM rows in, a history out, bad rows set aside with a reason.
def import_crm_rows(rows: list[dict[str, object]]) -> tuple[History, list[int]]:
    history = History.from_records(rows, scheme=SCHEME, mode="lenient")
    return history, [rejection.index for rejection in history.ingest.rejected]


@settings(max_examples=40, deadline=None)
@given(invalid_records(SCHEME))
def test_our_import_sets_aside_exactly_the_bad_row(case: InvalidRecords) -> None:
    history, rejected = import_crm_rows(list(case.records))
    assert rejected == [case.index], case.rule
    assert history.ingest.applied == len(case.records) - 1
    with pytest.raises(PipelineError):
        History.from_records(case.records, scheme=SCHEME)
