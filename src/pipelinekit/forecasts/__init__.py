"""Predictive calculators: what will be won, when, and how sure we are.

Every forecaster is a calculator (``compute(history, *, as_of)``) that learns only from
``history.until(as_of)`` and returns a :class:`~pipelinekit.forecasts.result.Forecast`.
"""

from pipelinekit.forecasts.backtest import (
    BacktestPoint,
    BacktestResult,
    CalibrationBin,
    ForecasterAccuracy,
    backtest,
)
from pipelinekit.forecasts.distribution import (
    DistributionForecast,
    MonteCarloForecast,
    OutcomeDistribution,
    SimulatedForecast,
    TrialTotals,
)
from pipelinekit.forecasts.historical import (
    HistoricalEvidence,
    HistoricalForecast,
    HistoricalForecastResult,
    NewBusinessRate,
    StageRate,
)
from pipelinekit.forecasts.markov import (
    MarkovChain,
    MarkovForecast,
    MarkovForecastResult,
    TransitionCounts,
    count_transitions,
)
from pipelinekit.forecasts.projection import (
    ConversionRate,
    NewBusinessEstimate,
    PastError,
    ProjectionEvidence,
    ProjectionForecast,
    ProjectionForecastResult,
)
from pipelinekit.forecasts.result import (
    LATER,
    NO_CLOSE_DATE,
    OVERDUE,
    DealForecast,
    DealForecasts,
    Forecast,
    ForecastRow,
)
from pipelinekit.forecasts.weighted import WeightedForecast

__all__ = [
    "LATER",
    "NO_CLOSE_DATE",
    "OVERDUE",
    "BacktestPoint",
    "BacktestResult",
    "CalibrationBin",
    "ConversionRate",
    "DealForecast",
    "DealForecasts",
    "DistributionForecast",
    "Forecast",
    "ForecastRow",
    "ForecasterAccuracy",
    "HistoricalEvidence",
    "HistoricalForecast",
    "HistoricalForecastResult",
    "MarkovChain",
    "MarkovForecast",
    "MarkovForecastResult",
    "MonteCarloForecast",
    "NewBusinessEstimate",
    "NewBusinessRate",
    "OutcomeDistribution",
    "PastError",
    "ProjectionEvidence",
    "ProjectionForecast",
    "ProjectionForecastResult",
    "SimulatedForecast",
    "StageRate",
    "TransitionCounts",
    "TrialTotals",
    "WeightedForecast",
    "backtest",
    "count_transitions",
]
