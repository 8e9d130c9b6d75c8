"""WinLoss: hand-computed win rates, stage reached, loss reasons, properties, bad arguments."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError, CurrencyError
from pipelinekit.money import FxRates
from pipelinekit.opportunity import reached_stages
from pipelinekit.reports.win_loss import NO_REASON, WinLoss

SIMPLE = StageScheme.model_validate(
    {
        "name": "simple",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
WINDOW = ("2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00")
AS_OF = "2024-03-10T00:00:00+00:00"


def opened(oid: str, stage: str, amount: str | None, owner: str) -> dict[str, Any]:
    return {
        "type": "opened",
        "opportunity_id": oid,
        "at": "2024-01-02T00:00:00Z",
        "stage": stage,
        "amount": amount,
        "currency": "EUR" if amount else None,
        "owner": owner,
    }


def moved(oid: str, stage: str, at: str, reason: str | None = None) -> dict[str, Any]:
    return {"type": "stage_changed", "opportunity_id": oid, "at": at, "stage": stage} | {
        "reason": reason
    }


RECORDS = [
    opened("a", "lead", "1000", "ann"),
    moved("a", "offer", "2024-01-20T00:00:00Z"),
    moved("a", "won", "2024-02-05T00:00:00Z"),
    opened("b", "lead", "2000", "bob"),
    moved("b", "lost", "2024-02-10T00:00:00Z", reason="price"),
    opened("c", "offer", "3000", "ann"),
    moved("c", "lost", "2024-02-15T00:00:00Z"),
    opened("d", "lead", None, "ann"),
    moved("d", "won", "2024-03-05T00:00:00Z"),
    opened("e", "lead", "500", "bob"),
    moved("e", "won", "2024-01-20T00:00:00Z"),
    opened("f", "lead", "700", "bob"),
]


def history() -> History:
    return History.from_records(RECORDS, scheme=SIMPLE)


def test_win_rate_amounts_and_averages_in_a_window_by_hand() -> None:
    # closed in [Feb 1, Mar 1): a won 1000; b lost 2000 (price); c lost 3000 (no reason)
    r = WinLoss(window=WINDOW).compute(history(), as_of=AS_OF)
    o = r.overall
    assert (o.won, o.lost, o.closed) == (1, 2, 3)
    assert o.win_rate == pytest.approx(1 / 3)
    assert (o.won_amount, o.lost_amount) == (Decimal(1000), Decimal(5000))
    assert (o.average_won, o.average_lost) == (Decimal(1000), Decimal(2500))
    assert [(x.reason, x.count) for x in r.loss_reasons] == [(NO_REASON, 1), ("price", 1)]
    assert r.loss_reason_records()[1] == {"reason": "price", "count": 1, "share": 0.5}


def test_without_window_every_deal_closed_by_as_of_counts_and_unpriced_ones_too() -> None:
    # won: a 1000, d (no amount), e 500; lost: b 2000, c 3000
    o = WinLoss().compute(history(), as_of=AS_OF).overall
    assert (o.won, o.lost, o.won_unpriced) == (3, 2, 1)
    assert o.average_won == Decimal(750)
    earlier = WinLoss().compute(history(), as_of="2024-02-12T00:00:00Z").overall
    assert (earlier.won, earlier.lost) == (2, 1)


def test_by_owner_rows_add_up_to_the_total() -> None:
    r = WinLoss(window=WINDOW, by="owner").compute(history(), as_of=AS_OF)
    assert [(g.group, g.won, g.lost, g.win_rate) for g in r.groups] == [
        ("ann", 1, 1, 0.5),
        ("bob", 0, 1, 0.0),
    ]
    records = r.to_records()
    assert records[0]["owner"] == "ann"
    assert records[-1]["level"] == "total"
    assert records[-1]["closed"] == 3


def test_by_stage_reached_counts_skips_as_passing_through() -> None:
    # a reached lead+offer (won: every open stage); b reached lead; c opened at offer: both
    r = WinLoss(window=WINDOW, by="stage_reached").compute(history(), as_of=AS_OF)
    assert [(g.group, g.won, g.lost) for g in r.groups] == [("lead", 1, 2), ("offer", 1, 1)]
    assert r.group("offer").win_rate == 0.5
    with pytest.raises(ArgumentError):
        r.group("won")


def test_a_won_deal_reached_every_open_stage() -> None:
    h = History.from_records([opened("x", "won", "1", "ann")], scheme=SIMPLE)
    assert reached_stages(h.as_of(AS_OF)["x"], SIMPLE) == ("lead", "offer")


def test_no_closed_deal_gives_no_win_rate() -> None:
    r = WinLoss(window=("2023-01-01T00:00:00Z", "2023-02-01T00:00:00Z")).compute(
        history(), as_of=AS_OF
    )
    assert r.overall.win_rate is None
    assert r.overall.average_won is None


def test_amounts_convert_on_the_close_date() -> None:
    records = [
        opened("u", "lead", "100", "ann") | {"currency": "USD"},
        moved("u", "won", "2024-02-05T00:00:00Z"),
        opened("v", "lead", "10", "ann"),
        moved("v", "won", "2024-02-20T00:00:00Z"),
    ]
    h = History.from_records(records, scheme=SIMPLE)
    with pytest.raises(CurrencyError):
        WinLoss().compute(h, as_of=AS_OF)
    rates = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.9", date(2024, 2, 10): "0.5"}})
    r = WinLoss(currency="EUR", rates=rates).compute(h, as_of=AS_OF)
    assert r.overall.won_amount == Decimal("100") * Decimal("0.9") + 10


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"window": (WINDOW[1], WINDOW[0])}, "window"),
        ({"window": (WINDOW[0], WINDOW[0])}, "window"),
        ({"window": ("2024-01-01", "2024-02-01")}, "window"),
        ({"window": "2024"}, "window"),
        ({"by": "account"}, "by"),
        ({"currency": "euro"}, "currency"),
        ({"rates": 1.1}, "rates"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        WinLoss(**kwargs)
    assert err.value.argument == argument


def test_merge_refuses_different_settings() -> None:
    r = WinLoss(window=WINDOW).compute(history(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        r.merge(WinLoss().compute(history(), as_of=AS_OF))
    assert err.value.argument == "other"
    with pytest.raises(ArgumentError):
        r.merge(WinLoss(window=WINDOW, by="owner").compute(history(), as_of=AS_OF))


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
instants = st.sampled_from(["2024-05-01T00:00:00+00:00", "2024-09-30T00:00:00+00:00"])
windows = st.sampled_from(
    [None, ("2024-01-01T00:00:00+00:00", "2024-07-01T00:00:00+00:00"), WINDOW]
)
bys = st.sampled_from([None, "owner", "product", "source", "stage_reached"])


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, window=windows)
def test_counts_reconcile_with_the_snapshot(history: History, as_of: str, window: Any) -> None:
    r = WinLoss(window=window, by="owner").compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    calc = WinLoss(window=window)
    start, end = calc.window if calc.window else (None, None)

    def closed_in(o: Any) -> bool:
        return o.closed_at is not None and (start is None or start <= o.closed_at < end)

    assert r.overall.won == sum(1 for o in pipe.won().values() if closed_in(o))
    assert r.overall.lost == sum(1 for o in pipe.lost().values() if closed_in(o))
    assert sum(g.closed for g in r.groups) == r.overall.closed
    assert sum(x.count for x in r.loss_reasons) == r.overall.lost
    assert sum((g.won_amount for g in r.groups), Decimal(0)) == r.overall.won_amount


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants, by=bys)
def test_no_look_ahead(history: History, as_of: str, by: Any) -> None:
    calc = WinLoss(by=by)
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, window=windows, by=bys, seed=st.integers(0, 1000))
def test_merge_over_a_split_equals_the_whole(
    history: History, as_of: str, window: Any, by: Any, seed: int
) -> None:
    ids = list(history.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = random.Random(seed + 1).randrange(len(ids) + 1)
    calc = WinLoss(window=window, by=by)
    left = calc.compute(history.for_opportunities(ids[:cut]), as_of=as_of)
    right = calc.compute(history.for_opportunities(ids[cut:]), as_of=as_of)
    whole = calc.compute(history, as_of=as_of)
    assert left.merge(right) == whole
    assert left.merge(right).to_records() == whole.to_records()
