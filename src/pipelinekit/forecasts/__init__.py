"""Predictive calculators: what will be won, when, and how sure we are.

Every forecaster is a calculator (``compute(history, *, as_of)``) that learns only from
``history.until(as_of)`` and returns a :class:`~pipelinekit.forecasts.result.Forecast`.
"""

from pipelinekit.forecasts.result import DealForecast, Forecast, ForecastRow

__all__ = ["DealForecast", "Forecast", "ForecastRow"]
