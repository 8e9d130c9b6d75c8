"""Sums of money are exact whatever the digits, so results merged from partitions equal the
whole: Python's default decimal context keeps 28 digits and rounds otherwise."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelinekit as pk
from pipelinekit import History
from pipelinekit.calculators import compute_partitioned
from pipelinekit.forecasts.distribution import OutcomeDistribution
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, percent_of, total
from pipelinekit.reports.lead_requirement import LeadRequirement
from pipelinekit.reports.movement import PipelineMovement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.quota import QuotaAttainment
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.weak_areas import WeakAreas
from pipelinekit.reports.win_loss import WinLoss

S = pk.schemes.get("salesforce")
AS_OF = "2024-06-30T00:00:00Z"
AWKWARD = ("999999999999999", "7.1234567890123456789", "0.333333333333333333333")


def deal(oid: str, amount: str, stage: str, day: int, owner: str = "ann") -> list[dict[str, Any]]:
    opened = {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"2024-01-{day:02d}T00:00:00Z",
        "stage": "prospecting",
        "amount": amount,
        "currency": "EUR",
        "owner": owner,
        "expected_close": "2024-05-15",
    }
    if stage == "prospecting":
        return [opened]
    moved = {
        "type": "stage_changed",
        "opportunity_id": oid,
        "at": f"2024-03-{day:02d}T00:00:00Z",
        "stage": stage,
    }
    return [opened, moved]


def awkward_history(stage: str) -> History:
    records = [r for i, a in enumerate(AWKWARD) for r in deal(f"d{i}", a, stage, i + 1)]
    return History.from_records(records, scheme=S)


def test_the_issue_reproducer_pipeline_by_stage_of_three_won_deals() -> None:
    history = awkward_history("closed-won")
    calc = PipelineByStage(include_closed=True)
    whole = calc.compute(history, as_of=AS_OF)
    merged = compute_partitioned(calc, history.partition(3), as_of=AS_OF)
    assert merged == whole
    won = next(c for c in whole.cells if c.stage == "closed-won")
    assert Fraction(won.amount) == sum(Fraction(a) for a in AWKWARD)
    assert won.amount == Decimal("1000000000000006.456790122345679012233")


def test_the_issue_reproducer_weighted_variance() -> None:
    history = awkward_history("negotiation-review")
    calc = WeightedForecast(period="month", horizon=6)
    whole = calc.compute(history, as_of=AS_OF)
    merged = compute_partitioned(calc, history.partition(3), as_of=AS_OF)
    assert merged == whole
    (row,) = [r for r in whole.rows if r.deals]
    expected = sum(Fraction(a) * Fraction(9, 10) for a in AWKWARD)
    variance = sum(Fraction(a) ** 2 * Fraction(9, 100) for a in AWKWARD)
    assert Fraction(row.expected) == expected and Fraction(row.variance or 0) == variance


def test_sums_do_not_depend_on_the_callers_decimal_context() -> None:
    history = awkward_history("closed-won")
    calc = PipelineByStage(include_closed=True)
    usual = calc.compute(history, as_of=AS_OF)
    with localcontext(prec=6):
        assert calc.compute(history, as_of=AS_OF) == usual
        assert total([Decimal("1.0000001"), Decimal("2")]) == Decimal("3.0000001")
    assert ReportingCurrency("EUR", FxRates.static("EUR", {"USD": "0.9"}))(
        Decimal("1.00000000000000000000000000001"), "USD"
    ) == Decimal("0.900000000000000000000000000009")


def test_the_helpers() -> None:
    assert percent_of(Decimal("7.1234567890123456789"), Decimal("33.3")) == Decimal(
        "2.37211111074111111107370"
    )
    assert total([]) == 0 and total([Decimal(1)]) == 1
    assert Fraction(EXACT.add(Decimal("1e40"), Decimal("1e-40"))) == 10**40 + Fraction(1, 10**40)


MERGEABLE: dict[str, Any] = {
    "pipeline-by-stage": PipelineByStage(group_by="owner", include_closed=True),
    "win-loss": WinLoss(by="owner"),
    "weighted": WeightedForecast(period="month", horizon=6),
    "outcome-distribution": OutcomeDistribution(horizon=6, exact_limit=0),
    "quota": QuotaAttainment(quotas={"ann": "1e15", "bob": "7.77"}, teams={"t": ("ann", "bob")}),
    "movement": PipelineMovement(start="2024-02-01T00:00:00Z", period=("quarter", "2024-04-01")),
    "velocity": Velocity(),
    "lead-requirement": LeadRequirement(target="123456789012345.123456789"),
    "weak-areas": WeakAreas(),
}
BIG = st.integers(10**14, 10**15).map(Decimal)  # 15-16 digits before the point...
SMALL = st.integers(1, 10**25 - 1).map(lambda n: Decimal(n).scaleb(-25))  # ...25 after it
STAGES = ("prospecting", "negotiation-review", "closed-won", "closed-lost")
DEALS = st.tuples(
    st.lists(st.tuples(BIG, st.sampled_from(STAGES)), min_size=1, max_size=3),
    st.lists(st.tuples(SMALL, st.sampled_from(STAGES)), min_size=1, max_size=3),
).map(
    lambda both: [
        (a, s, "ann" if i % 3 else "bob") for i, (a, s) in enumerate([*both[0], *both[1]])
    ]
)
"""Deals whose exact sums need about 40 digits, 12 more than the default context keeps."""


@pytest.mark.parametrize("name", sorted(MERGEABLE))
def test_merged_partitions_equal_the_whole_whatever_the_digits(name: str) -> None:
    calc = MERGEABLE[name]

    @settings(max_examples=15, deadline=None, database=None)
    @given(DEALS, st.integers(2, 4))
    def check(deals: list[tuple[Decimal, str, str]], parts: int) -> None:
        records = [
            r
            for i, (amount, stage, owner) in enumerate(deals)
            for r in deal(f"d{i}", str(amount), stage, i + 1, owner)
        ]
        history = History.from_records(records, scheme=S)
        whole = calc.compute(history, as_of=AS_OF)
        merged = compute_partitioned(calc, history.partition(parts), as_of=AS_OF)
        assert merged == whole
        assert merged.to_records() == whole.to_records()
        if name == "win-loss":  # and the sums are the exact ones
            won = [a for a, stage, _ in deals if stage == "closed-won"]
            assert Fraction(whole.overall.won_amount) == sum(map(Fraction, won))
        if name == "pipeline-by-stage":  # every deal is in one cell
            assert Fraction(total(c.amount for c in whole.cells)) == sum(
                Fraction(a) for a, _, _ in deals
            )

    check()


def test_the_normal_approximation_ends_for_amounts_near_the_maximum() -> None:
    """Bisection to the cent never ended: floats near 1e15 are 0.125 apart."""
    records = [
        r
        for i in range(12)
        for r in deal(f"d{i}", "999999999999999.5", "negotiation-review", i + 1)
    ]
    history = History.from_records(records, scheme=S)
    result = OutcomeDistribution(horizon=6, exact_limit=0).compute(history, as_of=AS_OF)
    (row,) = [r for r in result.rows if r.deals]
    assert row.p10 is not None and row.p90 is not None
    assert row.p10 <= row.p50 <= row.p90 <= Decimal("999999999999999.5") * 12  # type: ignore[operator]
