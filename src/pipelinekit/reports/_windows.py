"""Windows of time and small shared helpers for the reports of this package (private).

A window is a half-open interval ``[start, end)`` of instants given as a 2-tuple of
timezone-aware datetimes or ISO strings; it is validated when a calculator is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from pipelinekit._time import instant
from pipelinekit.errors import ArgumentError
from pipelinekit.money import FxRates, ReportingCurrency

Window = tuple[datetime, datetime]
_DAY_MICROSECONDS = 86_400_000_000


def window_arg(value: object, *, argument: str = "window") -> Window | None:
    """Validate a ``(start, end)`` window argument; ``None`` passes through."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ArgumentError(
            argument, f"expected a (start, end) pair of instants or None, got {value!r}"
        )
    start = instant(value[0], argument=argument)
    end = instant(value[1], argument=argument)
    if end <= start:
        raise ArgumentError(
            argument,
            f"the window ends ({end.isoformat()}) at or before it starts ({start.isoformat()})",
        )
    return start, end


def in_window(t: datetime, window: Window | None) -> bool:
    """True when ``t`` lies in the half-open ``window`` (always, for no window)."""
    return window is None or window[0] <= t < window[1]


def days(delta: timedelta) -> float:
    """A duration in days, as a float."""
    return delta / timedelta(days=1)


def exact_days(delta: timedelta) -> Decimal:
    """A duration in days, as an exact Decimal (from whole microseconds)."""
    micro = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(micro) / Decimal(_DAY_MICROSECONDS)


def currency_args(currency: object, rates: object) -> None:
    """Validate ``currency``/``rates`` early, with the checks ReportingCurrency makes."""
    if currency is not None and not isinstance(currency, str):
        raise ArgumentError("currency", f"expected an ISO 4217 code or None, got {currency!r}")
    if rates is not None and not isinstance(rates, FxRates):
        raise ArgumentError("rates", f"expected FxRates, got {type(rates).__name__}")
    if rates is not None and currency is None:
        raise ArgumentError("currency", "rates were given without a reporting currency")
    ReportingCurrency(currency, rates)


def merged_currency(a: str | None, b: str | None) -> str | None:
    """The common currency of two results (``None`` means "no amounts seen")."""
    from pipelinekit.errors import CurrencyError

    if a is None or b is None or a == b:
        return a if b is None else b
    raise CurrencyError(
        f"results are in {a} and {b}; compute both with the same reporting currency"
    )


def ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` as a float, or ``None`` when the denominator is 0."""
    return numerator / denominator if denominator else None
