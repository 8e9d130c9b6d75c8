"""Hypothesis strategies and conformance checks for your own stage schemes and calculators.

An optional part of pipelinekit, in the style of ``hypothesis.extra``: it needs the
``testing`` extra (``pip install 'pipelinekit[testing]'``); the core never imports it.

- Strategies: :func:`stages`, :func:`stage_schemes`, :func:`events`, :func:`records`,
  :func:`histories`, :func:`history_records` and :func:`invalid_records`.
- Checks: :func:`check_scheme` (a linter returning :class:`Finding` values) and
  :func:`check_calculator` (the laws every calculator keeps: no look-ahead, determinism,
  merge consistency).

See ``docs/testing-your-scheme.md`` for a complete example test file.

Example:
    >>> from hypothesis import given, settings
    >>> from pipelinekit import schemes
    >>> from pipelinekit.testing import histories
    >>> scheme = schemes.get("salesforce")
    >>> @settings(max_examples=10, deadline=None)
    ... @given(histories(scheme, max_opportunities=3))
    ... def test_every_opportunity_is_in_the_final_pipeline(history):
    ...     if history.end is not None:
    ...         assert set(history.as_of(history.end)) == set(history.opportunity_ids)
    >>> test_every_opportunity_is_in_the_final_pipeline()
"""

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "pipelinekit.testing needs the optional dependency 'hypothesis'; install it with "
        "pip install 'pipelinekit[testing]'"
    ) from exc

from pipelinekit.testing.checks import Finding, check_calculator, check_scheme
from pipelinekit.testing.strategies import (
    INVALID_RECORD_RULES,
    InvalidRecords,
    events,
    histories,
    history_records,
    invalid_records,
    records,
    stage_schemes,
    stages,
)

__all__ = [
    "INVALID_RECORD_RULES",
    "Finding",
    "InvalidRecords",
    "check_calculator",
    "check_scheme",
    "events",
    "histories",
    "history_records",
    "invalid_records",
    "records",
    "stage_schemes",
    "stages",
]
