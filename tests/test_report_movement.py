"""Pipeline movement: a hand-computed waterfall, and the bridge balancing on random histories."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import ArgumentError, CurrencyError, FxRates, History, demo, schemes
from pipelinekit.categories import CategoryMap
from pipelinekit.history import Pipeline
from pipelinekit.periods import period_kind
from pipelinekit.reports.movement import KINDS, MovementResult, PipelineMovement

SF = schemes.get("salesforce")
START = "2024-07-01T00:00:00Z"
AS_OF = "2024-09-30T00:00:00Z"
Q3 = ("quarter", "2024-07-01")


def opened(oid: str, at: str, stage: str, amount: str, close: str, owner: str) -> dict[str, Any]:
    return {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"{at}T00:00:00Z",
        "stage": stage,
        "amount": amount,
        "currency": "EUR",
        "expected_close": close,
        "owner": owner,
    }


def ev(kind: str, oid: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "opportunity_id": oid, "at": f"{at}T00:00:00Z", **fields}


# Target: 2024-Q3 (2024-07-01 .. 2024-10-01), start 2024-07-01, as_of 2024-09-30.
QUARTER = [
    # A: in Q3 at start (100, pipeline), raised to 150, won -> increased +50, won -150
    opened("A", "2024-06-01", "prospecting", "100", "2024-08-15", "ann"),
    ev("stage_changed", "A", "2024-07-15", stage="negotiation-review"),
    ev("amount_changed", "A", "2024-08-01", amount="150"),
    ev("stage_changed", "A", "2024-09-10", stage="closed-won"),
    # B: in Q3 at start (200), close date pushed to Q4 -> pushed_out -200 (56 days slipped)
    opened("B", "2024-06-01", "qualification", "200", "2024-09-20", "ann"),
    ev("close_date_changed", "B", "2024-07-20", expected_close="2024-11-15"),
    # C: Q4 at start (300), pulled into Q3, cut to 250 -> pulled_in +300, decreased -50
    opened("C", "2024-06-01", "prospecting", "300", "2024-12-10", "bob"),
    ev("close_date_changed", "C", "2024-08-05", expected_close="2024-09-25"),
    ev("amount_changed", "C", "2024-08-06", amount="250"),
    ev("stage_changed", "C", "2024-08-07", stage="proposal-price-quote"),
    # D: opened after start, in Q3 -> new +80 (booked to its owner at as_of, ann)
    opened("D", "2024-07-05", "value-proposition", "80", "2024-09-01", "bob"),
    ev("owner_changed", "D", "2024-08-10", owner="ann"),
    # E: in Q3 at start (400, bob, best case); to ann, to commit, raised to 500
    opened("E", "2024-05-01", "id-decision-makers", "400", "2024-09-30", "bob"),
    ev("owner_changed", "E", "2024-08-20", owner="ann"),
    ev("amount_changed", "E", "2024-09-01", amount="500"),
    ev("stage_changed", "E", "2024-09-05", stage="negotiation-review"),
    # F: in Q3 at start (70), lost -> lost -70
    opened("F", "2024-06-01", "prospecting", "70", "2024-08-31", "bob"),
    ev("stage_changed", "F", "2024-07-30", stage="closed-lost"),
    # G: overdue Q2 date at start (90), moved into Q3 -> pushed_in +90 (87 days slipped)
    opened("G", "2024-06-01", "prospecting", "90", "2024-06-20", "ann"),
    ev("close_date_changed", "G", "2024-07-02", expected_close="2024-09-15"),
    # H: opened and won inside the window -> new +60, won -60
    opened("H", "2024-07-10", "prospecting", "60", "2024-08-30", "ann"),
    ev("stage_changed", "H", "2024-08-25", stage="closed-won"),
    # I: Q1 deal, never in Q3 -> not in the report
    opened("I", "2024-01-10", "prospecting", "999", "2024-03-01", "ann"),
]


def quarter_history(extra: list[dict[str, Any]] | None = None) -> History:
    return History.from_records(QUARTER + (extra or []), scheme=SF)


def test_hand_computed_quarter_waterfall() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=AS_OF)
    # start: A 100 + B 200 + E 400 + F 70
    assert (r.starting, r.starting_deals) == (Decimal(770), 4)
    # end: C 250 + D 80 + E 500 + G 90
    assert (r.ending, r.ending_deals) == (Decimal(920), 4)
    steps = {row["step"]: row["amount"] for row in r.to_records()}
    assert steps == {
        "start": Decimal(770),
        "new": Decimal(140),  # D 80 + H 60
        "pulled_in": Decimal(300),  # C
        "pushed_in": Decimal(90),  # G
        "dated": Decimal(0),
        "reopened": Decimal(0),
        "increased": Decimal(150),  # A +50, E +100
        "decreased": Decimal(-50),  # C
        "moved_owner": Decimal(0),  # E bob -> ann, nets to zero
        "moved_category": Decimal(0),  # E best case -> commit
        "pulled_out": Decimal(0),
        "pushed_out": Decimal(-200),  # B
        "undated": Decimal(0),
        "won": Decimal(-210),  # A 150 + H 60
        "lost": Decimal(-70),  # F
        "end": Decimal(920),
    }
    assert r.balances
    moved = {row["step"]: row["moved"] for row in r.to_records()}
    assert moved["moved_owner"] == Decimal(400)
    assert moved["moved_category"] == Decimal(400)
    assert "I" not in {m.opportunity_id for m in r.movements}


def test_each_movement_is_attributed_to_its_opportunity_in_bridge_order() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=AS_OF)
    rows = [(m.opportunity_id, m.kind, m.amount, m.owner, m.category.value) for m in r.movements]
    d = Decimal
    assert rows == [
        ("A", "increased", d(50), "ann", "pipeline"),  # exits keep the start category
        ("A", "won", d(-150), "ann", "pipeline"),
        ("B", "pushed_out", d(-200), "ann", "pipeline"),
        ("C", "pulled_in", d(300), "bob", "most_likely"),  # entries take the end category
        ("C", "decreased", d(-50), "bob", "most_likely"),
        ("D", "new", d(80), "ann", "best_case"),
        ("E", "increased", d(100), "ann", "commit"),
        ("E", "moved_owner", d(-400), "bob", "best_case"),
        ("E", "moved_owner", d(400), "ann", "best_case"),
        ("E", "moved_category", d(-400), "ann", "best_case"),
        ("E", "moved_category", d(400), "ann", "commit"),
        ("F", "lost", d(-70), "bob", "pipeline"),
        ("G", "pushed_in", d(90), "ann", "pipeline"),
        ("H", "new", d(60), "ann", "closed"),  # passed through: opened and won inside
        ("H", "won", d(-60), "ann", "closed"),
    ]


def test_bridge_per_owner_balances_by_hand() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=AS_OF)
    by_owner = {row["owner"]: row for row in r.bridge_records("owner")}
    assert (by_owner["ann"]["start"], by_owner["ann"]["end"]) == (Decimal(300), Decimal(670))
    assert (by_owner["bob"]["start"], by_owner["bob"]["end"]) == (Decimal(470), Decimal(250))
    assert by_owner["bob"]["moved_owner"] == Decimal(-400)
    by_cat = {row["category"]: row["end"] for row in r.bridge_records("category")}
    # end: C most likely 250, D best case 80, E commit 500, G pipeline 90
    assert by_cat == {
        "best_case": Decimal(80),
        "closed": Decimal(0),
        "commit": Decimal(500),
        "most_likely": Decimal(250),
        "pipeline": Decimal(90),
    }


def test_slippage_counts_pushes_and_days_in_the_window() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=AS_OF)
    slip = {s.opportunity_id: s for s in r.slippage}
    assert set(slip) == {"B", "C", "G"}
    assert (slip["B"].pushes, slip["B"].days_slipped) == (1, 56)  # 09-20 -> 11-15
    assert (slip["C"].pulls, slip["C"].days_pulled, slip["C"].pushes) == (1, 76, 0)
    assert (slip["G"].pushes, slip["G"].days_slipped) == (1, 87)  # 06-20 -> 09-15
    assert slip["B"].close_before == date(2024, 9, 20)
    assert slip["B"].close_after == date(2024, 11, 15)


def test_slippage_ignores_changes_before_start() -> None:
    extra = [ev("close_date_changed", "I", "2024-02-01", expected_close="2024-09-01")]
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(extra), as_of=AS_OF)
    # I entered Q3 before start: it is in the starting pipeline, its push is not in the window
    assert r.starting == Decimal(770 + 999)
    assert "I" not in {s.opportunity_id for s in r.slippage}


def test_reopened_dated_undated_and_pulled_out() -> None:
    scheme = schemes.get("vtiger-lead-funnel").model_copy(update={"reopen": True})
    scheme = type(scheme).model_validate(scheme.model_dump())
    recs = [
        {"type": "opened", "opportunity_id": "r", "at": "2024-06-01T00:00:00Z",
         "stage": "lost", "amount": "10", "expected_close": "2024-08-01"},
        {"type": "stage_changed", "opportunity_id": "r", "at": "2024-07-05T00:00:00Z",
         "stage": "quote"},
        {"type": "opened", "opportunity_id": "d", "at": "2024-06-01T00:00:00Z",
         "stage": "lead", "amount": "20"},
        {"type": "close_date_changed", "opportunity_id": "d", "at": "2024-07-05T00:00:00Z",
         "expected_close": "2024-08-01"},
        {"type": "opened", "opportunity_id": "u", "at": "2024-06-01T00:00:00Z",
         "stage": "lead", "amount": "30", "expected_close": "2024-08-01"},
        {"type": "close_date_changed", "opportunity_id": "u", "at": "2024-07-05T00:00:00Z",
         "expected_close": None},
        {"type": "opened", "opportunity_id": "p", "at": "2024-06-01T00:00:00Z",
         "stage": "lead", "amount": "40", "expected_close": "2024-08-01"},
        {"type": "close_date_changed", "opportunity_id": "p", "at": "2024-07-05T00:00:00Z",
         "expected_close": "2024-06-30"},
    ]  # fmt: skip
    h = History.from_records(recs, scheme=scheme)
    r = PipelineMovement(start=START, period=Q3).compute(h, as_of=AS_OF)
    kinds = {m.opportunity_id: (m.kind, m.amount) for m in r.movements}
    assert kinds == {
        "r": ("reopened", Decimal(10)),
        "d": ("dated", Decimal(20)),
        "u": ("undated", Decimal(-30)),
        "p": ("pulled_out", Decimal(-40)),
    }
    assert (r.starting, r.ending) == (Decimal(70), Decimal(30))
    assert r.balances


def test_empty_window_has_no_movements() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=START)
    assert r.movements == ()
    assert r.starting == r.ending == Decimal(770)


def test_fx_converts_both_ends_at_the_as_of_rate() -> None:
    recs = [
        {"type": "opened", "opportunity_id": "x", "at": "2024-06-01T00:00:00Z",
         "stage": "prospecting", "amount": "100", "currency": "USD",
         "expected_close": "2024-08-01"},
        {"type": "opened", "opportunity_id": "y", "at": "2024-06-01T00:00:00Z",
         "stage": "prospecting", "amount": "100", "currency": "EUR",
         "expected_close": "2024-08-01"},
    ]  # fmt: skip
    h = History.from_records(recs, scheme=SF)
    rates = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.8", date(2024, 8, 1): "0.9"}})
    r = PipelineMovement(start=START, period=Q3, currency="EUR", rates=rates).compute(
        h, as_of=AS_OF
    )
    assert (r.starting, r.ending, r.movements) == (Decimal("190.0"), Decimal("190.0"), ())
    with pytest.raises(CurrencyError):
        PipelineMovement(start=START, period=Q3).compute(h, as_of=AS_OF)


def test_category_overrides_are_applied() -> None:
    m = PipelineMovement(start=START, period=Q3, overrides={"E": "omitted"})
    r = m.compute(quarter_history(), as_of=AS_OF)
    assert {x.category.value for x in r.movements if x.opportunity_id == "E"} == {"omitted"}


# -- properties -----------------------------------------------------------------------

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime, tuple[str, date]]:
    a = draw(st.integers(0, 400 * 24))
    b = draw(st.integers(a, 420 * 24))
    kind = draw(st.sampled_from(["month", "quarter", "week", "fiscal_year:4", "quarter:2"]))
    day = T0.date() + timedelta(days=draw(st.integers(0, 380)))
    return T0 + timedelta(hours=a), T0 + timedelta(hours=b), (kind, day)


def _pipeline_in(pipe: Pipeline, spec: tuple[str, date]) -> Decimal:
    period = period_kind(spec[0]).period_of(spec[1])
    return sum(
        (
            o.amount or Decimal(0)
            for o in pipe.values()
            if o.is_open and o.expected_close is not None and o.expected_close in period
        ),
        Decimal(0),
    )


@settings(max_examples=40, deadline=None)
@given(histories, windows())
def test_bridge_balances_exactly_and_matches_the_snapshots(
    h: History, w: tuple[datetime, datetime, tuple[str, date]]
) -> None:
    start, end, spec = w
    r = PipelineMovement(start=start, period=spec).compute(h, as_of=end)
    assert r.starting + sum((m.amount for m in r.movements), Decimal(0)) == r.ending
    assert r.starting == _pipeline_in(h.as_of(start), spec)
    assert r.ending == _pipeline_in(h.as_of(end), spec)
    for by in ("owner", "category"):
        for row in r.bridge_records(by):  # type: ignore[arg-type]
            assert row["start"] + sum(row[k] for k in KINDS) == row["end"]
    for kind in ("moved_owner", "moved_category"):
        assert r.total(kind) == Decimal(0)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(histories, windows(), st.integers(1, 200))
def test_no_look_ahead(
    h: History, w: tuple[datetime, datetime, tuple[str, date]], hours: int
) -> None:
    start, end, spec = w
    m = PipelineMovement(start=start, period=spec)
    later = end + timedelta(hours=hours)
    extra = [
        ev("amount_changed", oid, "x", amount="1") | {"at": later.isoformat()}
        for oid in h.until(end).as_of(end).open()
    ]
    extra += [
        {"type": "opened", "opportunity_id": "late", "at": later.isoformat(), "stage":
         "prospecting", "amount": "5", "currency": "EUR", "expected_close": str(spec[1])}
    ]  # fmt: skip
    bigger = History.from_records(h.to_records() + extra, scheme=h.scheme)
    assert m.compute(bigger, as_of=end) == m.compute(h, as_of=end)


@settings(max_examples=25, deadline=None)
@given(histories, windows(), st.integers(0, 2**32))
def test_merge_over_a_split_equals_the_whole(
    h: History, w: tuple[datetime, datetime, tuple[str, date]], seed: int
) -> None:
    start, end, spec = w
    ids = list(h.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = len(ids) // 3
    m = PipelineMovement(start=start, period=spec)
    whole = m.compute(h, as_of=end)
    parts = [m.compute(h.for_opportunities(p), as_of=end) for p in (ids[:cut], ids[cut:])]
    assert parts[0].merge(parts[1]) == whole


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"start": "2024-07-01"}, "start"),
        ({"start": datetime(2024, 7, 1)}, "start"),
        ({"period": ("fortnight", "2024-07-01")}, "period"),
        ({"period": "2024-Q3"}, "period"),
        ({"period": ("quarter", "July")}, "period"),
        ({"period": ("quarter", datetime(2024, 7, 1, tzinfo=UTC))}, "period"),
        ({"period": (3, "2024-07-01")}, "period"),
        ({"currency": "eur"}, "currency"),
        ({"rates": {"USD": 1}}, "rates"),
        ({"categories": {"prospecting": "commit"}}, "categories"),
        ({"overrides": {"A": "closed"}}, "overrides"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    args: dict[str, Any] = {"start": START, "period": Q3} | kwargs
    with pytest.raises(ArgumentError) as err:
        PipelineMovement(**args)
    assert err.value.argument == argument


def test_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ArgumentError) as err:
        PipelineMovement(start=AS_OF, period=Q3).compute(quarter_history(), as_of=START)
    assert err.value.argument == "as_of"


def test_category_map_of_another_scheme_is_refused() -> None:
    cmap = CategoryMap.for_scheme(schemes.get("vtiger-lead-funnel"))
    m = PipelineMovement(start=START, period=Q3, categories=cmap)
    with pytest.raises(ArgumentError) as err:
        m.compute(quarter_history(), as_of=AS_OF)
    assert err.value.argument == "categories"


def test_bridge_by_unknown_dimension_is_refused() -> None:
    r = PipelineMovement(start=START, period=Q3).compute(quarter_history(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        r.bridge_records("product")  # type: ignore[arg-type]
    assert err.value.argument == "by"


def test_merge_refuses_other_settings_or_windows() -> None:
    h = quarter_history()
    a = PipelineMovement(start=START, period=Q3).compute(h, as_of=AS_OF)
    others: list[MovementResult] = [
        PipelineMovement(start=START, period=Q3).compute(h, as_of="2024-09-29T00:00:00Z"),
        PipelineMovement(start=START, period=("month", "2024-08-01")).compute(h, as_of=AS_OF),
        PipelineMovement(start=START, period=Q3, overrides={"E": "commit"}).compute(h, as_of=AS_OF),
    ]
    for other in others:
        with pytest.raises(ArgumentError) as err:
            a.merge(other)
        assert err.value.argument == "other"
