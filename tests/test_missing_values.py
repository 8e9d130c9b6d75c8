"""The pandas route: records from a DataFrame, with missing values and numpy/pandas scalars.

NaN, NaT, pd.NA and None all mean "missing" (``pipelinekit.records``); numpy and pandas
scalars are read as their Python counterparts. The first three tests are the traps a new
user met loading a Salesforce export through pandas.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import History, RecordError, event_from_record, schemes
from pipelinekit.records import is_missing, plain_record, plain_records, plain_value

SALESFORCE = schemes.get("salesforce")
T0 = "2024-01-05T10:00:00+00:00"


def opened(oid: str, **fields: Any) -> dict[str, Any]:
    return {"type": "opened", "opportunity_id": oid, "at": T0, "stage": "prospecting", **fields}


# -- the three traps ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_trap_nat_expected_close_is_no_close_date(mode: str) -> None:
    frame = pd.DataFrame(
        [opened("a", expected_close=pd.NaT), opened("b", expected_close=pd.Timestamp("2024-03-01"))]
    )
    history = History.from_records(frame.to_dict("records"), scheme=SALESFORCE, mode=mode)
    assert history.ingest.applied == 2
    pipe = history.as_of("2024-02-01T00:00:00Z")
    assert pipe["a"].expected_close is None
    assert pipe["b"].expected_close == date(2024, 3, 1)


def test_trap_nan_amount_is_no_amount_and_the_deal_survives() -> None:
    rows = [
        opened("a", amount=454160, owner="ann", name="x"),
        opened("b", amount=math.nan, owner=math.nan, name=math.nan),
        {
            "type": "stage_changed",
            "opportunity_id": "b",
            "at": "2024-01-06T10:00:00+00:00",
            "stage": "closed-won",
        },
    ]
    frame = pd.DataFrame(rows)  # one frame for both types: 'amount' etc. are NaN on the change
    history = History.from_records(frame.to_dict("records"), scheme=SALESFORCE, mode="lenient")
    assert (history.ingest.applied, history.ingest.rejected) == (3, ())
    b = history.as_of("2024-02-01T00:00:00Z")["b"]
    assert (b.amount, b.owner, b.name, b.stage) == (None, None, None, "closed-won")


def test_trap_numpy_int_amount_is_an_amount() -> None:
    history = History.from_records([opened("a", amount=np.int64(454160))], scheme=SALESFORCE)
    assert history.as_of(T0)["a"].amount == Decimal(454160)


# -- scalars and missing markers one by one ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int64(7), 7),
        (np.int32(-3), -3),
        (np.uint8(200), 200),
        (np.float64(1.5), 1.5),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        (np.str_("ann"), "ann"),
        (pd.Timestamp("2024-03-01 10:00"), datetime(2024, 3, 1, 10)),
        (pd.Timestamp("2024-03-01 10:00", tz="UTC"), datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (np.datetime64("2024-03-01"), datetime(2024, 3, 1)),
        (np.datetime64("2024-03-01T10:00:00.123456789"), datetime(2024, 3, 1, 10, 0, 0, 123456)),
        ("nan", "nan"),
        ("", ""),
        (Decimal("1.5"), Decimal("1.5")),
    ],
)
def test_plain_value_is_the_python_counterpart(value: object, expected: object) -> None:
    got = plain_value(value)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    "value",
    [None, math.nan, np.nan, np.float32("nan"), pd.NaT, pd.NA, np.datetime64("NaT")],
)
def test_every_missing_marker_is_missing(value: object) -> None:
    assert is_missing(value)
    assert plain_value(value) is None


@pytest.mark.parametrize(
    "value", [0, 0.0, "", "nan", "NaT", Decimal("NaN"), False, np.int64(0), pd.Timestamp(0)]
)
def test_values_that_are_not_missing(value: object) -> None:
    assert not is_missing(value)


def test_plain_records_returns_the_input_when_nothing_needs_converting() -> None:
    recs = [opened("a", amount="1", probability=None)]
    assert plain_records(recs) is recs


def test_plain_record_drops_missing_keys_outside_the_type_only() -> None:
    got = plain_record({"due": pd.NaT, "note": math.nan, "x": pd.NA}, fields={"due", "note"})
    assert got == {"due": None, "note": None}


@pytest.mark.parametrize(
    "value",
    [np.int64(12), np.float64(12.0), Decimal(12), 12, "12"],
)
def test_numpy_and_python_numbers_give_the_same_amount(value: object) -> None:
    history = History.from_records([opened("a", amount=value)], scheme=SALESFORCE)
    assert history.as_of(T0)["a"].amount == 12


@pytest.mark.parametrize(
    "at",
    [
        pd.Timestamp("2024-01-05 10:00"),
        np.datetime64("2024-01-05T10:00"),
        datetime(2024, 1, 5, 10),
        "2024-01-05T10:00:00",
    ],
)
def test_naive_timestamps_of_any_kind_take_assume_tz(at: object) -> None:
    history = History.from_records([opened("a") | {"at": at}], scheme=SALESFORCE, assume_tz=UTC)
    event = history.events[0]
    assert event.at == datetime(2024, 1, 5, 10, tzinfo=UTC)
    assert type(event.at) is datetime  # not a pandas Timestamp kept inside the event


def test_missing_clears_where_null_clears() -> None:
    recs = [
        opened("a", probability=35, expected_close="2024-03-01"),
        {"type": "probability_set", "opportunity_id": "a", "at": "2024-01-06T10:00:00Z",
         "probability": math.nan},
        {"type": "close_date_changed", "opportunity_id": "a", "at": "2024-01-07T10:00:00Z",
         "expected_close": pd.NaT},
    ]  # fmt: skip
    a = History.from_records(recs, scheme=SALESFORCE).as_of("2024-02-01T00:00:00Z")["a"]
    assert (a.probability, a.expected_close) == (Decimal(10), None)


# -- bad input: located errors, every record accounted for ---------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("stage", math.nan), ("stage", None), ("opportunity_id", pd.NA), ("at", pd.NaT)],
)
def test_a_missing_required_field_is_a_located_error(field: str, value: object) -> None:
    recs = [opened("a"), opened("b") | {field: value}]
    with pytest.raises(RecordError) as info:
        History.from_records(recs, scheme=SALESFORCE)
    assert (info.value.index, info.value.field) == (1, field)
    assert "missing value" in info.value.reason
    lenient = History.from_records(recs, scheme=SALESFORCE, mode="lenient")
    assert [(r.index, r.field) for r in lenient.ingest.rejected] == [(1, field)]
    assert lenient.ingest.accounted


def test_a_missing_value_in_a_field_of_another_type_is_ignored_but_a_value_is_not() -> None:
    ok = opened("a", reason=math.nan, due=pd.NaT, kind=None)
    assert History.from_records([ok], scheme=SALESFORCE).ingest.applied == 1
    assert event_from_record(ok).model_fields_set == {"type", "opportunity_id", "at", "stage"}
    with pytest.raises(RecordError) as info:
        History.from_records([opened("a", reason="why")], scheme=SALESFORCE)
    assert (info.value.field, info.value.reason) == (
        "reason",
        "unknown field for this record type (got 'why')",
    )


def test_event_from_record_follows_the_same_rule() -> None:
    event = event_from_record(opened("a", amount=np.int64(5), expected_close=pd.NaT))
    assert (event.amount, event.expected_close) == (Decimal(5), None)
    with pytest.raises(RecordError, match="missing value") as info:
        event_from_record(opened("a", stage=math.nan), index=4)
    assert (info.value.index, info.value.field) == (4, "stage")


@pytest.mark.parametrize("tag", [[], {}, None, math.nan, 3])
def test_an_odd_type_tag_is_a_record_error_in_both_ways_in(tag: object) -> None:
    record = opened("a") | {"type": tag}
    with pytest.raises(RecordError) as single:
        event_from_record(record, index=0)
    with pytest.raises(RecordError) as bulk:
        History.from_records([record], scheme=SALESFORCE)
    assert single.value.field == bulk.value.field == "type"


def test_the_rejected_record_is_the_one_given() -> None:
    bad = opened("a", stage=np.float64("nan"), amount=np.int64(3))
    history = History.from_records([bad], scheme=SALESFORCE, mode="lenient")
    assert history.ingest.rejected[0].record is bad


def test_a_value_pydantic_cannot_read_is_a_located_error_not_a_type_error() -> None:
    class Odd(datetime):
        """A datetime whose fields are not numbers (as pandas' NaT was)."""

        @property
        def year(self) -> Any:  # type: ignore[override]
            return math.nan

    odd = Odd(2024, 1, 1)
    recs = [opened("a"), opened("b", expected_close=odd)]
    with pytest.raises(RecordError, match="cannot be read") as info:
        History.from_records(recs, scheme=SALESFORCE)
    assert (info.value.index, info.value.field) == (1, "expected_close")
    lenient = History.from_records(recs, scheme=SALESFORCE, mode="lenient")
    assert lenient.ingest.accounted


# -- properties over DataFrames with missing values ---------------------------------------

OPTIONAL = ("amount", "owner", "account", "name", "expected_close", "probability")
MISSING = st.sampled_from([None, math.nan, pd.NA, pd.NaT, np.nan])


@st.composite
def deal_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Opened and stage-changed rows of a few deals, with Python values (None = missing)."""
    rows: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 5))):
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 500)))
        row: dict[str, Any] = opened(f"o-{n}") | {"at": start}
        row["amount"] = draw(st.none() | st.integers(0, 10**9))
        row["owner"] = draw(st.none() | st.sampled_from(["ann", "bob"]))
        row["account"] = draw(st.none() | st.sampled_from(["acme", "globex"]))
        row["name"] = draw(st.none() | st.text("abc ", min_size=1, max_size=5))
        row["expected_close"] = draw(st.none() | st.dates(date(2024, 1, 1), date(2025, 1, 1)))
        row["probability"] = draw(st.none() | st.integers(0, 100))
        rows.append(row)
        if draw(st.booleans()):
            stage = draw(st.sampled_from(["qualification", "closed-won", "closed-lost"]))
            rows.append(
                {"type": "stage_changed", "opportunity_id": f"o-{n}",
                 "at": start + timedelta(days=1), "stage": stage}
            )  # fmt: skip
    return rows


def _frame(rows: list[dict[str, Any]], marker: object) -> pd.DataFrame:
    """The rows as a DataFrame, each missing value (and absent column) as ``marker``."""
    frame = pd.DataFrame(rows)
    for column in OPTIONAL:
        if column in frame:
            frame[column] = frame[column].astype(object)
            frame.loc[frame[column].isna(), column] = marker
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def _reference(rows: list[dict[str, Any]]) -> History:
    """The History of the same rows given as plain Python values (None where missing)."""
    return History.from_records(rows, scheme=SALESFORCE, mode="lenient")


@settings(max_examples=40, deadline=None)
@given(rows=deal_rows(), marker=MISSING, route=st.sampled_from(["records", "rows", "tuples"]))
def test_a_frame_with_missing_values_gives_the_history_of_its_python_rows(
    rows: list[dict[str, Any]], marker: object, route: str
) -> None:
    frame = _frame(rows, marker)
    if route == "records":
        recs = frame.to_dict("records")
    elif route == "rows":  # a row as a Series: numpy scalars and pandas Timestamps
        recs = [frame.iloc[i].to_dict() for i in range(len(frame))]
    else:
        recs = [row._asdict() for row in frame.itertuples(index=False)]
    history = History.from_records(recs, scheme=SALESFORCE, mode="lenient")
    assert history.ingest.accounted
    assert history.ingest.applied == len(rows)
    # (== on events compares values: a float column's 0.0 is the amount 0)
    assert history.events == _reference(rows).events


@settings(max_examples=40, deadline=None)
@given(rows=deal_rows(), marker=MISSING, data=st.data())
def test_a_missing_required_value_is_found_in_strict_and_set_aside_in_lenient(
    rows: list[dict[str, Any]], marker: object, data: st.DataObject
) -> None:
    bad = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from(["stage", "opportunity_id"]))
    frame = _frame(rows, marker).astype({field: object})
    frame.loc[bad, field] = marker
    recs = frame.to_dict("records")
    with pytest.raises(RecordError) as info:
        History.from_records(recs, scheme=SALESFORCE)
    assert (info.value.index, info.value.field) == (bad, field)
    lenient = History.from_records(recs, scheme=SALESFORCE, mode="lenient")
    assert lenient.ingest.accounted
    assert (lenient.ingest.rejected[0].index, lenient.ingest.rejected[0].field) == (bad, field)


def test_the_core_and_the_adapters_import_neither_numpy_nor_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pipelinekit as pk\n"
        "from pipelinekit.adapters import salesforce\n"
        "h = salesforce.to_history(opportunities=[{'Id': 'a', 'CreatedDate': '2024-01-05',\n"
        "    'StageName': 'Prospecting', 'Amount': float('nan')}])\n"
        "print(len(h), sorted(m for m in ('numpy', 'pandas', 'polars') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "1 []"
