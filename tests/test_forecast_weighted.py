"""WeightedForecast: hand-computed placement, spread, grouping, properties and bad arguments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo, schemes
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.forecasts.result import LATER, NO_CLOSE_DATE, OVERDUE, Forecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.money import FxRates

AS_OF = "2024-03-15T12:00:00+00:00"


def _opened(oid: str, at: str, stage: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"{at}T09:00:00+00:00",
        "stage": stage,
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def _moved(oid: str, at: str, stage: str) -> dict[str, Any]:
    return {
        "type": "stage_changed",
        "opportunity_id": oid,
        "at": f"{at}T09:00:00+00:00",
        "stage": stage,
    }


def small_history() -> History:
    """Four open deals (one per labelled place), one later deal, won and lost deals.

    o-1 proposal (75 %), 10 000, closes 2024-03-20   -> March, 7 500
    o-2 needs-analysis with override 40 %, 20 000, closes 2024-04-10 -> April, 8 000
    o-3 value-proposition (50 %), 6 000, closes 2024-03-01 (< as_of) -> overdue, 3 000
    o-4 negotiation (90 %), 5 000, no close date      -> no close date, 4 500
    o-7 qualification (10 %), 30 000, closes 2024-06-15 -> later, 3 000
    o-5 won 2024-03-05, 12 000 -> March won; o-8 won in February -> outside the horizon
    o-6 lost; o-1 is won after as_of (must not be seen).
    """
    records = [
        _opened("o-1", "2024-01-10", "prospecting", "10000", owner="ann",
                expected_close="2024-03-20"),
        _opened("o-2", "2024-01-15", "needs-analysis", "20000", owner="bob",
                expected_close="2024-04-10"),
        _opened("o-3", "2024-01-20", "value-proposition", "6000", owner="ann",
                expected_close="2024-03-01"),
        _opened("o-4", "2024-02-01", "negotiation-review", "5000", owner="bob"),
        _opened("o-5", "2024-01-05", "negotiation-review", "12000", owner="ann",
                expected_close="2024-03-31"),
        _opened("o-6", "2024-01-06", "prospecting", "50000", owner="chen",
                expected_close="2024-03-31"),
        _opened("o-7", "2024-02-02", "qualification", "30000", owner="chen",
                expected_close="2024-06-15"),
        _opened("o-8", "2024-01-07", "negotiation-review", "9999", owner="chen",
                expected_close="2024-02-28"),
        _moved("o-1", "2024-02-01", "proposal-price-quote"),
        {"type": "probability_set", "opportunity_id": "o-2", "at": "2024-02-10T09:00:00+00:00",
         "probability": "40"},
        _moved("o-6", "2024-02-05", "closed-lost"),
        _moved("o-8", "2024-02-20", "closed-won"),
        _moved("o-5", "2024-03-05", "closed-won"),
        _moved("o-1", "2024-03-20", "closed-won"),
    ]  # fmt: skip
    return History.from_records(records, scheme=schemes.get("salesforce"))


def test_hand_computed_buckets_and_won_placement() -> None:
    f = WeightedForecast(period="month", horizon=2).compute(small_history(), as_of=AS_OF)
    assert [r.bucket for r in f.rows] == ["2024-03", "2024-04", LATER, OVERDUE, NO_CLOSE_DATE]
    march, april = f.row("2024-03"), f.row("2024-04")
    assert (march.start, march.end) == (date(2024, 3, 1), date(2024, 4, 1))
    assert (march.won, march.expected, march.deals) == (Decimal(12000), Decimal(7500), 1)
    assert (april.won, april.expected, april.deals) == (Decimal(0), Decimal(8000), 1)
    assert f.row(LATER).expected == Decimal(3000)
    assert f.row(LATER).start == date(2024, 5, 1)
    assert f.row(OVERDUE).expected == Decimal(3000)
    assert f.row(NO_CLOSE_DATE).expected == Decimal(4500)
    assert f.currency == "EUR"
    assert f.method == "weighted"


def test_std_is_root_of_bernoulli_variance_per_row() -> None:
    f = WeightedForecast(horizon=2).compute(small_history(), as_of=AS_OF)
    # 10 000 * sqrt(.75 * .25) = 4330.127...; 20 000 * sqrt(.4 * .6) = 9797.958...
    assert f.row("2024-03").std == Decimal("4330.13")
    assert f.row("2024-04").std == Decimal("9797.96")
    assert f.row(LATER).std == Decimal("9000.00")  # 30 000 * sqrt(.1 * .9)
    assert f.row(OVERDUE).std == Decimal("3000.00")  # 6 000 * .5
    assert f.row(NO_CLOSE_DATE).std == Decimal("1500.00")  # 5 000 * .3


def test_per_deal_rows_carry_probability_and_bucket() -> None:
    f = WeightedForecast(horizon=2).compute(small_history(), as_of=AS_OF)
    by_id = {d.opportunity_id: d for d in f.deals}
    assert sorted(by_id) == ["o-1", "o-2", "o-3", "o-4", "o-7"]
    assert by_id["o-1"].win_probability == 0.75
    assert by_id["o-2"].win_probability == 0.4  # the override, not the stage's 20 %
    assert (by_id["o-2"].expected, by_id["o-2"].bucket) == (Decimal(8000), "2024-04")
    assert by_id["o-3"].bucket == OVERDUE
    assert by_id["o-4"].bucket == NO_CLOSE_DATE
    assert by_id["o-7"].bucket == LATER


def test_grouped_by_owner_keeps_every_period_for_every_owner() -> None:
    f = WeightedForecast(horizon=2, group_by="owner").compute(small_history(), as_of=AS_OF)
    assert f.row("2024-03", "ann").won == Decimal(12000)
    assert f.row("2024-03", "ann").expected == Decimal(7500)
    assert f.row("2024-04", "bob").expected == Decimal(8000)
    assert f.row("2024-03", "chen").total == Decimal(0)
    assert f.row(OVERDUE, "ann").expected == Decimal(3000)
    assert f.row(NO_CLOSE_DATE, "bob").expected == Decimal(4500)
    assert f.row(LATER, "chen").expected == Decimal(3000)
    assert {(r.bucket, r.group) for r in f.rows if r.bucket in ("2024-03", "2024-04")} == {
        (b, o) for b in ("2024-03", "2024-04") for o in ("ann", "bob", "chen")
    }


def test_forecast_categories_group_commit_best_case_pipeline_and_closed() -> None:
    categories = {
        "proposal-price-quote": "commit",
        "negotiation-review": "commit",
        "value-proposition": "best_case",
    }
    wf = WeightedForecast(horizon=2, group_by="category", categories=categories)
    f = wf.compute(small_history(), as_of=AS_OF)
    assert f.row("2024-03", "commit").expected == Decimal(7500)
    assert f.row("2024-03", "closed").won == Decimal(12000)
    assert f.row(NO_CLOSE_DATE, "commit").expected == Decimal(4500)
    assert f.row(OVERDUE, "best_case").expected == Decimal(3000)
    assert f.row("2024-04", "pipeline").expected == Decimal(8000)  # unmapped stage
    assert {d.opportunity_id: d.category for d in f.deals}["o-7"] == "pipeline"


def test_quarter_periods_and_reporting_currency() -> None:
    rates = FxRates.static("USD", {"EUR": "2"})
    f = WeightedForecast(period="quarter", horizon=1, currency="USD", rates=rates).compute(
        small_history(), as_of=AS_OF
    )
    q1 = f.rows[0]
    assert (q1.start, q1.end) == (date(2024, 1, 1), date(2024, 4, 1))
    assert q1.won == Decimal(2 * (12000 + 9999))  # o-5 (March) and o-8 (February), in USD
    assert q1.expected == Decimal(15000)
    assert f.row(LATER).expected == Decimal(2 * (8000 + 3000))
    assert f.currency == "USD"


def test_mixed_currencies_without_rates_is_an_error() -> None:
    h = History.from_records(
        [
            _opened("a", "2024-01-10", "prospecting", "100", expected_close="2024-03-20"),
            {**_opened("b", "2024-01-10", "prospecting", "100"), "currency": "USD"},
        ],
        scheme=schemes.get("salesforce"),
    )
    with pytest.raises(CurrencyError):
        WeightedForecast().compute(h, as_of=AS_OF)


def test_scheme_without_weights_names_scheme() -> None:
    scheme = StageScheme.model_validate(
        {
            "name": "no-weights",
            "stages": [
                {"key": "lead", "label": "Lead"},
                {"key": "won", "label": "Won", "outcome": "won"},
                {"key": "lost", "label": "Lost", "outcome": "lost"},
            ],
        }
    )
    h = History.from_records(
        [{"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
          "stage": "lead", "amount": "10", "currency": "EUR"}],
        scheme=scheme,
    )  # fmt: skip
    with pytest.raises(ArgumentError) as err:
        WeightedForecast().compute(h, as_of=AS_OF)
    assert err.value.argument == "scheme"
    assert "weighted figures are unavailable" in str(err.value)


def test_override_makes_a_weightless_scheme_usable() -> None:
    scheme = StageScheme.model_validate(
        {
            "name": "no-weights",
            "stages": [
                {"key": "lead", "label": "Lead"},
                {"key": "won", "label": "Won", "outcome": "won"},
            ],
        }
    )
    h = History.from_records(
        [{"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
          "stage": "lead", "amount": "10", "currency": "EUR", "probability": "30",
          "expected_close": "2024-03-30"}],
        scheme=scheme,
    )  # fmt: skip
    assert WeightedForecast().compute(h, as_of=AS_OF).row("2024-03").expected == Decimal(3)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": -2}, "horizon"),
        ({"horizon": True}, "horizon"),
        ({"horizon": "3"}, "horizon"),
        ({"group_by": "team"}, "group_by"),
        ({"period": "fortnight"}, "period"),
        ({"period": 7}, "period"),
        ({"currency": "eur"}, "currency"),
        ({"rates": {"USD": 1}}, "rates"),
        ({"tz": "UTC"}, "tz"),
        ({"categories": {"negotiation-review": "maybe"}}, "categories"),
        ({"categories": ["commit"]}, "categories"),
        ({"group_by": "category"}, "group_by"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        WeightedForecast(**kwargs)
    assert err.value.argument == argument


def test_categories_naming_unknown_or_closed_stages_are_rejected_at_compute() -> None:
    for key in ("nope", "closed-won"):
        wf = WeightedForecast(categories={key: "commit"})
        with pytest.raises(ArgumentError) as err:
            wf.compute(small_history(), as_of=AS_OF)
        assert err.value.argument == "categories"


def test_bad_as_of_names_as_of() -> None:
    with pytest.raises(ArgumentError) as err:
        WeightedForecast().compute(small_history(), as_of="2024-03-15")
    assert err.value.argument == "as_of"


def test_records_and_html() -> None:
    f = WeightedForecast(horizon=2).compute(small_history(), as_of=AS_OF)
    rec = f.to_records()[0]
    assert rec["bucket"] == "2024-03"
    assert rec["total"] == Decimal(19500)
    assert "later" in f._repr_html_()


# -- properties ----------------------------------------------------------------------------

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
as_ofs = st.datetimes(min_value=datetime(2024, 1, 15), max_value=datetime(2025, 1, 15)).map(
    lambda d: d.replace(tzinfo=UTC)
)
group_bys = st.sampled_from([None, "owner", "product", "source", "account"])


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, group_bys, st.integers(1, 4))
def test_nothing_is_dropped_expected_sums_to_weighted_pipeline(
    history: History, as_of: datetime, group_by: Any, horizon: int
) -> None:
    f = WeightedForecast(horizon=horizon, group_by=group_by).compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    weighted = sum(
        (o.weighted_amount for o in pipe.open().values() if o.weighted_amount is not None),
        Decimal(0),
    )
    assert sum((r.expected for r in f.rows), Decimal(0)) == weighted
    assert sum((d.expected for d in f.deals), Decimal(0)) == weighted
    assert sum(r.deals for r in f.rows) == len(f.deals) == len(pipe.open())
    assert all(0 <= d.win_probability <= 1 for d in f.deals)


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs)
def test_no_look_ahead(history: History, as_of: datetime) -> None:
    wf = WeightedForecast(group_by="owner")
    assert wf.compute(history, as_of=as_of) == wf.compute(history.until(as_of), as_of=as_of)


def _split(history: History, mask: list[bool]) -> tuple[History, History]:
    ids = history.opportunity_ids
    left = [i for i, keep in zip(ids, mask, strict=False) if keep]
    right = [i for i in ids if i not in set(left)]
    return history.for_opportunities(left), history.for_opportunities(right)


def _money(f: Forecast) -> list[tuple[object, ...]]:
    return [(r.bucket, r.group, r.won, r.expected, r.deals) for r in f.rows]


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, group_bys, st.lists(st.booleans(), min_size=25, max_size=25))
def test_merge_over_a_split_equals_the_whole(
    history: History, as_of: datetime, group_by: Any, mask: list[bool]
) -> None:
    wf = WeightedForecast(group_by=group_by)
    left, right = _split(history, mask)
    whole = wf.compute(history, as_of=as_of)
    merged = wf.compute(left, as_of=as_of).merge(wf.compute(right, as_of=as_of))
    # won, expected and deal counts are exact Decimal sums; std merges as the root of summed
    # variances in float, so it matches to float precision, not digit for digit.
    assert _money(merged) == _money(whole)
    assert merged.deals == whole.deals
    for m, w in zip(merged.rows, whole.rows, strict=True):
        assert m.std is not None
        assert w.std is not None
        assert float(m.std) == pytest.approx(float(w.std), rel=1e-9, abs=0.01)


def test_local_dates_in_tz_decide_won_period_and_overdue() -> None:
    plus_two = timezone(timedelta(hours=2))
    h = History.from_records(
        [
            _opened("w", "2024-02-01", "negotiation-review", "500"),
            {**_moved("w", "2024-02-01", "closed-won"), "at": "2024-02-29T23:30:00+00:00"},
            _opened("o", "2024-02-01", "negotiation-review", "100", expected_close="2024-03-01"),
        ],
        scheme=schemes.get("salesforce"),
    )
    as_of = "2024-02-29T23:45:00+00:00"  # already 1 March in UTC+2
    utc = WeightedForecast(horizon=1).compute(h, as_of=as_of)
    assert utc.row("2024-02").won == Decimal(500)
    assert utc.row(LATER).expected == Decimal(90)  # closes 1 March, after February
    local = WeightedForecast(horizon=1, tz=plus_two).compute(h, as_of=as_of)
    assert local.row("2024-03").won == Decimal(500)
    assert local.row("2024-03").expected == Decimal(90)  # due today, not overdue
