"""Forecast categories: the manager's view of a deal, mapped from stages, overridable per deal.

Salesforce and Vtiger sort every opportunity into one **forecast category**: ``pipeline``,
``best_case``, ``most_likely``, ``commit`` (the four *open* categories), ``closed`` (won) and
``omitted`` (lost, or an open deal taken out of the forecast). A :class:`CategoryMap` says
which category each stage of a scheme stands for; a per-deal override (a mapping of
opportunity id to category) replaces the stage's category for one open deal.

The **default map** of a scheme (:meth:`CategoryMap.for_scheme`) sorts open stages by their
weight with :data:`DEFAULT_THRESHOLDS` ``(50, 75, 90)``:

=====================  ===============
stage weight           category
=====================  ===============
below 50 (or none)     ``pipeline``
50 up to below 75      ``best_case``
75 up to below 90      ``most_likely``
90 and above           ``commit``
won stage              ``closed``
lost stage             ``omitted``
=====================  ===============

(Salesforce's own default maps every open stage to ``pipeline``; pass ``stages=`` to say
how your team forecasts.) A stage without a weight is ``pipeline``.

Salesforce shows each category alone (*individual*) and as *cumulative* columns, which
:func:`forecast_columns` computes: commit forecast = commit + closed; most likely forecast =
most likely + commit + closed; best case forecast = best case + most likely + commit +
closed; open pipeline = pipeline + best case + most likely + commit.

Example:
    >>> from pipelinekit import schemes
    >>> from pipelinekit.categories import CategoryMap
    >>> cmap = CategoryMap.for_scheme(schemes.get("salesforce"))
    >>> cmap.category_of_stage("value-proposition"), cmap.category_of_stage("closed-won")
    (<ForecastCategory.BEST_CASE: 'best_case'>, <ForecastCategory.CLOSED: 'closed'>)
    >>> CategoryMap.for_scheme(schemes.get("salesforce"), stages={"prospecting": "omitted"}
    ...                        ).category_of_stage("prospecting").value
    'omitted'
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from pipelinekit.errors import ArgumentError
from pipelinekit.opportunity import Opportunity
from pipelinekit.stages import StageScheme

__all__ = [
    "DEFAULT_THRESHOLDS",
    "OPEN_CATEGORIES",
    "CategoryMap",
    "ForecastCategory",
    "category_overrides",
    "forecast_columns",
]


class ForecastCategory(StrEnum):
    """A forecast category (Salesforce's names; Vtiger's forecast stages)."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    MOST_LIKELY = "most_likely"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"

    @property
    def is_open(self) -> bool:
        """True for the four categories of open deals still counted in the forecast."""
        return self in OPEN_CATEGORIES


OPEN_CATEGORIES: tuple[ForecastCategory, ...] = (
    ForecastCategory.PIPELINE,
    ForecastCategory.BEST_CASE,
    ForecastCategory.MOST_LIKELY,
    ForecastCategory.COMMIT,
)
"""The categories of open deals that count in the forecast, least sure first."""

DEFAULT_THRESHOLDS: tuple[Decimal, Decimal, Decimal] = (Decimal(50), Decimal(75), Decimal(90))
"""Lowest stage weights of ``best_case``, ``most_likely`` and ``commit`` in a default map."""

_NAMES = [c.value for c in ForecastCategory]


def _category(value: object, argument: str) -> ForecastCategory:
    if isinstance(value, str) and value in _NAMES:
        return ForecastCategory(value)
    raise ArgumentError(argument, f"unknown forecast category {value!r}; expected one of {_NAMES}")


def _by_weight(weight: Decimal | None, thresholds: tuple[Decimal, ...]) -> ForecastCategory:
    if weight is None or weight < thresholds[0]:
        return ForecastCategory.PIPELINE
    if weight < thresholds[1]:
        return ForecastCategory.BEST_CASE
    if weight < thresholds[2]:
        return ForecastCategory.MOST_LIKELY
    return ForecastCategory.COMMIT


class CategoryMap(BaseModel):
    """Which forecast category each stage of one scheme stands for.

    Build it with :meth:`for_scheme` (the default map, optionally changed per stage).
    Won stages are always ``closed`` and lost stages ``omitted``; an open stage maps to an
    open category or to ``omitted``.

    Attributes:
        scheme: the name of the scheme it was built for.
        stages: ``(stage key, category)`` for every stage of the scheme, in funnel order.

    Example:
        >>> from pipelinekit import schemes
        >>> cmap = CategoryMap.for_scheme(schemes.get("vtiger-lead-funnel"))
        >>> [(k, c.value) for k, c in cmap.stages][3:5]
        [('conversion', 'pipeline'), ('quote', 'best_case')]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: str
    stages: tuple[tuple[str, ForecastCategory], ...]

    @model_validator(mode="after")
    def _keys_unique(self) -> CategoryMap:
        keys = [k for k, _ in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("a stage key appears twice in the category map")
        return self

    @classmethod
    def for_scheme(
        cls,
        scheme: StageScheme,
        stages: Mapping[str, ForecastCategory | str] | None = None,
        *,
        thresholds: tuple[Decimal | int | str, Decimal | int | str, Decimal | int | str] = (
            DEFAULT_THRESHOLDS
        ),
    ) -> CategoryMap:
        """The default map of ``scheme`` (open stages by weight), changed by ``stages``.

        Args:
            scheme: the stage scheme.
            stages: categories for some stages, replacing their default.
            thresholds: the lowest weights of best case, most likely and commit
                (increasing percentages).

        Raises:
            ArgumentError: an unknown stage key or category, a won stage not mapped to
                ``closed``, a lost stage not mapped to ``omitted``, an open stage mapped to
                ``closed``, or bad thresholds (each naming the argument).

        Example:
            >>> from pipelinekit import schemes
            >>> CategoryMap.for_scheme(schemes.get("salesforce"), {"won": "commit"})
            Traceback (most recent call last):
            ...
            pipelinekit.errors.ArgumentError: argument 'stages': unknown stage key 'won'; ...
        """
        if not isinstance(scheme, StageScheme):
            raise ArgumentError("scheme", f"expected a StageScheme, got {type(scheme).__name__}")
        limits = _thresholds(thresholds)
        chosen: dict[str, ForecastCategory] = {}
        for key, value in (stages or {}).items():
            if not scheme.has_stage(key):
                raise ArgumentError("stages", scheme.unknown_stage(key))
            chosen[key] = _category(value, "stages")
        pairs: list[tuple[str, ForecastCategory]] = []
        for stage in scheme.stages:
            if stage.is_won:
                default = ForecastCategory.CLOSED
            elif stage.is_lost:
                default = ForecastCategory.OMITTED
            else:
                default = _by_weight(stage.weight, limits)
            category = chosen.get(stage.key, default)
            if stage.is_won and category is not ForecastCategory.CLOSED:
                raise ArgumentError(
                    "stages", f"won stage {stage.key!r} is always 'closed', not {category.value!r}"
                )
            if stage.is_lost and category is not ForecastCategory.OMITTED:
                raise ArgumentError(
                    "stages",
                    f"lost stage {stage.key!r} is always 'omitted', not {category.value!r}",
                )
            if stage.is_open and category is ForecastCategory.CLOSED:
                raise ArgumentError(
                    "stages",
                    f"open stage {stage.key!r} cannot be 'closed'; only won stages are",
                )
            pairs.append((stage.key, category))
        return cls(scheme=scheme.name, stages=tuple(pairs))

    def check(self, scheme: StageScheme) -> None:
        """Check that this map covers exactly the stages of ``scheme``, legally.

        Raises:
            ArgumentError: (naming ``categories``) the stage keys differ, or a won stage is
                not ``closed``, a lost one not ``omitted``, an open one ``closed``.
        """
        mine = [k for k, _ in self.stages]
        if mine != list(scheme.keys):
            unknown = [k for k in mine if not scheme.has_stage(k)]
            missing = [k for k in scheme.keys if k not in mine]
            raise ArgumentError(
                "categories",
                f"the category map (built for {self.scheme!r}) does not fit scheme "
                f"{scheme.name!r}: unknown stage keys {unknown}, missing {missing}; build it "
                "with CategoryMap.for_scheme(scheme)",
            )
        try:
            CategoryMap.for_scheme(scheme, dict(self.stages))
        except ArgumentError as exc:
            raise ArgumentError("categories", exc.reason) from None

    def category_of_stage(self, stage: str) -> ForecastCategory:
        """The category of stage key ``stage``.

        Raises:
            ArgumentError: (naming ``stage``) the map has no such stage.
        """
        for key, category in self.stages:
            if key == stage:
                return category
        raise ArgumentError("stage", f"unknown stage key {stage!r} in the category map")

    def category_of(
        self,
        opportunity: Opportunity,
        overrides: Mapping[str, ForecastCategory] | None = None,
    ) -> ForecastCategory:
        """The category of an opportunity: its override while open, else its stage's.

        Won deals are always ``closed`` and lost ones ``omitted``, whatever the override.

        Example:
            >>> from pipelinekit import History, schemes
            >>> s = schemes.get("salesforce")
            >>> h = History.from_records([{"type": "opened", "opportunity_id": "o-1",
            ...     "at": "2024-01-05T10:00:00Z", "stage": "prospecting"}], scheme=s)
            >>> opp = h.as_of("2024-02-01T00:00:00Z")["o-1"]
            >>> cmap = CategoryMap.for_scheme(s)
            >>> cmap.category_of(opp).value, cmap.category_of(opp, {"o-1": "commit"}).value
            ('pipeline', 'commit')
        """
        if opportunity.is_open and overrides:
            chosen = overrides.get(opportunity.id)
            if chosen is not None:
                return ForecastCategory(chosen)
        return self.category_of_stage(opportunity.stage)


def _thresholds(values: tuple[Any, ...]) -> tuple[Decimal, Decimal, Decimal]:
    try:
        limits = tuple(Decimal(str(v)) for v in values)
    except (ArithmeticError, TypeError, ValueError):
        raise ArgumentError("thresholds", f"expected three percentages, got {values!r}") from None
    if (
        len(limits) != 3
        or not all(v.is_finite() and 0 <= v <= 100 for v in limits)
        or not limits[0] < limits[1] < limits[2]
    ):
        raise ArgumentError(
            "thresholds",
            f"expected three increasing percentages in 0-100 (best case, most likely, "
            f"commit), got {values!r}",
        )
    return (limits[0], limits[1], limits[2])


def category_overrides(
    overrides: Mapping[str, ForecastCategory | str] | None,
) -> tuple[tuple[str, ForecastCategory], ...]:
    """Validate per-deal overrides (opportunity id -> category) into sorted pairs.

    An override applies to an open deal only, so it must be an open category or
    ``omitted``; ``closed`` is refused (a deal is closed by winning it).

    Raises:
        ArgumentError: (naming ``overrides``) not a mapping, an unknown category, or
            ``closed``.

    Example:
        >>> category_overrides({"o-2": "omitted", "o-1": "commit"})[0]
        ('o-1', <ForecastCategory.COMMIT: 'commit'>)
    """
    if overrides is None:
        return ()
    if not isinstance(overrides, Mapping):
        raise ArgumentError(
            "overrides",
            f"expected a mapping of opportunity id to category, got {type(overrides).__name__}",
        )
    pairs = []
    for oid, value in overrides.items():
        category = _category(value, "overrides")
        if category is ForecastCategory.CLOSED:
            raise ArgumentError(
                "overrides",
                f"opportunity {oid!r}: 'closed' cannot be set by hand; a deal is closed by "
                "winning it",
            )
        pairs.append((str(oid), category))
    return tuple(sorted(pairs))


def forecast_columns(amounts: Mapping[ForecastCategory, Decimal]) -> dict[str, Decimal]:
    """Salesforce's individual and cumulative forecast columns from per-category amounts.

    Missing categories count as zero.

    Example:
        >>> from decimal import Decimal as D
        >>> cols = forecast_columns({ForecastCategory.COMMIT: D(30), ForecastCategory.CLOSED: D(50),
        ...                          ForecastCategory.PIPELINE: D(100)})
        >>> cols["commit_forecast"], cols["best_case_forecast"], cols["open_pipeline"]
        (Decimal('80'), Decimal('80'), Decimal('130'))
    """
    get = {c: amounts.get(c, Decimal(0)) for c in ForecastCategory}
    columns = {c.value: get[c] for c in ForecastCategory}
    commit = get[ForecastCategory.COMMIT] + get[ForecastCategory.CLOSED]
    most_likely = commit + get[ForecastCategory.MOST_LIKELY]
    columns["commit_forecast"] = commit
    columns["most_likely_forecast"] = most_likely
    columns["best_case_forecast"] = most_likely + get[ForecastCategory.BEST_CASE]
    columns["open_pipeline"] = sum((get[c] for c in OPEN_CATEGORIES), Decimal(0))
    return columns
