"""The calculators pause the cyclic garbage collector while they work, and always restore it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipelinekit import demo
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts import markov
from pipelinekit.forecasts.distribution import MonteCarloForecast, OutcomeDistribution
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.pipeline_by_stage import PipelineByStage

AS_OF = "2024-09-30T00:00:00+00:00"
CALCULATORS = [
    PipelineByStage(),
    WeightedForecast(),
    HistoricalForecast(),
    OutcomeDistribution(),
    MonteCarloForecast(trials=50, seed=1),
    MarkovForecast(),
]


@pytest.fixture
def gc_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:  # pragma: no cover - pytest runs with the collector on
        gc.disable()


@pytest.mark.usefixtures("gc_state")
@pytest.mark.parametrize("calculator", CALCULATORS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("enabled", [True, False])
def test_gc_setting_is_restored(calculator: object, enabled: bool) -> None:
    history = demo.demo_history(opportunities=20, seed=1)
    (gc.enable if enabled else gc.disable)()
    calculator.compute(history, as_of=AS_OF)  # type: ignore[attr-defined]
    assert gc.isenabled() is enabled


@pytest.mark.usefixtures("gc_state")
@pytest.mark.parametrize("calculator", CALCULATORS, ids=lambda c: type(c).__name__)
def test_gc_restored_when_compute_raises(calculator: object) -> None:
    gc.enable()
    with pytest.raises(ArgumentError):
        calculator.compute(demo.demo_history(opportunities=5, seed=1), as_of="not a time")  # type: ignore[attr-defined]
    assert gc.isenabled()


@pytest.mark.usefixtures("gc_state")
def test_markov_forecast_pauses_the_collector_while_it_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Markov allocates per deal like the others; without the pause its time grew about 20x
    for 10x the one-event opportunities (the collector walking the snapshot)."""
    seen: list[bool] = []
    real = markov.place

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(markov, "place", spy)
    gc.enable()
    MarkovForecast().compute(demo.demo_history(opportunities=20, seed=1), as_of=AS_OF)
    assert seen == [False]
    assert gc.isenabled()
