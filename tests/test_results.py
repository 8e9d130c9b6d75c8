"""Results, pipelines and schemes in notebooks: rows, escaped HTML, DataFrames."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from pipelinekit import ArgumentError, History, Result, demo, schemes
from pipelinekit.results import html_table


class Rows(Result):
    rows: tuple[tuple[str, Decimal], ...]

    def to_records(self) -> list[dict[str, Any]]:
        return [{"name": n, "amount": a} for n, a in self.rows]


def test_html_escapes_every_user_string() -> None:
    out = html_table([{"<b>": "<script>alert(1)</script>"}], title="<i>t</i>")
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "&lt;b&gt;" in out
    assert "&lt;i&gt;t&lt;/i&gt;" in out


def test_html_is_capped_and_says_how_many_rows_are_left_out() -> None:
    out = html_table([{"i": i} for i in range(100)], max_rows=10)
    assert out.count("<tr>") == 11  # header + 10 rows
    assert "90 more rows" in out


def test_result_to_pandas_keeps_decimal_or_converts_to_float() -> None:
    result = Rows(rows=(("a", Decimal("1.10")), ("b", Decimal("2.20"))))
    exact = result.to_pandas()
    assert exact["amount"].tolist() == [Decimal("1.10"), Decimal("2.20")]
    floats = result.to_pandas(money="float")
    assert floats["amount"].dtype == "float64"
    with pytest.raises(ArgumentError):
        result.to_pandas(money="cents")  # type: ignore[arg-type]


def test_pipeline_rows_match_its_opportunities() -> None:
    h = demo.demo_history(opportunities=25, seed=4)
    pipe = h.as_of("2024-08-01T00:00:00Z")
    rows = pipe.to_records()
    assert [r["opportunity_id"] for r in rows] == list(pipe)
    for row in rows:
        opp = pipe[row["opportunity_id"]]
        assert row["weighted_amount"] == opp.weighted_amount
        assert row["stage"] == opp.stage
    frame = pipe.to_pandas()
    assert len(frame) == len(pipe)
    assert isinstance(frame["opened_at"].dtype, pd.DatetimeTZDtype)
    assert "Pipeline as of 2024-08-01" in pipe._repr_html_()


def test_ingest_report_lists_every_set_aside_record() -> None:
    scheme = schemes.get("salesforce")
    records: list[Any] = [
        {
            "type": "opened",
            "opportunity_id": "a",
            "at": "2024-01-01T00:00:00Z",
            "stage": "prospecting",
            "event_id": "x",
        },
        {
            "type": "opened",
            "opportunity_id": "a",
            "at": "2024-01-01T00:00:00Z",
            "stage": "prospecting",
            "event_id": "x",
        },
        {"type": "nonsense"},
    ]
    report = History.from_records(records, scheme=scheme, mode="lenient").ingest
    rows = report.to_records()
    assert [(r["index"], r["status"]) for r in rows] == [(1, "duplicate"), (2, "rejected")]
    assert "1 applied, 1 duplicates, 1 rejected" in report._repr_html_()


def test_scheme_renders_its_stages_with_locale_labels() -> None:
    scheme = schemes.get("salesforce")
    rows = scheme.to_records()
    assert [r["key"] for r in rows] == list(scheme.keys)
    assert "Stage scheme &#x27;salesforce&#x27;" in scheme._repr_html_()


def test_to_polars_keeps_money_exact_and_dates_as_dates() -> None:
    pl = pytest.importorskip("polars")
    from pipelinekit.forecasts import WeightedForecast

    history = demo.demo_history(opportunities=40, seed=6)
    forecast = WeightedForecast(horizon=3).compute(history, as_of="2024-09-30T00:00:00Z")
    frame = forecast.to_polars()
    assert isinstance(frame.schema["expected"], pl.Decimal)
    assert frame.schema["start"] == pl.Date
    assert frame["expected"].to_list() == [r["expected"] for r in forecast.to_records()]
    assert frame["start"].to_list() == [r["start"] for r in forecast.to_records()]
