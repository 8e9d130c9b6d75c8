"""Predictive calculators: what will be won, when, and how sure we are.

Every forecaster is a calculator (``compute(history, *, as_of)``) that learns only from
``history.until(as_of)`` and returns a :class:`~pipelinekit.forecasts.result.Forecast`.
"""

from pipelinekit.forecasts.distribution import (
    DistributionForecast,
    MonteCarloForecast,
    OutcomeDistribution,
    SimulatedForecast,
    TrialTotals,
)
from pipelinekit.forecasts.result import (
    LATER,
    NO_CLOSE_DATE,
    OVERDUE,
    DealForecast,
    Forecast,
    ForecastRow,
)
from pipelinekit.forecasts.weighted import WeightedForecast

__all__ = [
    "LATER",
    "NO_CLOSE_DATE",
    "OVERDUE",
    "DealForecast",
    "DistributionForecast",
    "Forecast",
    "ForecastRow",
    "MonteCarloForecast",
    "OutcomeDistribution",
    "SimulatedForecast",
    "TrialTotals",
    "WeightedForecast",
]
