"""PipelineByStage: hand-computed figures, properties and every bad-argument path."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.money import FxRates
from pipelinekit.reports.pipeline_by_stage import PipelineByStage, PipelineByStageResult

AS_OF = "2024-03-01T00:00:00+00:00"
SIMPLE = StageScheme.model_validate(
    {
        "name": "simple",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
UNWEIGHTED = StageScheme.model_validate(
    {
        "name": "unweighted",
        "stages": [
            {"key": "lead", "label": "Lead"},
            {"key": "offer", "label": "Offer"},
            {"key": "won", "label": "Won", "outcome": "won"},
            {"key": "lost", "label": "Lost", "outcome": "lost"},
        ],
    }
)


def opened(oid: str, stage: str, amount: str | None, **extra: Any) -> dict[str, Any]:
    record = {"type": "opened", "opportunity_id": oid, "at": "2024-01-10T00:00:00Z"}
    record |= {"stage": stage, "amount": amount, "currency": "EUR" if amount else None}
    return record | extra


def moved(oid: str, stage: str, at: str = "2024-02-01T00:00:00Z") -> dict[str, Any]:
    return {"type": "stage_changed", "opportunity_id": oid, "at": at, "stage": stage}


RECORDS = [
    opened("a", "lead", "1000", owner="ann"),
    opened("b", "lead", "3000", owner="bob"),
    opened("c", "offer", "4000", owner="ann"),
    opened("d", "offer", None, owner="ann"),
    opened("e", "lead", "2000", owner="bob"),
    moved("e", "won"),
    opened("f", "lead", "500", owner="ann"),
    moved("f", "lost"),
]


def simple_history(scheme: StageScheme = SIMPLE) -> History:
    return History.from_records(RECORDS, scheme=scheme)


def test_counts_amounts_weights_and_shares_per_stage_by_hand() -> None:
    r = PipelineByStage().compute(simple_history(), as_of=AS_OF)
    by_stage = {(row.level, row.section, row.stage): row for row in r.rows}
    lead = by_stage[("stage", "open", "lead")]
    offer = by_stage[("stage", "open", "offer")]
    # lead: a 1000 + b 3000 = 4000, weighted 10 % = 400; offer: c 4000 (d unpriced), 2000
    assert (lead.count, lead.unpriced, lead.amount, lead.weighted) == (2, 0, 4000, 400)
    assert (offer.count, offer.unpriced, offer.amount, offer.weighted) == (2, 1, 4000, 2000)
    assert lead.amount_share == 0.5
    assert lead.count_share == 0.5
    total_open = by_stage[("total", "open", None)]
    assert (total_open.count, total_open.amount, total_open.weighted) == (4, 8000, 2400)
    assert total_open.amount_share == 1.0
    won = by_stage[("stage", "won", "won")]
    lost = by_stage[("stage", "lost", "lost")]
    assert (won.count, won.amount, won.weighted) == (1, 2000, 2000)
    assert (lost.count, lost.amount, lost.weighted) == (1, 500, 0)
    assert [row.section for row in r.rows] == ["open"] * 3 + ["won"] * 2 + ["lost"] * 2
    assert r.weighted_available
    assert r.currency == "EUR"


def test_grouped_rows_have_group_totals_and_grand_totals() -> None:
    r = PipelineByStage(group_by="owner", include_closed=False).compute(
        simple_history(), as_of=AS_OF
    )
    assert r.groups == ("ann", "bob")
    records = r.to_records()
    ann_total = next(x for x in records if x["group"] == "ann" and x["level"] == "total")
    # ann: a 1000 (lead), c 4000 + d unpriced (offer) of the open 8000
    assert (ann_total["count"], ann_total["amount"], ann_total["unpriced"]) == (3, 5000, 1)
    assert ann_total["amount_share"] == 5000 / 8000
    assert ann_total["count_share"] == 0.75
    bob_offer = next(x for x in records if x["group"] == "bob" and x["stage"] == "offer")
    assert bob_offer["count"] == 0
    assert bob_offer["amount_share"] == 0.0
    grand = records[-1]
    assert grand["level"] == "grand total"
    assert grand["group"] is None
    assert (grand["count"], grand["amount"], grand["weighted"]) == (4, 8000, 2400)


def test_scheme_without_weights_counts_and_adds_but_gives_no_weighted_figures() -> None:
    r = PipelineByStage().compute(simple_history(UNWEIGHTED), as_of=AS_OF)
    assert r.weighted_available is False
    assert all(row.weighted is None for row in r.rows)
    assert r.cell("offer").amount == 4000
    assert r.cell("offer").count == 2


def test_where_and_stages_filter_what_is_reported() -> None:
    r = PipelineByStage(stages=("offer", "lead"), where=lambda o: o.owner == "ann").compute(
        simple_history(), as_of=AS_OF
    )
    assert r.stages == ("lead", "offer")
    assert [(c.stage, c.count, c.amount) for c in r.cells] == [
        ("lead", 1, Decimal(1000)),
        ("offer", 2, Decimal(4000)),
    ]


def test_currency_mix_without_rates_is_an_error() -> None:
    records = [*RECORDS, opened("g", "lead", "100") | {"currency": "USD"}]
    history = History.from_records(records, scheme=SIMPLE)
    with pytest.raises(CurrencyError):
        PipelineByStage().compute(history, as_of=AS_OF)
    with pytest.raises(CurrencyError):
        PipelineByStage(currency="EUR").compute(history, as_of=AS_OF)


def test_amounts_convert_at_the_as_of_date_with_dated_rates() -> None:
    records = [opened("g", "lead", "100") | {"currency": "USD"}, opened("h", "lead", "10")]
    history = History.from_records(records, scheme=SIMPLE)
    rates = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.9", date(2024, 6, 1): "0.5"}})
    r = PipelineByStage(currency="EUR", rates=rates).compute(history, as_of=AS_OF)
    assert r.cell("lead").amount == Decimal("100") * Decimal("0.9") + 10
    assert r.cell("lead").weighted == Decimal("10.0")
    later = PipelineByStage(currency="EUR", rates=rates).compute(
        history, as_of="2024-07-01T00:00:00Z"
    )
    assert later.cell("lead").amount == Decimal("60.0")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"group_by": "region"}, "group_by"),
        ({"currency": "eur"}, "currency"),
        ({"rates": {"USD": 1}}, "rates"),
        ({"include_closed": "yes"}, "include_closed"),
        ({"where": 3}, "where"),
        ({"stages": "lead"}, "stages"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        PipelineByStage(**kwargs)
    assert err.value.argument == argument


def test_unknown_or_closed_stage_keys_are_named_when_computing() -> None:
    with pytest.raises(ArgumentError) as err:
        PipelineByStage(stages=("lead", "nope")).compute(simple_history(), as_of=AS_OF)
    assert err.value.argument == "stages"
    assert "nope" in str(err.value)
    with pytest.raises(ArgumentError) as err:
        PipelineByStage(stages=("won",), include_closed=False).compute(
            simple_history(), as_of=AS_OF
        )
    assert err.value.argument == "stages"
    with pytest.raises(ArgumentError) as err:
        PipelineByStage().compute(simple_history(), as_of="2024-03-01")
    assert err.value.argument == "as_of"


def test_merge_refuses_other_settings_and_other_currencies() -> None:
    h = simple_history()
    r = PipelineByStage().compute(h, as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        r.merge(PipelineByStage().compute(h, as_of="2024-04-01T00:00:00Z"))
    assert err.value.argument == "other"
    with pytest.raises(ArgumentError):
        r.merge(PipelineByStage(group_by="owner").compute(h, as_of=AS_OF))
    usd = History.from_records([opened("z", "lead", "5") | {"currency": "USD"}], scheme=SIMPLE)
    with pytest.raises(CurrencyError):
        r.merge(PipelineByStage().compute(usd, as_of=AS_OF))


def test_html_shows_the_rows() -> None:
    html = PipelineByStage().compute(simple_history(), as_of=AS_OF)._repr_html_()
    assert "Pipeline by stage" in html
    assert "Total open" in html


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
instants = st.sampled_from(
    ["2024-03-01T00:00:00+00:00", "2024-06-15T12:00:00+00:00", "2024-09-30T00:00:00+00:00"]
)
group_bys = st.sampled_from([None, "owner", "product", "source", "account"])


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, group_by=group_bys)
def test_stage_totals_reconcile_with_the_snapshot(
    history: History, as_of: str, group_by: Any
) -> None:
    r = PipelineByStage(group_by=group_by).compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    assert r.total("open").count == len(pipe.open())
    assert r.total("won").count == len(pipe.won())
    assert r.total("lost").count == len(pipe.lost())
    assert r.total("open").amount == pipe.total_amount()
    assert r.total("open").weighted == pipe.weighted_total()
    every = sum((o.amount or Decimal(0) for o in pipe.values()), Decimal(0))
    assert sum((c.amount for c in r.cells), Decimal(0)) == every
    for stage in pipe.scheme.keys:
        assert sum(c.count for c in r.cells if c.stage == stage) == sum(
            1 for o in pipe.values() if o.stage == stage
        )


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants)
def test_no_look_ahead(history: History, as_of: str) -> None:
    calc = PipelineByStage(group_by="owner")
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, group_by=group_bys, seed=st.integers(0, 1000))
def test_merge_over_a_split_equals_the_whole(
    history: History, as_of: str, group_by: Any, seed: int
) -> None:
    ids = list(history.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = len(ids) // 3
    calc = PipelineByStage(group_by=group_by)
    parts: list[PipelineByStageResult] = [
        calc.compute(history.for_opportunities(ids[:cut]), as_of=as_of),
        calc.compute(history.for_opportunities(ids[cut:]), as_of=as_of),
    ]
    whole = calc.compute(history, as_of=as_of)
    merged = parts[0].merge(parts[1])
    assert merged == whole
    assert merged.to_records() == whole.to_records()
