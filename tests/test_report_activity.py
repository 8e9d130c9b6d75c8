"""ActivityReport: hand-computed counts per owner, properties and bad arguments."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, demo
from pipelinekit.errors import ArgumentError
from pipelinekit.events import ActivityLogged
from pipelinekit.reports.activity import ActivityReport

SIMPLE = StageScheme.model_validate(
    {
        "name": "simple",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
WINDOW = ("2024-03-01T00:00:00+00:00", "2024-04-01T00:00:00+00:00")
AS_OF = "2024-03-10T00:00:00+00:00"


def ev(type_: str, oid: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "opportunity_id": oid, "at": f"{at}T00:00:00Z", **fields}


RECORDS = [
    ev("opened", "a", "2024-02-20", stage="lead", owner="ann"),
    ev("activity_logged", "a", "2024-02-25", kind="call"),  # before the window
    ev("activity_logged", "a", "2024-03-02", kind="call"),  # ann's
    ev("owner_changed", "a", "2024-03-03", owner="bob"),
    ev("activity_logged", "a", "2024-03-04", kind="meeting"),  # bob's
    ev("next_action_scheduled", "a", "2024-03-04", due="2024-03-05"),  # due in window, overdue
    ev("opened", "b", "2024-03-01", stage="lead", owner="ann"),
    ev("activity_logged", "b", "2024-03-05", kind="email"),
    ev("next_action_scheduled", "b", "2024-03-05", due="2024-03-20"),  # due in window
    ev("opened", "c", "2024-01-01", stage="lead", owner="bob"),  # no next action
    ev("activity_logged", "c", "2024-03-15", kind="call"),  # after as_of
    ev("opened", "d", "2024-01-01", stage="lead", owner="carl"),
    ev("stage_changed", "d", "2024-03-02", stage="won"),
    ev("activity_logged", "d", "2024-03-03", kind="call"),  # on a closed deal: still counts
    ev("opened", "e", "2024-01-01", stage="lead"),  # no owner
    ev("next_action_scheduled", "e", "2024-01-01", due="2024-04-05"),
]


def history() -> History:
    return History.from_records(RECORDS, scheme=SIMPLE)


def test_counts_per_owner_by_hand() -> None:
    r = ActivityReport(window=WINDOW).compute(history(), as_of=AS_OF)
    got = [(g.group, g.kinds, g.open_deals, g.due_in_window, g.overdue, g.missing) for g in r.rows]
    assert got == [
        ("ann", (("call", 1), ("email", 1)), 1, 1, 0, 0),
        ("bob", (("meeting", 1),), 2, 1, 1, 1),
        ("carl", (("call", 1),), 0, 0, 0, 0),
        (None, (), 1, 0, 0, 0),
    ]
    total = r.total
    assert (total.activities, total.open_deals, total.due_in_window) == (4, 4, 2)
    assert (total.overdue, total.missing) == (1, 1)
    assert r.row("nobody").activities == 0


def test_records_have_one_column_per_kind_and_a_total_row() -> None:
    records = ActivityReport(window=WINDOW).compute(history(), as_of=AS_OF).to_records()
    assert records[0] == {
        "level": "group",
        "owner": "ann",
        "activities": 2,
        "activities_call": 1,
        "activities_email": 1,
        "activities_meeting": 0,
        "open_deals": 1,
        "due_in_window": 1,
        "overdue": 0,
        "missing": 0,
    }
    assert records[-1]["level"] == "total"
    assert records[-1]["activities_call"] == 2


def test_a_due_date_is_the_start_of_its_day_in_the_window_zone() -> None:
    late_start = ("2024-03-05T12:00:00+00:00", "2024-04-01T00:00:00+00:00")
    r = ActivityReport(window=late_start).compute(history(), as_of=AS_OF)
    assert r.row("bob").due_in_window == 0  # due 2024-03-05 starts before 12:00
    assert r.row("ann").due_in_window == 1


def test_other_groupings_use_the_opened_value() -> None:
    records = [
        ev("opened", "p", "2024-03-01", stage="lead", product="hw", owner="ann"),
        ev("activity_logged", "p", "2024-03-02", kind="call"),
    ]
    h = History.from_records(records, scheme=SIMPLE)
    r = ActivityReport(window=WINDOW, by="product").compute(h, as_of=AS_OF)
    assert [(g.group, g.activities, g.missing) for g in r.rows] == [("hw", 1, 1)]
    assert "product" in r.to_records()[0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"window": None}, "window"),
        ({"window": (WINDOW[1], WINDOW[0])}, "window"),
        ({"window": ("2024-03-01", "2024-04-01")}, "window"),
        ({"window": WINDOW, "by": "stage"}, "by"),
        ({"window": WINDOW, "by": None}, "by"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        ActivityReport(**kwargs)
    assert err.value.argument == argument


def test_bad_as_of_and_merge_of_other_settings_are_refused() -> None:
    calc = ActivityReport(window=WINDOW)
    with pytest.raises(ArgumentError) as err:
        calc.compute(history(), as_of="2024-03-10")
    assert err.value.argument == "as_of"
    r = calc.compute(history(), as_of=AS_OF)
    with pytest.raises(ArgumentError) as err:
        r.merge(calc.compute(history(), as_of="2024-03-11T00:00:00Z"))
    assert err.value.argument == "other"


histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
instants = st.sampled_from(["2024-05-01T00:00:00+00:00", "2024-09-30T00:00:00+00:00"])
windows = st.sampled_from(
    [
        ("2024-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
        ("2024-04-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00"),
    ]
)


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants, window=windows)
def test_counts_reconcile_with_the_history(history: History, as_of: str, window: Any) -> None:
    calc = ActivityReport(window=window)
    r = calc.compute(history, as_of=as_of)
    pipe = history.as_of(as_of)
    start, end = calc.window
    logged = [
        e
        for e in history.until(as_of).events
        if isinstance(e, ActivityLogged) and start <= e.at < end
    ]
    assert r.total.activities == len(logged)
    assert r.total.open_deals == len(pipe.open())
    missing = sum(1 for o in pipe.open().values() if o.next_action is None)
    assert r.total.missing == missing


@settings(max_examples=25, deadline=None)
@given(history=histories, as_of=instants, window=windows)
def test_no_look_ahead(history: History, as_of: str, window: Any) -> None:
    calc = ActivityReport(window=window)
    assert calc.compute(history, as_of=as_of) == calc.compute(history.until(as_of), as_of=as_of)


@settings(max_examples=30, deadline=None)
@given(history=histories, as_of=instants, window=windows, seed=st.integers(0, 1000))
def test_merge_over_a_split_equals_the_whole(
    history: History, as_of: str, window: Any, seed: int
) -> None:
    ids = list(history.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = random.Random(seed + 1).randrange(len(ids) + 1)
    calc = ActivityReport(window=window, by="owner")
    left = calc.compute(history.for_opportunities(ids[:cut]), as_of=as_of)
    right = calc.compute(history.for_opportunities(ids[cut:]), as_of=as_of)
    assert left.merge(right) == calc.compute(history, as_of=as_of)
