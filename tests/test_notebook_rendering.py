"""Every calculator's result renders as a notebook table and converts to rows and frames."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pipelinekit import Result, demo
from pipelinekit import forecasts as fc
from pipelinekit import reports as rp

AS_OF = "2024-09-30T00:00:00+00:00"
WINDOW = ("2024-01-01T00:00:00+00:00", AS_OF)

CALCULATORS: dict[str, Any] = {
    "pipeline_by_stage": rp.PipelineByStage(),
    "win_loss": rp.WinLoss(),
    "stalled": rp.StalledDeals(idle_days=30),
    "activity": rp.ActivityReport(window=WINDOW),
    "funnel": rp.FunnelConversion(),
    "velocity": rp.Velocity(),
    "lead_requirement": rp.LeadRequirement(target=Decimal("250000")),
    "weak_areas": rp.WeakAreas(),
    "quota": rp.QuotaAttainment(quotas={"ann": Decimal("100000")}),
    "movement": rp.PipelineMovement(start="2024-07-01T00:00:00Z", period=("quarter", "2024-10-01")),
    "weighted": fc.WeightedForecast(),
    "distribution": fc.OutcomeDistribution(),
    "monte_carlo": fc.MonteCarloForecast(trials=200, seed=1),
    "historical": fc.HistoricalForecast(),
    "markov": fc.MarkovForecast(),
}


@pytest.fixture(scope="module")
def history() -> Any:
    return demo.demo_history(opportunities=60, seed=42)


@pytest.mark.parametrize("name", sorted(CALCULATORS))
def test_result_renders_and_converts(name: str, history: Any) -> None:
    result = CALCULATORS[name].compute(history, as_of=AS_OF)
    assert isinstance(result, Result)
    rows = result.to_records()
    assert rows
    assert all(isinstance(row, dict) for row in rows)
    html = result._repr_html_()
    assert html.startswith('<div class="pipelinekit">')
    assert html.count("<tr>") == 1 + min(len(rows), 60)
    frame = result.to_pandas()
    assert len(frame) == len(rows)
    assert list(frame.columns) == list(dict.fromkeys(k for row in rows for k in row))
    assert CALCULATORS[name].compute(history, as_of=AS_OF) == result  # deterministic


def test_backtest_result_renders(history: Any) -> None:
    result = fc.backtest(
        {"weighted": fc.WeightedForecast()},
        history,
        as_of_dates=("2024-04-01T00:00:00Z", "2024-07-01T00:00:00Z", "month"),
    )
    assert "<table>" in result._repr_html_()
    assert len(result.to_pandas()) == len(result.to_records())
