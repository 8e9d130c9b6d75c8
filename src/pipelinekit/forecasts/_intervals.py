"""Prediction intervals from a method's own past errors and the randomness of deals.

A forecast's band should mean what it says: the actual revenue falls below P10 one time in
ten. Two things make the actual differ from the forecast: chance (which deals happen to
close) and the method's own error (its rates were learned in another season, the pipeline
changed...). Past errors measure both at once, but a young history has few of them, so they
are combined with the chance alone, which is known exactly from the deals:

- each past error is the ratio ``actual / forecast`` of the method at a past origin (the
  part not yet won at the origin); it becomes a normal kernel centred on that ratio;
- the deals' own spread gives a prior component centred on 1 (no error) whose width is the
  coefficient of variation ``sqrt(variance) / forecast`` of independent deals, worth
  ``prior_weight`` past errors;
- every kernel is as wide as that coefficient of variation (at least ``floor``), so a band
  is never narrower than chance alone would make it.

The quantiles of the mixture, times the forecast, are the band; revenue is never negative, so
the mixture is cut at 0.

Example:
    >>> qs = ratio_quantiles([(0.8, 1.0), (1.1, 1.0), (0.9, 1.0)], spread=0.05,
    ...                      prior_weight=1.0, probabilities=(0.1, 0.5, 0.9))
    >>> [round(q, 3) for q in qs]
    [0.786, 0.95, 1.114]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FLOOR = 0.02
"""The narrowest kernel, as a share of the forecast."""


def normal_cdf(x: float) -> float:
    """The standard normal distribution function.

    Example:
        >>> round(normal_cdf(1.2815515655446004), 6)
        0.9
    """
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ratio_quantiles(
    errors: Sequence[tuple[float, float]],
    *,
    spread: float,
    prior_weight: float,
    probabilities: Sequence[float],
) -> list[float]:
    """Quantiles of ``actual / forecast`` from past ratios and the deals' own spread.

    Args:
        errors: ``(ratio, weight)`` of past origins (``actual / forecast``, recency weight).
        spread: the coefficient of variation of the deals' revenue (``sqrt(var) / mean``).
        prior_weight: how many past errors the "no error, chance only" component is worth.
        probabilities: the levels wanted, each in (0, 1).

    Returns:
        One ratio per level (>= 0), to multiply by the forecast.
    """
    width = max(spread, FLOOR)
    parts: list[tuple[float, float]] = [(1.0, prior_weight)] if prior_weight > 0 else []
    parts += [(r, w) for r, w in errors if w > 0 and math.isfinite(r)]
    if not parts:
        parts = [(1.0, 1.0)]
    total = math.fsum(w for _, w in parts)

    def cdf(x: float) -> float:
        return math.fsum(w * normal_cdf((x - c) / width) for c, w in parts) / total

    low = min(c for c, _ in parts) - 8 * width
    high = max(c for c, _ in parts) + 8 * width
    out: list[float] = []
    for p in probabilities:
        if cdf(0.0) >= p:
            out.append(0.0)
            continue
        a, b = max(low, 0.0), high
        for _ in range(60):
            mid = (a + b) / 2
            if cdf(mid) < p:
                a = mid
            else:
                b = mid
        out.append((a + b) / 2)
    return out
