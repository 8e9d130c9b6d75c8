"""Forecast categories: default maps by weight, per-stage and per-deal overrides, columns."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelinekit import ArgumentError, History, schemes
from pipelinekit.categories import (
    CategoryMap,
    ForecastCategory,
    category_overrides,
    forecast_columns,
)

C = ForecastCategory
SF = schemes.get("salesforce")


def test_default_map_sorts_open_stages_by_weight_thresholds() -> None:
    cmap = CategoryMap.for_scheme(SF)
    assert dict(cmap.stages) == {
        "prospecting": C.PIPELINE,  # 10
        "qualification": C.PIPELINE,  # 10
        "needs-analysis": C.PIPELINE,  # 20
        "value-proposition": C.BEST_CASE,  # 50: the threshold belongs to best case
        "id-decision-makers": C.BEST_CASE,  # 60
        "perception-analysis": C.BEST_CASE,  # 70
        "proposal-price-quote": C.MOST_LIKELY,  # 75
        "negotiation-review": C.COMMIT,  # 90
        "closed-won": C.CLOSED,
        "closed-lost": C.OMITTED,
    }


def test_scheme_without_weights_maps_open_stages_to_pipeline() -> None:
    cmap = CategoryMap.for_scheme(schemes.get("polish-sales-cycle"))
    assert {c for k, c in cmap.stages if k not in ("contract", "delivery", "realised", "lost")} == {
        C.PIPELINE
    }
    assert cmap.category_of_stage("delivery") is C.CLOSED  # every won stage is closed


def test_custom_thresholds_and_stage_choices() -> None:
    cmap = CategoryMap.for_scheme(SF, {"prospecting": "omitted"}, thresholds=(20, 60, 75))
    assert cmap.category_of_stage("prospecting") is C.OMITTED
    assert cmap.category_of_stage("needs-analysis") is C.BEST_CASE
    assert cmap.category_of_stage("id-decision-makers") is C.MOST_LIKELY
    assert cmap.category_of_stage("proposal-price-quote") is C.COMMIT


def test_per_deal_override_applies_to_open_deals_only() -> None:
    h = History.from_records(
        [
            {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
             "stage": "prospecting"},
            {"type": "opened", "opportunity_id": "b", "at": "2024-01-01T00:00:00Z",
             "stage": "closed-won"},
        ],
        scheme=SF,
    )  # fmt: skip
    pipe = h.as_of("2024-02-01T00:00:00Z")
    cmap = CategoryMap.for_scheme(SF)
    overrides = dict(category_overrides({"a": "commit", "b": "omitted"}))
    assert cmap.category_of(pipe["a"], overrides) is C.COMMIT
    assert cmap.category_of(pipe["b"], overrides) is C.CLOSED


def test_forecast_columns_are_salesforce_cumulative_sums() -> None:
    amounts = {
        C.PIPELINE: Decimal(1),
        C.BEST_CASE: Decimal(10),
        C.MOST_LIKELY: Decimal(100),
        C.COMMIT: Decimal(1000),
        C.CLOSED: Decimal(10000),
        C.OMITTED: Decimal(100000),
    }
    cols = forecast_columns(amounts)
    assert cols["commit_forecast"] == Decimal(11000)
    assert cols["most_likely_forecast"] == Decimal(11100)
    assert cols["best_case_forecast"] == Decimal(11110)
    assert cols["open_pipeline"] == Decimal(1111)
    assert cols["omitted"] == Decimal(100000)


def test_check_accepts_its_own_scheme_and_refuses_another() -> None:
    cmap = CategoryMap.for_scheme(SF)
    cmap.check(SF)
    with pytest.raises(ArgumentError) as err:
        cmap.check(schemes.get("vtiger-lead-funnel"))
    assert err.value.argument == "categories"


def test_check_refuses_a_hand_built_map_with_an_illegal_category() -> None:
    pairs = tuple(
        (k, C.COMMIT if k == "closed-won" else c) for k, c in CategoryMap.for_scheme(SF).stages
    )
    with pytest.raises(ArgumentError) as err:
        CategoryMap(scheme="salesforce", stages=pairs).check(SF)
    assert err.value.argument == "categories"


@pytest.mark.parametrize(
    ("stages", "thresholds"),
    [
        ({"no-such-stage": "commit"}, (50, 75, 90)),
        ({"prospecting": "certain"}, (50, 75, 90)),
        ({"closed-won": "commit"}, (50, 75, 90)),
        ({"closed-lost": "pipeline"}, (50, 75, 90)),
        ({"prospecting": "closed"}, (50, 75, 90)),
    ],
)
def test_bad_stage_mapping_names_the_stages_argument(
    stages: dict[str, str], thresholds: tuple[int, int, int]
) -> None:
    with pytest.raises(ArgumentError) as err:
        CategoryMap.for_scheme(SF, stages, thresholds=thresholds)
    assert err.value.argument == "stages"


@pytest.mark.parametrize("thresholds", [(75, 50, 90), (50, 75, 190), (50, 75), ("x", 1, 2)])
def test_bad_thresholds_are_refused(thresholds: tuple[object, ...]) -> None:
    with pytest.raises(ArgumentError) as err:
        CategoryMap.for_scheme(SF, thresholds=thresholds)  # type: ignore[arg-type]
    assert err.value.argument == "thresholds"


@pytest.mark.parametrize("overrides", [{"a": "closed"}, {"a": "maybe"}, ["a"]])
def test_bad_overrides_are_refused(overrides: object) -> None:
    with pytest.raises(ArgumentError) as err:
        category_overrides(overrides)  # type: ignore[arg-type]
    assert err.value.argument == "overrides"


def test_unknown_stage_lookup_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError) as err:
        CategoryMap.for_scheme(SF).category_of_stage("nope")
    assert err.value.argument == "stage"
