"""The benchmark scripts still run and their baselines still agree with pipelinekit.

Not timings (those are for ``make bench``): at a few thousand events each script computes
every answer on both sides and exits 1 when a baseline disagrees, so a change to a
calculator that a baseline no longer matches, or a script that rots, fails here.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("numpy")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import calculators
import floor
import ingest

SMALL = ["--events", "3000", "--repeat", "1", "--no-memory"]


def test_calculators_baselines_agree() -> None:
    assert calculators.main(SMALL) == 0


def test_ingest_runs() -> None:
    assert ingest.main(SMALL) == 0


def test_floor_sketch_agrees_with_pipelinekit() -> None:
    assert floor.main(SMALL) == 0


def test_floor_check_catches_a_wrong_sketch() -> None:
    records = ingest.generate(3000)
    as_of, _ = ingest.instants(records)
    mine = calculators.pk_end2end(records, as_of)
    report, weighted = floor.sketch_end2end(records, as_of)
    assert floor.check((report, weighted), mine) == []
    stage, (n, amount, w) = next(iter(report.items()))
    off_by_a_cent = report | {stage: (n, amount + Decimal("0.01"), w)}
    assert floor.check((off_by_a_cent, weighted), mine) != []
    one_deal_less = {k: [v[0] - 1, *v[1:]] for k, v in weighted.items()}
    assert floor.check((report, one_deal_less), mine) != []


def test_the_snapshot_baseline_is_the_projection_without_its_care() -> None:
    """The pandas baseline of benchmarks/forecast_quality.py computes what the projection
    forecaster computes with recency, shrinkage, seasons and bands switched off: two
    independent implementations of one definition, so neither can drift unnoticed."""
    import forecast_quality

    from pipelinekit import demo
    from pipelinekit.forecasts.projection import ProjectionForecast

    history = demo.crm_history(months=10, deals_per_month=60, seed=4)
    origins = [datetime(2022, m, 1, tzinfo=UTC) for m in (6, 8, 10)]
    base = forecast_quality.baselines(history, origins, "month", UTC)
    plain = ProjectionForecast(
        horizon=1,
        age_bands=forecast_quality.BANDS,
        half_life=None,
        season=None,
        prior_strength=0,
    )
    for origin in origins:
        total = plain.compute(history, as_of=origin).rows[0].total
        assert float(total) == pytest.approx(base[origin][1], abs=0.01 * 100)


def test_forecast_quality_runs_on_the_synthetic_quarters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import forecast_quality

    assert forecast_quality.main(["--sets", "synthetic quarterly"]) == 0
    out = capsys.readouterr().out
    assert "projection" in out and "snapshot" in out
