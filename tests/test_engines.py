"""The columnar engine (extra ``fast``) and the reference engine agree exactly.

Each case ingests the same input twice, once with ``PIPELINEKIT_ENGINE=columnar`` and once
with ``PIPELINEKIT_ENGINE=reference``, and
requires the same outcome: the same error (class, record index, field, message), or the
same History (events with their fields-sets, ingest report, ids, instants with their
offsets), the same snapshots at every cut-off (field by field, in order, offsets and
Decimal digits included) and the same result from every report and forecast.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("polars")

from _engines import reference_engine

from pipelinekit import History, PipelineError, StageScheme, demo, schemes
from pipelinekit.engine import COLUMNAR_FROM, ENGINE_VARIABLE, engine
from pipelinekit.engine.columnar import ColumnStore
from pipelinekit.engine.reference import RowStore
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts.distribution import MonteCarloForecast, OutcomeDistribution
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.money import FxRates
from pipelinekit.pipeline import DealView
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.lead_requirement import LeadRequirement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.stalled import StalledDeals
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.weak_areas import WeakAreas
from pipelinekit.reports.win_loss import WinLoss
from pipelinekit.testing import history_records, invalid_records, stage_schemes

SALESFORCE = schemes.get("salesforce")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ingest(records: Any, scheme: StageScheme, mode: str, *, reference: bool) -> Any:
    """The History, or the error as (class, index, field, message)."""
    with reference_engine(reference):
        try:
            return History.from_records(records, scheme=scheme, mode=mode)  # type: ignore[arg-type]
        except PipelineError as exc:
            return (
                type(exc),
                getattr(exc, "index", None),
                getattr(exc, "field", None),
                str(exc),
            )


def dump(value: Any) -> Any:
    """A form in which equal means equal to the last digit and offset (``==`` on
    Decimals and datetimes forgives ``1.0`` vs ``1.00`` and ``+01:00`` vs ``Z``)."""
    if hasattr(value, "model_dump_json"):
        return value.model_dump_json()
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, datetime | Decimal):
        return repr(value)
    return value


def cut_offs(history: History) -> list[datetime]:
    events = list(history)
    if not events:
        return []
    times = sorted({e.at for e in events})
    return [times[0], times[len(times) // 2], times[-1]]


def calculators(scheme: StageScheme) -> list[Any]:
    closed = [s.key for s in scheme.stages if not s.is_open]
    found = [
        PipelineByStage(),
        PipelineByStage(group_by="owner", include_closed=False),
        WeightedForecast(horizon=2),
        WeightedForecast(group_by="product", period="quarter"),
        HistoricalForecast(horizon=2),
        MarkovForecast(horizon=2),
        OutcomeDistribution(horizon=2),
        MonteCarloForecast(trials=50, seed=1, horizon=2),
        FunnelConversion(),
        Velocity(include_open_stays=True),
        WinLoss(by="owner"),
        StalledDeals(max_days_in_stage=30, idle_days=14),
        WeakAreas(),
        LeadRequirement(target=100_000),
    ]
    if closed:
        found.append(PipelineByStage(stages=tuple(closed)))
    return found


def assert_same(records: Any, scheme: StageScheme, mode: str = "strict") -> Any:
    """Ingest with both engines and require the same outcome; return the automatic one."""
    fast = ingest(records, scheme, mode, reference=False)
    slow = ingest(records, scheme, mode, reference=True)
    if not isinstance(fast, History) or not isinstance(slow, History):
        assert fast == slow
        return fast
    assert isinstance(slow._store, RowStore)
    assert list(fast) == list(slow)
    assert [e.model_fields_set for e in fast] == [e.model_fields_set for e in slow]
    assert dump(list(fast)) == dump(list(slow))
    assert fast.ingest.to_records() == slow.ingest.to_records()
    assert (fast.ingest.total, fast.ingest.applied) == (slow.ingest.total, slow.ingest.applied)
    assert fast.opportunity_ids == slow.opportunity_ids
    assert (len(fast), repr(fast.start), repr(fast.end)) == (
        len(slow),
        repr(slow.start),
        repr(slow.end),
    )
    assert repr(fast) == repr(slow)
    for t in cut_offs(slow):
        a, b = fast.as_of(t), slow.as_of(t)
        assert list(a) == list(b)
        for key in list(b)[::2]:  # one by one (built alone), then all at once
            assert dump(a[key]) == dump(b[key])
        assert dump(dict(a.items())) == dump(dict(b.items()))
        views = list(a.deals())
        if isinstance(fast._store, ColumnStore):  # the fast paths' views of the snapshot
            assert all(isinstance(v, DealView) for v in views)
            assert [dump(list(v)) for v in views] == [
                dump([getattr(o, f) for f in DealView._fields]) for o in b.values()
            ]
        assert list(fast.until(t)) == list(slow.until(t))
    return fast


def assert_same_results(fast: History, slow: History, scheme: StageScheme) -> None:
    for t in cut_offs(slow):
        for calculator in calculators(scheme):
            outcomes = []
            for history in (fast, slow):
                try:
                    outcomes.append(dump(calculator.compute(history, as_of=t)))
                except PipelineError as exc:
                    outcomes.append((type(exc), str(exc)))
            assert outcomes[0] == outcomes[1], calculator


# -- valid histories ---------------------------------------------------------------------


@SETTINGS
@given(history_records(SALESFORCE, max_opportunities=6, max_events=8))
def test_both_engines_build_the_same_history(records: list[dict[str, Any]]) -> None:
    assert_same(records, SALESFORCE)
    assert_same(records, SALESFORCE, "lenient")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_report_and_forecast_agrees(data: st.DataObject) -> None:
    scheme = data.draw(st.sampled_from([SALESFORCE, schemes.get("seed-001")]))
    records = data.draw(history_records(scheme, max_opportunities=6, max_events=8))
    fast = ingest(records, scheme, "strict", reference=False)
    slow = ingest(records, scheme, "strict", reference=True)
    assert isinstance(fast, History) and isinstance(slow, History)
    assert_same_results(fast, slow, scheme)


@SETTINGS
@given(st.data())
def test_any_scheme_any_history(data: st.DataObject) -> None:
    scheme = data.draw(stage_schemes())
    records = data.draw(history_records(scheme, max_opportunities=4, max_events=6, duplicates=0.2))
    assert_same(records, scheme)


def test_the_columnar_engine_is_used_for_the_usual_records() -> None:
    """Without this the differential tests could pass by never leaving the reference."""
    records = demo.demo_records(opportunities=200, seed=5)
    fast = assert_same(records, SALESFORCE)
    assert isinstance(fast._store, ColumnStore)
    slow = ingest(records, SALESFORCE, "strict", reference=True)
    assert_same_results(fast, slow, SALESFORCE)
    # prefixes, subsets and partitions stay columnar and agree
    t = cut_offs(slow)[1]
    assert isinstance(fast.until(t)._store, ColumnStore)
    assert dump(fast.for_opportunities(fast.opportunity_ids[::3]).events) == dump(
        slow.for_opportunities(slow.opportunity_ids[::3]).events
    )
    assert [p.events for p in fast.partition(3)] == [p.events for p in slow.partition(3)]
    assert [p.opportunity_ids for p in fast.partition(3)] == [
        p.opportunity_ids for p in slow.partition(3)
    ]


# -- invalid input -------------------------------------------------------------------------


@SETTINGS
@given(invalid_records(SALESFORCE))
def test_invalid_records_give_the_same_errors(case: Any) -> None:
    outcome = assert_same(list(case.records), SALESFORCE)
    assert not isinstance(outcome, History)
    assert outcome[0] is case.error and outcome[1] == case.index
    assert_same(list(case.records), SALESFORCE, "lenient")


ODD_VALUES = [
    None, math.nan, True, 0, 1, 12.0, 12.5, -1, 1e16, "", " ", "12.0", "12", "0.00",
    "00.5", "1E+3", "1e3", "-0", "100", "100.00", "100.5", "0.12345", "1000000000000000",
    "999999999999999.9999", Decimal("12.50"), Decimal("1E+3"), "EUR", "eur", "2024-01-05",
    "2024-02-30", "0000-01-01", "2024-01-05T10:00:00", "2024-01-05T10:00:00Z",
    "2024-01-05T10:00:00+01:00", "2024-01-05T10:00:00-00:00", "2024-01-05T10:00:00z",
    "2024-01-05 10:00:00+00:00", "2024-01-05T10:00:00.5+00:00", "2024-01-05T24:00:00Z",
    "2024-01-05T23:59:60Z", "2024-01-05T10:00:00+24:00", "2024-01-05T10:00:00+23:59",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-23:59", "prospecting", "closed-won",
    "closed-lost", "x" * 257, "true", "NaN", "o-1", "o-2", "opened", "stage_changed",
    datetime(2024, 1, 5, 10), "Zoë",
]  # fmt: skip
FIELDS = [
    "type", "opportunity_id", "at", "stage", "amount", "currency", "owner", "account",
    "product", "source", "expected_close", "probability", "name", "reason", "kind", "note",
    "due", "event_id", "actor", "unknown",
]  # fmt: skip


@st.composite
def altered(draw: st.DrawFn) -> list[Any]:
    """A legal history with a few fields set to odd values (valid or not)."""
    records = [dict(r) for r in draw(history_records(SALESFORCE, max_opportunities=4))]
    for _ in range(draw(st.integers(1, 3))):
        if not records:
            break
        record = draw(st.sampled_from(records))
        record[draw(st.sampled_from(FIELDS))] = draw(st.sampled_from(ODD_VALUES))
    return records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(altered(), st.sampled_from(["strict", "lenient"]))
def test_odd_values_get_the_same_outcome(records: list[Any], mode: str) -> None:
    assert_same(records, SALESFORCE, mode)


# -- the switch ------------------------------------------------------------------------------


def test_the_switch_chooses_and_refuses() -> None:
    with reference_engine(True):
        assert engine() == "reference"
    with reference_engine(False):
        assert engine(1) == "columnar"
    os.environ[ENGINE_VARIABLE] = "auto"
    try:
        assert engine(COLUMNAR_FROM - 1) == "reference"
        assert engine(COLUMNAR_FROM) == engine() == "columnar"
    finally:
        del os.environ[ENGINE_VARIABLE]
    os.environ[ENGINE_VARIABLE] = "turbo"
    try:
        with pytest.raises(ArgumentError, match=ENGINE_VARIABLE):
            engine()
    finally:
        del os.environ[ENGINE_VARIABLE]


def test_the_core_works_without_polars() -> None:
    """With polars not importable, ingestion and calculators use the reference engine."""
    code = (
        "import sys; sys.modules['polars'] = None\n"
        "import pipelinekit as pk\n"
        "from pipelinekit.engine import engine\n"
        "from pipelinekit.reports.pipeline_by_stage import PipelineByStage\n"
        "h = pk.demo.demo_history(opportunities=30, seed=1)\n"
        "assert engine() == 'reference', engine()\n"
        "assert type(h._store).__name__ == 'RowStore'\n"
        "r = PipelineByStage().compute(h, as_of='2024-09-30T00:00:00Z')\n"
        "assert 'polars' not in {m for m in sys.modules if sys.modules[m] is not None}\n"
        "print(r.total('open').count)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with reference_engine(True):
        h = demo.demo_history(opportunities=30, seed=1)
        expected = PipelineByStage().compute(h, as_of="2024-09-30T00:00:00Z")
    assert done.stdout.strip() == str(expected.total("open").count)


# -- DataFrames and Arrow tables -----------------------------------------------------------

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")


def frame_outcome(make: Any, kind: str, mode: str, *, reference: bool) -> Any:
    builder = {
        "pandas": History.from_pandas,
        "polars": History.from_polars,
        "arrow": History.from_arrow,
    }[kind]
    with reference_engine(reference):
        try:
            return builder(make(), scheme=SALESFORCE, mode=mode)  # type: ignore[operator]
        except PipelineError as exc:
            return (type(exc), getattr(exc, "index", None), getattr(exc, "field", None), str(exc))


def assert_same_frames(make: Any, kind: str, mode: str = "strict") -> Any:
    fast = frame_outcome(make, kind, mode, reference=False)
    slow = frame_outcome(make, kind, mode, reference=True)
    if not isinstance(fast, History) or not isinstance(slow, History):
        assert fast == slow
        return fast
    assert dump(list(fast)) == dump(list(slow))
    assert [e.model_fields_set for e in fast] == [e.model_fields_set for e in slow]
    assert fast.ingest.to_records() == slow.ingest.to_records()
    assert fast.opportunity_ids == slow.opportunity_ids
    for t in cut_offs(slow):
        assert dump(dict(fast.as_of(t).items())) == dump(dict(slow.as_of(t).items()))
    return fast


@st.composite
def typed_frames(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Legal records and how to type their columns in a frame."""
    records = draw(history_records(SALESFORCE, max_opportunities=5, max_events=6))
    types = {
        "at": draw(st.sampled_from(["string", "datetime"])),
        "amount": draw(st.sampled_from(["string", "float", "int"])),
        "expected_close": draw(st.sampled_from(["string", "date"])),
        "owner": draw(st.sampled_from(["string", "category"])),
    }
    return records, types


def pandas_frame(records: list[dict[str, Any]], types: dict[str, str]) -> Any:
    frame = pd.DataFrame(records)
    if "at" in frame and types["at"] == "datetime":
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    if "amount" in frame and types["amount"] == "float":
        frame["amount"] = pd.to_numeric(frame["amount"])
    if "amount" in frame and types["amount"] == "int":
        frame["amount"] = pd.to_numeric(frame["amount"]).round().astype("Int64")
    if "expected_close" in frame and types["expected_close"] == "date":
        frame["expected_close"] = pd.to_datetime(frame["expected_close"]).dt.date
    if "owner" in frame and types["owner"] == "category":
        frame["owner"] = frame["owner"].astype("category")
    return frame


@SETTINGS
@given(typed_frames(), st.sampled_from(["pandas", "polars", "arrow"]))
def test_frames_give_the_same_history_either_way(
    case: tuple[list[dict[str, Any]], dict[str, str]], kind: str
) -> None:
    records, types = case
    if not records:
        return

    def make() -> Any:
        frame = pandas_frame(records, types)
        if kind == "polars":
            return pl.from_pandas(frame)
        if kind == "arrow":
            return pl.from_pandas(frame).to_arrow()
        return frame

    fast = assert_same_frames(make, kind)
    assert isinstance(fast, History)
    # the frame holds the records' values: the same events as from the records
    typed = {k for k, v in types.items() if v != "string"}
    if not typed & {"amount"}:
        assert dump(list(fast)) == dump(list(History.from_records(records, scheme=SALESFORCE)))


def test_a_typed_frame_is_read_as_columns() -> None:
    records = demo.demo_records(opportunities=100, seed=3)
    frame = pandas_frame(
        records,
        {"at": "datetime", "amount": "float", "expected_close": "date", "owner": "category"},
    )
    fast = assert_same_frames(lambda: frame, "pandas")
    assert isinstance(fast._store, ColumnStore)
    slow = frame_outcome(lambda: frame, "pandas", "strict", reference=True)
    assert_same_results(fast, slow, SALESFORCE)


FRAME_ODDITIES = [
    ("amount", [1.0e16]), ("amount", [-5.0]), ("amount", [math.nan]), ("amount", [0.1 + 0.2]),
    ("at", [None]), ("at", ["2024-01-05T10:00:00"]), ("stage", [None]), ("stage", [7]),
    ("owner", [12]), ("owner", [1.5]), ("owner", [True]), ("probability", [150]),
    ("expected_close", ["2024-02-30"]), ("currency", ["eur"]), ("reason", [None]),
    ("due", [None]), ("unknown", ["x"]), ("unknown", [None]),
]  # fmt: skip


@pytest.mark.parametrize(("column", "values"), FRAME_ODDITIES)
@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_odd_frame_columns_get_the_same_outcome(column: str, values: list[Any], mode: str) -> None:
    records = demo.demo_records(opportunities=5, seed=2)

    def make() -> Any:
        frame = pd.DataFrame(records)
        frame[column] = values * len(frame)
        return frame

    assert_same_frames(make, "pandas", mode)


def test_frames_refuse_what_is_not_a_frame() -> None:
    with pytest.raises(ArgumentError, match="frame"):
        History.from_pandas([{"type": "opened"}], scheme=SALESFORCE)
    with pytest.raises(ArgumentError, match="frame"):
        History.from_polars(pd.DataFrame(), scheme=SALESFORCE)


# -- exact sums on columns -------------------------------------------------------------------

AMOUNTS = st.one_of(
    st.sampled_from(["0", "0.0", "0.0000", "1", "10", "100.00", "12.5", "12.50", "0.0001"]),
    st.builds(
        lambda whole, decimals, digits: whole + ("." + digits[:decimals] if decimals else ""),
        st.sampled_from(["0", "7", "99", "1000", "123456", "999999999999999"]),
        st.integers(0, 4),
        st.text("0123456789", min_size=4, max_size=4),
    ),
)
PERCENTS = st.one_of(
    st.none(),
    st.sampled_from(["0", "0.00", "100", "100.0000", "50", "12.5", "33.3333", "0.0001", "99.99"]),
)


@st.composite
def priced_histories(draw: st.DrawFn, scheme: StageScheme) -> list[dict[str, Any]]:
    """Legal records whose amounts and probability overrides take every decimal shape
    the columnar engine reads (up to four decimals, trailing zeros, fifteen digits), in
    one or two currencies."""
    records = [dict(r) for r in draw(history_records(scheme, max_opportunities=6))]
    currency = {}
    for record in records:
        if record.get("amount") is not None:
            record["amount"] = draw(AMOUNTS)
            oid = record["opportunity_id"]
            if oid not in currency or draw(st.integers(0, 9)) == 0:
                currency[oid] = draw(st.sampled_from(["EUR", "EUR", "USD"]))
            record["currency"] = currency[oid]
        if "probability" in record:
            record["probability"] = draw(PERCENTS)
    return records


WEIGHTED_SCHEME = StageScheme.model_validate(
    {
        "name": "decimal weights",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "12.5"},
            {"key": "offer", "label": "Offer", "weight": "33.3333"},
            {"key": "deal", "label": "Deal", "weight": "1E+1"},
            {"key": "won", "label": "Won", "weight": "100.0", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0.00", "outcome": "lost"},
        ],
    }
)
FINE_SCHEME = WEIGHTED_SCHEME.model_copy(
    update={
        "name": "fine weights",
        "stages": tuple(
            s.model_copy(update={"weight": Decimal("33.33333")}) if s.key == "offer" else s
            for s in WEIGHTED_SCHEME.stages
        ),
    }
)
TO_EUR = FxRates.static("EUR", {"USD": "0.9"})


def money_calculators(scheme: StageScheme) -> list[Any]:
    open_keys = [s.key for s in scheme.open_stages]
    return [
        PipelineByStage(),
        PipelineByStage(group_by="owner"),
        PipelineByStage(group_by="account", include_closed=False),
        PipelineByStage(currency="EUR"),
        PipelineByStage(currency="EUR", rates=TO_EUR),
        PipelineByStage(currency="USD", rates=TO_EUR, stages=tuple(open_keys[:2])),
        WeightedForecast(),
        WeightedForecast(group_by="owner", horizon=2),
        WeightedForecast(currency="EUR", rates=TO_EUR, period="quarter"),
        WeightedForecast(group_by="category", categories={open_keys[0]: "commit"}),
        WeightedForecast(tz=ZoneInfo("Pacific/Kiritimati"), period="week", horizon=4),
        WeightedForecast(tz=ZoneInfo("America/Adak"), period="month", horizon=1),
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sums_over_columns_are_the_exact_sums(data: st.DataObject) -> None:
    """The pipeline report and the weighted forecast summed on columns give the reference's
    Decimals (exponents included), its currency errors and conversions."""
    scheme = data.draw(
        st.sampled_from([SALESFORCE, WEIGHTED_SCHEME, FINE_SCHEME, schemes.get("seed-001")])
    )
    records = data.draw(priced_histories(scheme))
    fast = ingest(records, scheme, "strict", reference=False)
    slow = ingest(records, scheme, "strict", reference=True)
    assert isinstance(fast, History) and isinstance(slow, History)
    for t in cut_offs(slow):
        for calculator in money_calculators(scheme):
            outcomes = []
            for history in (fast, slow):
                try:
                    outcomes.append(dump(calculator.compute(history, as_of=t)))
                except PipelineError as exc:
                    outcomes.append((type(exc), str(exc)))
            assert outcomes[0] == outcomes[1], calculator


def test_the_columns_are_summed_when_they_can_be() -> None:
    """Without this the test above could pass by never summing on columns."""
    records = demo.demo_records(opportunities=60, seed=4)
    with reference_engine(False):
        history = History.from_records(records, scheme=SALESFORCE)
    t = cut_offs(history)[1]
    table = history.as_of(t).table()
    assert table is not None
    sums = table.stage_sums(SALESFORCE.keys, None)
    assert sums is not None and sum(s.deals for s in sums) == len(history.as_of(t))
    with reference_engine(False):
        fine = History.from_records(
            [r | {"stage": "offer"} if r.get("stage") else r for r in records[:1]],
            scheme=FINE_SCHEME,
        )
    assert fine.as_of(fine.end).table().stage_sums(("offer",), None) is None  # type: ignore[arg-type, union-attr]


def test_one_opportunity_is_built_alone() -> None:
    """Touching one value of a columnar snapshot builds that opportunity only; iterating
    them, or asking for many one by one, builds them all (once)."""
    records = demo.demo_records(opportunities=400, seed=6)
    with reference_engine(False):
        history = History.from_records(records, scheme=SALESFORCE)
    slow = ingest(records, SALESFORCE, "strict", reference=True)
    t = cut_offs(slow)[1]
    pipe, expected = history.as_of(t), slow.as_of(t)
    states = pipe._opps
    key = list(expected)[7]
    assert dump(pipe[key]) == dump(expected[key])
    assert list(states._built) == [key]  # type: ignore[attr-defined]
    with pytest.raises(KeyError, match="no opportunity 'nope'"):
        pipe["nope"]
    for k in list(expected)[:100]:
        assert dump(pipe[k]) == dump(expected[k])
    assert len(states._built) == len(expected)  # type: ignore[attr-defined]
    assert dump(dict(pipe.items())) == dump(dict(expected.items()))
