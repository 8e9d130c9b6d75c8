"""Learned forecasters over partitions: what they learn is a sum, so it merges.

The historical forecaster's evidence (reached/won counts, stays, new-business sums) and the
Markov forecaster's transition counts are learned per partition of opportunities, merged,
and passed back as ``learned=``; forecasts of the partitions made with the merged tables
then merge into exactly the forecast of the whole history, Decimal for Decimal.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, demo, schemes
from pipelinekit.calculators import compute_partitioned
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.forecasts.historical import (
    HistoricalEvidence,
    HistoricalForecast,
    HistoricalLearner,
)
from pipelinekit.forecasts.markov import MarkovForecast, count_transitions

AS_OF = "2024-09-30T00:00:00+00:00"

_CACHE: dict[int, History] = {}


def _history(seed: int) -> History:
    if seed not in _CACHE:
        _CACHE[seed] = demo.demo_history(opportunities=80, seed=seed)
    return _CACHE[seed]


def _split(history: History, labels: list[int], parts: int) -> list[History]:
    ids = history.opportunity_ids
    groups: list[list[str]] = [[] for _ in range(parts)]
    for oid, label in zip(ids, labels * (len(ids) // len(labels) + 1), strict=False):
        groups[label % parts].append(oid)
    return [history.for_opportunities(g) for g in groups]


SETTINGS = st.sampled_from(
    [
        {},
        {"segment_by": "product"},
        {"segment_by": "owner", "prior_strength": 3.0},
        {"lookback": timedelta(days=120)},
        {"stage_prior": 0.0, "min_deals": 5, "horizon": 2},
        {"period": "quarter", "horizon": 2, "new_business_periods": 2},
    ]
)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 5),
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=20),
    parts=st.integers(1, 4),
    kwargs=SETTINGS,
    as_of=st.sampled_from(["2024-03-15T00:00:00Z", AS_OF, "2024-12-31T12:00:00Z"]),
)
def test_historical_forecasts_of_partitions_with_merged_evidence_add_up_to_the_whole(
    seed: int, labels: list[int], parts: int, kwargs: dict[str, Any], as_of: str
) -> None:
    whole = _history(seed)
    pieces = _split(whole, labels, parts)
    forecaster = HistoricalForecast(**kwargs)
    evidence = [forecaster.learn(p, as_of=as_of) for p in pieces]
    merged = reduce(lambda a, b: a.merge(b), evidence)
    assert merged == forecaster.learn(whole, as_of=as_of)
    # associativity: a different merge tree gives the same evidence
    if len(evidence) >= 3:
        right = reduce(lambda a, b: b.merge(a), reversed(evidence[1:]))
        assert evidence[0].merge(right) == merged
    using = HistoricalForecast(**kwargs, learned=merged)
    by_parts = reduce(lambda a, b: a.merge(b), (using.compute(p, as_of=as_of) for p in pieces))
    assert by_parts == forecaster.compute(whole, as_of=as_of)


MARKOV_SETTINGS = st.sampled_from(
    [
        {"horizon": 2},
        {"horizon": 3, "new_business_periods": 2},
        {"period": "quarter", "horizon": 2},
        {"horizon": 1, "new_business": False},
        {"horizon": 2, "lookback": timedelta(days=60)},
    ]
)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 5),
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=20),
    parts=st.integers(1, 4),
    kwargs=MARKOV_SETTINGS,
    as_of=st.sampled_from(["2024-03-15T00:00:00Z", AS_OF, "2024-12-31T12:00:00Z"]),
)
def test_markov_forecasts_of_partitions_with_merged_evidence_add_up_to_the_whole(
    seed: int, labels: list[int], parts: int, kwargs: dict[str, Any], as_of: str
) -> None:
    whole = _history(seed)
    pieces = _split(whole, labels, parts)
    forecaster = MarkovForecast(**kwargs)
    evidence = [forecaster.learn(p, as_of=as_of) for p in pieces]
    merged = reduce(lambda a, b: a.merge(b), evidence)
    assert merged == forecaster.learn(whole, as_of=as_of)
    assert merged.counts == count_transitions(whole, as_of=as_of, lookback=kwargs.get("lookback"))
    if len(evidence) >= 3:
        right = reduce(lambda a, b: b.merge(a), reversed(evidence[1:]))
        assert evidence[0].merge(right) == merged
    using = MarkovForecast(**kwargs, learned=merged)
    by_parts = reduce(lambda a, b: a.merge(b), (using.compute(p, as_of=as_of) for p in pieces))
    assert by_parts == forecaster.compute(whole, as_of=as_of)


def test_merged_markov_forecasts_keep_new_business_once() -> None:
    whole = _history(2)
    forecaster = MarkovForecast(horizon=3)
    evidence = forecaster.learn(whole, as_of=AS_OF)
    a, b = whole.partition(2)
    using = MarkovForecast(horizon=3, learned=evidence)
    fa, fb = using.compute(a, as_of=AS_OF), using.compute(b, as_of=AS_OF)
    assert [r.new for r in fa.rows] == [r.new for r in fb.rows]
    assert any(r.new > 0 for r in fa.rows)
    merged = fa.merge(fb)
    assert [r.new for r in merged.rows] == [r.new for r in fa.rows]
    assert merged == forecaster.compute(whole, as_of=AS_OF)
    alone = MarkovForecast(horizon=3).compute(a, as_of=AS_OF)  # other evidence: refused
    with pytest.raises(ArgumentError, match="same evidence") as err:
        alone.merge(fb)
    assert err.value.argument == "other"


def test_the_learner_is_a_calculator_for_compute_partitioned() -> None:
    whole = _history(1)
    parts = whole.partition(3)
    forecaster = HistoricalForecast(segment_by="source")
    learner = forecaster.learner()
    assert isinstance(learner, HistoricalLearner)
    evidence = compute_partitioned(learner, parts, as_of=AS_OF)
    assert isinstance(evidence, HistoricalEvidence)
    assert evidence == forecaster.learn(whole, as_of=AS_OF)
    using = HistoricalForecast(segment_by="source", learned=evidence)
    assert compute_partitioned(using, parts, as_of=AS_OF) == forecaster.compute(whole, as_of=AS_OF)


def test_merged_forecasts_keep_new_business_once() -> None:
    whole = _history(2)
    evidence = HistoricalForecast().learn(whole, as_of=AS_OF)
    a, b = whole.partition(2)
    using = HistoricalForecast(learned=evidence)
    fa, fb = using.compute(a, as_of=AS_OF), using.compute(b, as_of=AS_OF)
    merged = fa.merge(fb)
    # new business belongs to the shared evidence: the same in each part, kept once
    assert [r.new for r in fa.rows] == [r.new for r in fb.rows]
    assert any(r.new > 0 for r in fa.rows)
    assert [r.new for r in merged.rows] == [r.new for r in fa.rows]
    # what the parts won and expect adds up
    for m, x, y in zip(merged.rows, fa.rows, fb.rows, strict=True):
        assert m.won == x.won + y.won
        assert m.expected == x.expected + y.expected


def test_evidence_counts_are_the_closed_deals_by_hand() -> None:
    # three deals: a won from prospecting via qualification, b lost in prospecting, c open
    records = [
        {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
         "stage": "prospecting", "amount": "100", "currency": "EUR"},
        {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-11T00:00:00Z",
         "stage": "qualification"},
        {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-16T00:00:00Z",
         "stage": "closed-won"},
        {"type": "opened", "opportunity_id": "b", "at": "2024-01-02T00:00:00Z",
         "stage": "prospecting", "amount": "50", "currency": "EUR"},
        {"type": "stage_changed", "opportunity_id": "b", "at": "2024-01-06T00:00:00Z",
         "stage": "closed-lost"},
        {"type": "opened", "opportunity_id": "c", "at": "2024-02-01T00:00:00Z",
         "stage": "prospecting", "amount": "80", "currency": "EUR"},
    ]  # fmt: skip
    h = History.from_records(records, scheme=schemes.get("salesforce"))
    e = HistoricalForecast().learn(h, as_of="2024-03-01T00:00:00Z")
    assert (e.closed, e.won, e.currency) == (2, 1, "EUR")
    counts = {r.stage: (r.deals, r.won) for r in e.reached}
    assert counts["prospecting"] == (2, 1)
    assert counts["qualification"] == (1, 1)  # only a reached it
    assert counts["negotiation-review"] == (1, 1)  # a won deal reached every open stage
    timing = {t.stage: t for t in e.timings}
    assert timing["prospecting"].wins == ((10.0, 15.0),)  # stayed 10 days, won 15 after
    assert timing["prospecting"].losses == (4.0,)
    assert timing["qualification"].wins == ((5.0, 5.0),)
    assert [(c.won_in.isoformat(), c.created_in.isoformat(), c.amount) for c in e.created_won] == [
        ("2024-01-01", "2024-01-01", Decimal("100"))
    ]
    assert e.history_start is not None and e.history_start.isoformat().startswith("2024-01-01")
    assert e.to_records()[0] == {"segment": None, "stage": "prospecting", "deals": 2, "won": 1}


# -- bad input ---------------------------------------------------------------------------------


def test_learned_must_be_evidence() -> None:
    with pytest.raises(ArgumentError) as err:
        HistoricalForecast(learned={"closed": 3})  # type: ignore[arg-type]
    assert err.value.argument == "learned"
    with pytest.raises(ArgumentError) as err:
        MarkovForecast(learned="counts")  # type: ignore[arg-type]
    assert err.value.argument == "learned"


@pytest.mark.parametrize(
    ("learned_with", "used_with", "name"),
    [
        ({}, {"segment_by": "owner"}, "segment_by"),
        ({"period": "quarter"}, {}, "period"),
        ({"lookback": timedelta(days=90)}, {}, "lookback"),
    ],
)
def test_evidence_learned_with_other_settings_is_refused(
    learned_with: dict[str, Any], used_with: dict[str, Any], name: str
) -> None:
    h = _history(0)
    evidence = HistoricalForecast(**learned_with).learn(h, as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        HistoricalForecast(**used_with, learned=evidence).compute(h, as_of=AS_OF)
    assert err.value.argument == "learned"
    assert name in str(err.value)


def test_evidence_from_another_as_of_or_scheme_is_refused() -> None:
    h = _history(0)
    evidence = HistoricalForecast().learn(h, as_of="2024-06-30T00:00:00Z")
    with pytest.raises(ArgumentError, match="as_of") as err:
        HistoricalForecast(learned=evidence).compute(h, as_of=AS_OF)
    assert err.value.argument == "learned"
    other = demo.demo_history(opportunities=10, seed=1, scheme=schemes.get("polish-crm-funnel"))
    evidence = HistoricalForecast().learn(other, as_of=AS_OF)
    with pytest.raises(ArgumentError, match="scheme") as err:
        HistoricalForecast(learned=evidence).compute(h, as_of=AS_OF)
    assert err.value.argument == "learned"
    counts = count_transitions(h, as_of=AS_OF)
    with pytest.raises(ArgumentError, match="MarkovEvidence") as err:
        MarkovForecast(learned=counts)  # type: ignore[arg-type]
    assert err.value.argument == "learned"
    early = MarkovForecast().learn(h, as_of="2024-06-30T00:00:00Z")
    with pytest.raises(ArgumentError, match="as_of") as err:
        MarkovForecast(learned=early).compute(h, as_of=AS_OF)
    assert err.value.argument == "learned"
    evidence = MarkovForecast().learn(h, as_of=AS_OF)
    with pytest.raises(ArgumentError, match="states") as err:
        MarkovForecast(learned=evidence).compute(other, as_of=AS_OF)
    assert err.value.argument == "learned"


def test_evidence_merge_refuses_other_things() -> None:
    h = _history(0)
    a = HistoricalForecast().learn(h, as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        a.merge(count_transitions(h, as_of=AS_OF))  # type: ignore[arg-type]
    assert err.value.argument == "other"
    b = HistoricalForecast().learn(h, as_of="2024-08-31T00:00:00Z")
    with pytest.raises(ArgumentError, match="as_of"):
        a.merge(b)
    c = HistoricalForecast(segment_by="product").learn(h, as_of=AS_OF)
    with pytest.raises(ArgumentError, match="segment_by"):
        a.merge(c)


def test_evidence_in_two_currencies_does_not_merge_or_mix() -> None:
    eur = demo.demo_history(opportunities=30, seed=1, currency="EUR")
    usd = demo.demo_history(opportunities=30, seed=2, currency="USD")
    a = HistoricalForecast().learn(eur, as_of=AS_OF)
    b = HistoricalForecast().learn(usd, as_of=AS_OF)
    assert (a.currency, b.currency) == ("EUR", "USD")
    with pytest.raises(ArgumentError, match="currency"):
        a.merge(b)
    with pytest.raises(CurrencyError):
        HistoricalForecast(learned=b).compute(eur, as_of=AS_OF)


def test_evidence_without_amounts_merges_with_any_currency() -> None:
    h = _history(0)
    a = HistoricalForecast().learn(h, as_of=AS_OF)
    empty = HistoricalForecast().learn(h.for_opportunities([]), as_of=AS_OF)
    assert empty.currency is None and not empty.created_won
    assert a.merge(empty) == a
    assert empty.merge(a).currency == a.currency
