"""Results that read well outside a notebook: text tables, percentages, per-deal rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipelinekit import ArgumentError, Result, demo
from pipelinekit.forecasts import (
    DealForecasts,
    HistoricalForecast,
    MarkovForecast,
    OutcomeDistribution,
    WeightedForecast,
)
from pipelinekit.reports import (
    FunnelConversion,
    PipelineByStage,
    StalledDeals,
    Velocity,
    WeakAreas,
    WinLoss,
)
from pipelinekit.results import MAX_TEXT_ROWS, html_table, is_percent, text_table

HISTORY = demo.demo_history(opportunities=80, seed=5)
AS_OF = "2024-09-01T00:00:00+00:00"
CALCULATORS = [
    PipelineByStage(),
    WinLoss(by="owner"),
    FunnelConversion(),
    Velocity(),
    StalledDeals(),
    WeakAreas(),
    WeightedForecast(),
    HistoricalForecast(),
    MarkovForecast(),
    OutcomeDistribution(),
]


@pytest.mark.parametrize("calculator", CALCULATORS, ids=lambda c: type(c).__name__)
def test_str_of_a_result_is_a_short_aligned_table_of_its_rows(calculator: Any) -> None:
    result: Result = calculator.compute(HISTORY, as_of=AS_OF)
    text = str(result)
    lines = text.splitlines()
    assert "model_config" not in text and "=(" not in text  # not a pydantic repr
    rows = result.to_records()
    shown = min(len(rows), MAX_TEXT_ROWS)
    # title, header, rule, one line per row shown, and a note when rows were left out
    assert len(lines) == 3 + shown + (len(rows) > MAX_TEXT_ROWS)
    rule = lines[2]
    assert set(rule) <= {"-", " "}
    # every column starts where its dashes start, in the header and every row
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    for line in lines[1 : 3 + shown]:
        for start in starts[1:]:
            assert line[start - 2 : start] in ("  ", "") or line[start - 1] == " "


def test_shares_show_as_percentages_in_html_and_text() -> None:
    report = PipelineByStage().compute(HISTORY, as_of=AS_OF)
    share = next(r.amount_share for r in report.rows if r.amount_share)
    assert share is not None
    shown = f"{share:.1%}"
    assert f"<td>{shown}</td>" in report._repr_html_()
    assert shown in str(report)
    assert report.to_records()[0]["amount_share"] == report.rows[0].amount_share  # rows keep it


def test_decimal_percentages_are_not_multiplied() -> None:
    rows = [{"stage": "lead", "probability": Decimal("25"), "weight": Decimal("12.5")}]
    assert "<td>25%</td>" in html_table(rows)
    assert "<td>12.5%</td>" in html_table(rows)
    assert text_table(rows).splitlines()[-1].split() == ["lead", "25%", "12.5%"]


@pytest.mark.parametrize(
    ("column", "percent"),
    [("amount_share", True), ("win_rate", True), ("to_won", True), ("amount", False),
     ("ratio", False), ("days_idle", False)],
)  # fmt: skip
def test_which_columns_are_percentages(column: str, percent: bool) -> None:
    assert is_percent(column) is percent


def test_text_table_edge_cases() -> None:
    assert text_table([], title="Nothing") == "Nothing\n(no rows)"
    many = [{"n": 1000 + i, "empty": None} for i in range(30)]
    lines = text_table(many, max_rows=5).splitlines()
    assert lines[0] == "   n"  # the all-empty column is left out; numbers right-aligned
    assert lines[-1] == "... 25 more rows; use to_records() or to_pandas()"
    mixed = text_table([{"who": "ann", "when": datetime(2024, 1, 2, 3, 4, tzinfo=UTC)}])
    assert mixed.splitlines()[-1] == "ann  2024-01-02 03:04+00:00"
    assert "&lt;" not in text_table([{"x": "<b>"}])  # text is not escaped, HTML is
    assert "&lt;b&gt;" in html_table([{"x": "<b>"}])


# -- per-deal rows --------------------------------------------------------------------------

FORECASTERS = [WeightedForecast(), HistoricalForecast(), MarkovForecast(), OutcomeDistribution()]


@pytest.mark.parametrize("forecaster", FORECASTERS, ids=lambda c: type(c).__name__)
def test_by_deal_exports_every_deal_of_the_forecast(forecaster: Any) -> None:
    forecast = forecaster.compute(HISTORY, as_of=AS_OF)
    deals = forecast.by_deal()
    assert isinstance(deals, DealForecasts)
    assert deals.deals == forecast.deals and len(deals.deals) > 0
    records = deals.to_records()
    assert [r["opportunity_id"] for r in records] == [d.opportunity_id for d in forecast.deals]
    assert sum(r["expected"] for r in records) == sum(d.expected for d in forecast.deals)
    frame = deals.to_pandas()
    assert list(frame["opportunity_id"]) == [r["opportunity_id"] for r in records]
    assert deals.to_polars().height == len(records)
    assert str(deals).splitlines()[0].startswith(f"{forecast.method} forecast by deal")


@pytest.mark.parametrize("forecaster", FORECASTERS, ids=lambda c: type(c).__name__)
def test_most_likely_ranks_by_win_probability_then_expected(forecaster: Any) -> None:
    forecast = forecaster.compute(HISTORY, as_of=AS_OF)
    top = forecast.most_likely(5).deals
    everyone = sorted(
        forecast.deals, key=lambda d: (-d.win_probability, -d.expected, d.opportunity_id)
    )
    assert list(top) == everyone[:5]
    # nobody left out is more likely to close than the last one shown
    assert all(d.win_probability <= top[-1].win_probability for d in everyone[5:])
    assert len(forecast.most_likely(10_000).deals) == len(forecast.deals)


@pytest.mark.parametrize("n", [0, -1, True, 2.5, "3", None])
def test_most_likely_refuses_a_bad_count(n: Any) -> None:
    forecast = WeightedForecast().compute(HISTORY, as_of=AS_OF)
    with pytest.raises(ArgumentError) as info:
        forecast.most_likely(n)
    assert info.value.argument == "n"


# -- History, Pipeline, IngestReport ---------------------------------------------------------


def _lenient_history() -> Any:
    from pipelinekit import History, schemes

    recs: list[dict[str, Any]] = [
        {"type": "opened", "opportunity_id": f"o-{i}", "stage": "prospecting",
         "at": f"2024-01-{i + 1:02d}T10:00:00Z", "amount": "-5" if i % 3 == 0 else "100",
         "currency": "USD", "event_id": f"e-{i}"}
        for i in range(30)
    ]  # fmt: skip
    recs += [dict(recs[1]), {**recs[2], "stage": "negotiation-review"}]  # duplicate, conflict
    recs += [{"type": "stage_changed", "opportunity_id": "o-1", "stage": "prospecting",
              "at": "2024-03-01T10:00:00Z"},
             {"type": "stage_changed", "opportunity_id": "o-2", "stage": "closed-won",
              "at": "2024-03-01T10:00:00Z"},
             {"type": "stage_changed", "opportunity_id": "o-2", "stage": "prospecting",
              "at": "2024-03-02T10:00:00Z"}]  # fmt: skip
    return History.from_records(recs, scheme=schemes.get("salesforce"), mode="lenient")


def test_ingest_summary_counts_what_was_set_aside_by_rule() -> None:
    report = _lenient_history().ingest
    summary = {(r["status"], r["rule"], r["field"]): r["records"] for r in report.summary()}
    assert summary == {
        ("rejected", "invalid", "amount"): 10,
        ("duplicate", "duplicate", "event_id"): 1,
        ("rejected", "duplicate-event-id", "event_id"): 1,
        ("rejected", "reopen", "stage"): 1,
    }
    assert sum(summary.values()) == len(report.duplicates) + len(report.rejected)
    assert [r["records"] for r in report.summary()] == sorted(summary.values(), reverse=True)
    rules = {r["index"]: r["rule"] for r in report.to_records()}
    assert rules[0] == "invalid" and rules[30] == "duplicate" and rules[31] == "duplicate-event-id"


def test_printing_an_ingest_report_is_short_whatever_was_set_aside() -> None:
    report = _lenient_history().ingest
    text = str(report)
    assert text.splitlines()[0] == "35 records: 22 applied, 1 duplicates, 12 rejected"
    assert len(text.splitlines()) == 3 + len(report.summary())
    assert repr(report) == "IngestReport(total=35, applied=22, duplicates=1, rejected=12)"
    clean = demo.demo_history(opportunities=5, seed=1).ingest
    assert str(clean) == f"{clean.total} records: {clean.total} applied, 0 duplicates, 0 rejected"


def test_printing_a_history_and_a_pipeline_gives_counts_and_a_table() -> None:
    history = HISTORY
    lines = str(history).splitlines()
    assert lines[0].startswith("History (scheme 'salesforce'): ")
    assert lines[1] == f"ingest: {history.ingest.total} records: {history.ingest.total} " + (
        "applied, 0 duplicates, 0 rejected"
    )
    assert history.end is not None
    pipe = history.as_of(history.end)
    per_stage = {line.split()[0]: int(line.split()[-1]) for line in lines[4:]}
    assert sum(per_stage.values()) == len(pipe)
    text = str(pipe).splitlines()
    assert text[0].endswith(
        f"{len(pipe)} opportunities ({len(pipe.open())} open, {len(pipe.won())} won, "
        f"{len(pipe.lost())} lost)"
    )
    assert len(text) == 3 + MAX_TEXT_ROWS + 1  # 80 opportunities: the first 20, then a note
    assert "%" in text[3]  # probabilities as percentages
