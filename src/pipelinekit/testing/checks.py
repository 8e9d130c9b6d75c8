"""Checks to call from your own tests: a scheme linter and a calculator conformance check.

- :func:`check_scheme` lists :class:`Finding` values: errors a scheme cannot work with,
  warnings about choices that are probably mistakes, notes worth knowing.
- :func:`check_calculator` checks the laws every calculator keeps (no look-ahead,
  determinism, merge consistency), like scikit-learn's ``check_estimator``, and raises
  ``AssertionError`` naming the law, the instant and both results when one is broken.

Example:
    >>> from pipelinekit import schemes
    >>> from pipelinekit.testing import check_scheme
    >>> [f.code for f in check_scheme(schemes.get("salesforce"))]
    []
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.calculators import Calculator
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.stages import StageScheme, _legal_moves, _reachable

__all__ = ["Finding", "check_calculator", "check_scheme"]

Severity = Literal["error", "warning", "info"]
_RANK = {"error": 0, "warning": 1, "info": 2}


class Finding(BaseModel):
    """One thing :func:`check_scheme` found.

    Attributes:
        severity: ``"error"`` (the scheme cannot work as meant), ``"warning"`` (probably
            a mistake) or ``"info"`` (worth knowing).
        code: a stable short name, e.g. ``"falling-weight"``; filter on it in tests.
        stage: the key of the stage concerned, or ``None`` for the scheme as a whole.
        message: what was found, why it matters, and what to do.

    Example:
        >>> f = Finding(severity="warning", code="lost-weight", stage="lost", message="...")
        >>> f.severity, f.code
        ('warning', 'lost-weight')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    code: str
    stage: str | None
    message: str


def check_scheme(scheme: StageScheme) -> list[Finding]:
    """Lint a stage scheme: every finding, errors first, then warnings, then notes.

    Errors (``unreachable-stage``, ``dead-end``, ``duplicate-key``) cannot occur in a scheme
    that passed validation; they are reported for schemes built with
    ``StageScheme.model_construct`` (which skips validation), using the same move rules
    as the core. For every structural problem of such a scheme, validate it:
    ``StageScheme.model_validate(scheme.model_dump())``.

    Warnings: ``falling-weight`` (an open stage weighted lower than an earlier open
    stage), ``won-weight`` (a won stage under 100), ``lost-weight`` (a lost stage above
    0), ``partial-weights`` (some open stages weighted, others not: weighted totals are
    unavailable), ``duplicate-label`` (two stages people cannot tell apart, per locale
    too). Notes: ``no-weights``, ``no-lost-stage``.

    Example:
        >>> from pipelinekit import StageScheme
        >>> scheme = StageScheme.model_validate({"name": "mine", "stages": [
        ...     {"key": "lead", "label": "Lead", "weight": "30"},
        ...     {"key": "offer", "label": "Offer", "weight": "20"},
        ...     {"key": "won", "label": "Won", "weight": "90", "outcome": "won"},
        ...     {"key": "lost", "label": "Lead", "weight": "0", "outcome": "lost"}]})
        >>> for f in check_scheme(scheme):
        ...     print(f.severity, f.code, f.stage)
        warning falling-weight offer
        warning won-weight won
        warning duplicate-label lost
    """
    if not isinstance(scheme, StageScheme):
        raise ArgumentError("scheme", f"expected a StageScheme, got {type(scheme).__name__}")
    findings = [
        *_graph_findings(scheme),
        *_weight_findings(scheme),
        *_label_findings(scheme),
    ]
    if not any(s.is_lost for s in scheme.stages):
        findings.append(
            Finding(
                severity="info",
                code="no-lost-stage",
                stage=None,
                message=f"scheme {scheme.name!r} has no lost stage, so a deal can never be "
                "recorded as lost and win rates count only wins; add a lost stage unless "
                "deals really are never lost",
            )
        )
    return sorted(findings, key=lambda f: _RANK[f.severity])


def _graph_findings(scheme: StageScheme) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for stage in scheme.stages:
        if stage.key in seen:
            findings.append(
                Finding(
                    severity="error",
                    code="duplicate-key",
                    stage=stage.key,
                    message=f"stage key {stage.key!r} is used by more than one stage; events "
                    "name stages by key, so keys must be unique",
                )
            )
        seen.add(stage.key)
    if not scheme.stages:
        return findings
    moves = frozenset(_legal_moves(scheme.stages, scheme.transitions, scheme.edges, scheme.reopen))
    first = scheme.stages[0].key
    reachable = _reachable(first, moves)
    won = {s.key for s in scheme.stages if s.is_won}
    for stage in scheme.stages:
        if stage.key not in reachable:
            findings.append(
                Finding(
                    severity="error",
                    code="unreachable-stage",
                    stage=stage.key,
                    message=f"stage {stage.key!r} cannot be reached from the first stage "
                    f"{first!r} under the {scheme.transitions!r} policy; no deal opened at "
                    "the start of the funnel can ever get there",
                )
            )
        elif stage.is_open and not (_reachable(stage.key, moves) & won):
            findings.append(
                Finding(
                    severity="error",
                    code="dead-end",
                    stage=stage.key,
                    message=f"open stage {stage.key!r} is a dead end: no won stage can be "
                    f"reached from it under the {scheme.transitions!r} policy, so a deal "
                    "there can only be lost",
                )
            )
    return findings


def _weight_findings(scheme: StageScheme) -> list[Finding]:
    findings: list[Finding] = []
    open_stages = [s for s in scheme.stages if s.is_open]
    weighted = [s for s in open_stages if s.weight is not None]
    if open_stages and not weighted:
        findings.append(
            Finding(
                severity="info",
                code="no-weights",
                stage=None,
                message=f"scheme {scheme.name!r} has no stage weights: deals are counted per "
                "stage, but weighted pipeline totals and weighted forecasts are unavailable",
            )
        )
    elif len(weighted) < len(open_stages):
        for stage in open_stages:
            if stage.weight is None:
                findings.append(
                    Finding(
                        severity="warning",
                        code="partial-weights",
                        stage=stage.key,
                        message=f"open stage {stage.key!r} has no weight while other open "
                        "stages have one; weighted totals are unavailable until every open "
                        "stage is weighted (or none is)",
                    )
                )
    top: tuple[str, Decimal] | None = None  # the highest-weighted open stage so far
    for stage in open_stages:
        if stage.weight is None:
            continue
        if top is not None and stage.weight < top[1]:
            findings.append(
                Finding(
                    severity="warning",
                    code="falling-weight",
                    stage=stage.key,
                    message=f"open stage {stage.key!r} is weighted {stage.weight} %, less than "
                    f"the earlier stage {top[0]!r} at {top[1]} %; a deal moving forward would "
                    "lose forecast value. Order stages as the funnel runs, or check the weights",
                )
            )
        if top is None or stage.weight > top[1]:
            top = (stage.key, stage.weight)
    for stage in scheme.stages:
        if stage.is_won and stage.weight is not None and stage.weight < 100:
            findings.append(
                Finding(
                    severity="warning",
                    code="won-weight",
                    stage=stage.key,
                    message=f"won stage {stage.key!r} is weighted {stage.weight} %, under 100; "
                    "intended when won stages are steps towards payment (order 80 % -> paid "
                    "100 %), otherwise won deals are under-counted",
                )
            )
        if stage.is_lost and stage.weight is not None and stage.weight > 0:
            findings.append(
                Finding(
                    severity="warning",
                    code="lost-weight",
                    stage=stage.key,
                    message=f"lost stage {stage.key!r} is weighted {stage.weight} %, above 0; "
                    "a lost deal is worth nothing to a forecast",
                )
            )
    return findings


def _label_findings(scheme: StageScheme) -> list[Finding]:
    findings: list[Finding] = []
    locales = sorted({loc for s in scheme.stages for loc, _ in s.labels})
    for locale in (None, *locales):
        seen: dict[str, str] = {}
        for stage in scheme.stages:
            label = stage.label if locale is None else stage.label_for(locale)
            norm = " ".join(label.casefold().split())
            if norm in seen:
                where = "" if locale is None else f" in locale {locale!r}"
                findings.append(
                    Finding(
                        severity="warning",
                        code="duplicate-label",
                        stage=stage.key,
                        message=f"stage {stage.key!r} has the label {label!r}{where}, like "
                        f"stage {seen[norm]!r}; people reading reports cannot tell them apart",
                    )
                )
            else:
                seen[norm] = stage.key
    return findings


# -- calculators -------------------------------------------------------------------------


def check_calculator(
    calculator: Calculator[Any],
    history: History,
    *,
    as_of_dates: Sequence[Instant] | None = None,
    merge: bool | None = None,
) -> tuple[str, ...]:
    """Check the laws every calculator keeps on ``history``; return the laws checked.

    - ``no-look-ahead``: ``compute(history, as_of=t) == compute(history.until(t), as_of=t)``:
      events after ``t`` change nothing.
    - ``determinism``: computing twice, and on an equal but separately built history,
      gives equal results.
    - ``merge`` (when the result has a ``merge`` method, or ``merge=True``): computing on
      two groups of opportunities (``history.for_opportunities``) and merging equals
      computing on the whole; merging with the result of an empty history changes nothing.

    Results are compared with ``==``. Exceptions raised by ``compute`` propagate, with a
    note saying which law and instant were being checked.

    Args:
        calculator: anything with ``compute(history, *, as_of)``.
        history: the history to check on; pick one with events before and after the
            instants (e.g. from :func:`~pipelinekit.testing.histories`).
        as_of_dates: the instants to check at (default: up to four event times of the
            history and the midpoints after them, so both "exactly at an event" and
            "between events" are covered).
        merge: ``None`` checks merging when the result has a ``merge`` method; ``True``
            requires one; ``False`` skips the law.

    Raises:
        AssertionError: a law is broken; the message names the law, the instant and
            both results.
        ArgumentError: the history is empty and no ``as_of_dates`` are given.

    Example:
        >>> from pipelinekit import History, schemes
        >>> class OpenCount:
        ...     def compute(self, history, *, as_of):
        ...         return len(history.until(as_of).as_of(as_of).open())
        >>> h = History.from_records([
        ...     {"type": "opened", "opportunity_id": "a", "at": "2024-01-05T10:00:00Z",
        ...      "stage": "lead"},
        ...     {"type": "stage_changed", "opportunity_id": "a", "at": "2024-02-05T10:00:00Z",
        ...      "stage": "won"}], scheme=schemes.get("vtiger-lead-funnel"))
        >>> check_calculator(OpenCount(), h)
        ('no-look-ahead', 'determinism')
    """
    if merge is not None and not isinstance(merge, bool):
        raise ArgumentError("merge", f"expected True, False or None, got {merge!r}")
    instants = _instants(history, as_of_dates)
    laws = ["no-look-ahead", "determinism"]
    twin = History.from_events(history.events, scheme=history.scheme)
    merged = False
    for t in instants:

        def compute(h: History, law: str, t: datetime = t) -> Any:
            return _compute(calculator, h, t, law)

        whole = compute(history, "no-look-ahead")
        _expect_equal(
            "no-look-ahead",
            t,
            whole,
            compute(history.until(t), "no-look-ahead"),
            "on the whole history",
            "on history.until(as_of)",
        )
        _expect_equal(
            "determinism",
            t,
            whole,
            compute(history, "determinism"),
            "the first time",
            "the second time",
        )
        _expect_equal(
            "determinism",
            t,
            whole,
            compute(twin, "determinism"),
            "on the history",
            "on an equal history built again from its events",
        )
        has_merge = callable(getattr(whole, "merge", None))
        if merge is True and not has_merge:
            raise AssertionError(
                f"merge: the result of {type(calculator).__name__}.compute "
                f"({type(whole).__name__}) has no merge method"
            )
        if merge is not False and has_merge:
            merged = True
            _check_merge(compute, history, t, whole)
    if merged:
        laws.append("merge")
    return tuple(laws)


def _check_merge(
    compute: Callable[[History, str], Any], history: History, t: datetime, whole: Any
) -> None:
    ids = history.opportunity_ids
    left = compute(history.for_opportunities(ids[0::2]), "merge")
    right = compute(history.for_opportunities(ids[1::2]), "merge")
    _expect_equal(
        "merge",
        t,
        whole,
        left.merge(right),
        "on the whole history",
        "merged from two groups of opportunities",
    )
    empty = compute(history.for_opportunities(()), "merge")
    _expect_equal(
        "merge",
        t,
        whole,
        whole.merge(empty),
        "on the whole history",
        "merged with the result of an empty history",
    )


def _compute(calculator: Calculator[Any], history: History, t: datetime, law: str) -> Any:
    try:
        return calculator.compute(history, as_of=t)
    except Exception as exc:
        exc.add_note(f"check_calculator: raised while checking {law!r} at as_of={t.isoformat()}")
        raise


def _instants(history: History, given: Sequence[Instant] | None) -> list[datetime]:
    if given is not None:
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise ArgumentError("as_of_dates", f"expected a sequence of instants, got {given!r}")
        return [instant(t, argument="as_of_dates") for t in given]
    times = [e.at for e in history.events]
    if not times:
        raise ArgumentError("as_of_dates", "the history is empty; pass the instants to check at")
    picks = sorted({round(k * (len(times) - 1) / 3) for k in range(4)})
    result: list[datetime] = []
    for k in picks:
        result.append(times[k])
        if k + 1 < len(times) and times[k + 1] > times[k]:
            result.append(times[k] + (times[k + 1] - times[k]) / 2)
    return result


def _expect_equal(law: str, t: datetime, a: Any, b: Any, how_a: str, how_b: str) -> None:
    if a == b:
        return
    raise AssertionError(
        f"{law}: at as_of={t.isoformat()} the result computed {how_a} differs from the one "
        f"computed {how_b}:\n  {how_a}: {_shown(a)}\n  {how_b}: {_shown(b)}"
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 2000 else text[:1997] + "..."
