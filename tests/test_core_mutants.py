"""Behaviour tests added from mutation testing of the core modules (docs/mutation-testing.md).

Each test pins a behaviour that surviving mutants showed no other test checked: the exact
text and attributes of the errors a person or an app reads, argument forwarding, pickling
across processes, and boundary values.
"""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

import pipelinekit as pk
from pipelinekit import (
    ArgumentError,
    CurrencyError,
    DuplicateEventError,
    FxRates,
    History,
    RecordError,
    ReportingCurrency,
    SchemeError,
    StageScheme,
    TransitionError,
    event_from_record,
)
from pipelinekit.calculators import compute_partitioned, partition_of
from pipelinekit.events import Opened, StageChanged
from pipelinekit.opportunity import apply
from pipelinekit.periods import fiscal_years, months, period_kind, quarters, weeks

TYPES = (
    "opened, stage_changed, amount_changed, close_date_changed, probability_set, "
    "owner_changed, activity_logged, next_action_scheduled"
)

STAGES: list[dict[str, Any]] = [
    {"key": "lead", "label": "Lead", "weight": "10", "description": "first touch"},
    {"key": "offer", "label": "Offer", "weight": "40", "labels": {"pl": "Oferta"}},
    {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
    {"key": "signed", "label": "Signed", "weight": "100", "outcome": "won"},
    {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
]
SCHEME = StageScheme.model_validate({"name": "t", "stages": STAGES})


def at(day: float) -> datetime:
    return datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(days=day)


def rec(type_: str, oid: str, day: float, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "opportunity_id": oid, "at": at(day).isoformat(), **fields}


def raises(exc: type[BaseException], fn: Any, *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    return info.value


# -- errors: messages, attributes and pickling --------------------------------------------


def test_scheme_error_message_lists_every_problem_and_names_the_scheme() -> None:
    err = SchemeError(["a", "b"], scheme="mine")
    assert str(err) == "stage scheme 'mine' is invalid:\n  - a\n  - b"
    assert str(SchemeError(["a"])) == "stage scheme is invalid:\n  - a"


def test_record_error_without_ids_names_only_the_record_and_field() -> None:
    assert str(RecordError("bad", index=2, field="x")) == "record 2, field 'x': bad"
    assert str(RecordError("bad")) == "record: bad"


@pytest.mark.parametrize(
    "err",
    [
        SchemeError(["no open stage"], scheme="s"),
        RecordError("bad", index=3, event_id="e", opportunity_id="o", field="amount"),
        RecordError("bad", opportunity_id="o").located(index=7),
        DuplicateEventError("dup", index=1, event_id="e"),
        TransitionError("no", rule="forward", from_stage="b", to_stage="a", index=4),
        ArgumentError("window", "ends before it starts"),
    ],
)
def test_errors_survive_pickling_with_their_message_and_attributes(err: Exception) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert vars(back) == vars(err)


def test_transition_error_blames_the_stage_field_by_default_and_keeps_its_location() -> None:
    err = TransitionError("no", rule="forward", index=4, event_id="e", opportunity_id="o")
    assert (err.field, err.index, err.event_id, err.opportunity_id) == ("stage", 4, "e", "o")
    assert str(err) == "record 4 (event_id 'e', opportunity 'o'), field 'stage': no"
    assert TransitionError("no", rule="r", field="type").field == "type"


def test_argument_error_keeps_argument_and_reason() -> None:
    err = ArgumentError("window", "ends before it starts")
    assert (err.argument, err.reason) == ("window", "ends before it starts")


# -- stages: how invalid schemes are reported -----------------------------------------------


def problems(data: Any, **kwargs: Any) -> tuple[str, ...]:
    err: SchemeError = raises(SchemeError, StageScheme.model_validate, data, **kwargs)
    return err.problems


def test_a_bad_stage_field_is_located_by_stage_key_and_position() -> None:
    bad = [*STAGES[:1], {**STAGES[1], "weight": "150"}, *STAGES[2:]]
    (problem,) = problems({"name": "t", "stages": bad})
    assert problem.startswith("stage 'offer' (stages[1]), field 'weight': ")
    err: SchemeError = raises(SchemeError, StageScheme, name="t", stages=bad)
    assert err.problems == (problem,)


def test_a_stage_that_is_not_a_mapping_is_located_by_position_only() -> None:
    (problem,) = problems({"name": "t", "stages": [5, *STAGES[1:]]})
    assert problem.startswith("stages[0]: ")


def test_a_stage_object_with_a_key_is_located_by_that_key() -> None:
    (problem,) = problems({"name": "t", "stages": [SimpleNamespace(key="odd"), *STAGES[1:]]})
    assert problem.startswith("stage 'odd' (stages[0]): ")


def test_a_bad_stage_in_json_is_located_by_position() -> None:
    import json

    bad = [*STAGES[:1], {**STAGES[1], "weight": "150"}, *STAGES[2:]]
    err: SchemeError = raises(
        SchemeError, StageScheme.model_validate_json, json.dumps({"name": "t", "stages": bad})
    )
    assert err.problems[0].startswith("stages[1], field 'weight': ")


def test_other_bad_fields_are_named_by_their_path() -> None:
    first, _ = problems({"name": "t", "stages": STAGES, "transitions": "graph", "edges": [[1]]})
    assert first == "field 'edges.0.0': Input should be a valid string"
    (problem,) = problems({"stages": STAGES})
    assert problem == "field 'name': Field required"


def test_a_scheme_that_is_not_a_mapping_is_reported_without_a_location() -> None:
    (problem,) = problems("nope")
    assert problem == "Input should be a valid dictionary or instance of StageScheme"


def test_a_scheme_error_names_the_scheme_only_when_the_name_is_text() -> None:
    err: SchemeError = raises(SchemeError, StageScheme.model_validate, {"name": 5, "stages": []})
    assert err.scheme is None
    err = raises(SchemeError, StageScheme.model_validate, {"name": "x", "stages": []})
    assert err.scheme == "x"


def test_model_validate_reads_attributes_when_asked() -> None:
    as_object = SimpleNamespace(
        name="t", stages=SCHEME.stages, transitions="forward", edges=(), reopen=False
    )
    assert StageScheme.model_validate(as_object, from_attributes=True).keys == SCHEME.keys
    with pytest.raises(SchemeError):
        StageScheme.model_validate(as_object)


def test_to_records_gives_one_row_per_stage_with_every_column() -> None:
    rows = SCHEME.to_records()
    assert rows[0] == {
        "key": "lead",
        "label": "Lead",
        "weight": Decimal("10"),
        "outcome": None,
        "description": "first touch",
    }
    assert rows[1]["label_pl"] == "Oferta"
    assert [r["outcome"] for r in rows] == [None, None, "won", "won", "lost"]


def test_scheme_html_shows_its_policy() -> None:
    assert "transitions=forward, reopen=False" in SCHEME._repr_html_()


def test_move_rule_names_reopen_for_leaving_a_closed_stage() -> None:
    assert SCHEME.move_rule("won", "lead") == "reopen"
    assert SCHEME.move_rule("lost", "won") == "reopen"
    # from one won stage to an earlier won stage the policy, not reopening, is broken
    assert SCHEME.move_rule("signed", "won") == "forward"
    assert SCHEME.move_rule("won", "signed") is None


# -- events: timestamps and record errors ----------------------------------------------------


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


def test_an_event_built_with_a_naive_time_is_a_validation_error() -> None:
    for naive in (datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=_NoOffset())):
        err = raises(ValidationError, Opened, opportunity_id="o", at=naive, stage="lead")
        (detail,) = err.errors()
        assert detail["type"] == "naive_datetime"
        assert detail["msg"] == (
            "timestamp has no timezone; give an offset (e.g. '+00:00') or pass assume_tz="
        )


def test_bulk_ingestion_shares_one_tzinfo_per_offset() -> None:
    records = [rec("opened", f"o-{i}", i, stage="lead") for i in range(3)]
    records.append({**rec("opened", "o-x", 5, stage="lead"), "at": "2024-02-01T09:00:00+02:00"})
    events = History.from_records(records, scheme=SCHEME).events
    zones = [e.at.tzinfo for e in events]
    assert zones[0] is zones[1] is zones[2]
    assert zones[3] is not zones[0]
    assert [e.at for e in events] == [at(0), at(1), at(2), datetime(2024, 2, 1, 7, tzinfo=UTC)]


def test_record_errors_name_the_record_index_ids_and_field() -> None:
    err = raises(
        RecordError,
        event_from_record,
        {"type": "nope", "event_id": "e9", "opportunity_id": "o"},
        index=4,
    )
    assert str(err) == (
        "record 4 (event_id 'e9', opportunity 'o'), field 'type': "
        f"unknown record type 'nope'; expected one of: {TYPES}"
    )
    err = raises(RecordError, event_from_record, {"event_id": "e9", "opportunity_id": "o"})
    assert (err.event_id, err.opportunity_id, err.field) == ("e9", "o", "type")
    assert err.reason == f"the record has no 'type'; expected one of: {TYPES}"
    err = raises(RecordError, event_from_record, 5, index=1)
    assert str(err) == "record 1: a record must be a mapping of fields, got int"
    bogus = {**rec("opened", "o", 0, stage="lead"), "bogus": 1, "event_id": "e"}
    err = raises(RecordError, event_from_record, bogus)
    assert (err.field, err.reason) == ("bogus", "unknown field for this record type (got 1)")


def test_long_bad_values_are_cut_to_80_characters_in_messages() -> None:
    def reason(amount: str) -> str:
        err = raises(
            RecordError, event_from_record, rec("opened", "o", 0, stage="l", amount=amount)
        )
        return str(err.reason)

    prefix = "Input should be a valid decimal (got "
    assert reason("a" * 78) == prefix + "'" + "a" * 78 + "')"  # repr is 80 characters
    assert reason("a" * 79) == prefix + "'" + "a" * 76 + "...)"


# -- opportunity: replay results and the errors of illegal events -------------------------------


def test_opening_straight_into_a_closed_stage_closes_the_opportunity() -> None:
    h = History.from_records(
        [rec("opened", "o", 0, stage="won", owner="ann", actor="bob", expected_close="2024-03-01")],
        scheme=SCHEME,
    )
    o = h.as_of(at(1))["o"]
    assert (o.outcome, o.closed_at, o.closed_by) == (pk.Outcome.WON, at(0), "bob")
    assert (o.owner, o.expected_close, o.stage_reason) == ("ann", date(2024, 3, 1), None)
    assert h.as_of(at(1)).won().keys() == {"o"}


def test_an_open_opportunity_is_not_closed() -> None:
    o = History.from_records(
        [rec("opened", "o", 0, stage="lead", actor="bob")], scheme=SCHEME
    ).as_of(at(1))["o"]
    assert (o.outcome, o.closed_at, o.closed_by, o.stage_reason) == (None, None, None, None)


def test_replay_keeps_currency_reason_actions_and_activities() -> None:
    h = History.from_records(
        [
            rec("opened", "o", 0, stage="lead", amount="10", currency="EUR"),
            rec("amount_changed", "o", 1, amount="20", currency="USD"),
            rec("stage_changed", "o", 2, stage="offer", reason="demo done"),
            rec("next_action_scheduled", "o", 3, due="2024-02-01", note="call", actor="ann"),
            rec("activity_logged", "o", 4, kind="call", note="hi", actor="ann"),
            rec("stage_changed", "o", 5, stage="lost", reason="price", actor="bob"),
        ],
        scheme=SCHEME,
    )
    o = h.as_of(at(9))["o"]
    assert (o.amount, o.currency, o.stage_reason) == (Decimal(20), "USD", "price")
    assert (o.closed_at, o.closed_by) == (at(5), "bob")
    assert o.next_action is not None
    assert o.next_action.model_dump() == {
        "due": date(2024, 2, 1),
        "note": "call",
        "scheduled_at": at(3),
        "actor": "ann",
    }
    assert [a.model_dump() for a in o.activities] == [
        {"at": at(4), "kind": "call", "note": "hi", "actor": "ann"}
    ]
    assert h.as_of(at(2.5))["o"].stage_reason == "demo done"


def test_replayed_opportunities_behave_like_validated_models() -> None:
    h = History.from_records(
        [
            rec("opened", "o", 0, stage="lead", amount="10", currency="EUR"),
            rec("next_action_scheduled", "o", 1, due="2024-02-01"),
            rec("activity_logged", "o", 2, kind="call"),
            rec("stage_changed", "o", 3, stage="offer"),
        ],
        scheme=SCHEME,
    )
    o = h.as_of(at(9))["o"]
    assert o.model_dump(exclude_unset=True) == o.model_dump()
    assert o.path[0].model_dump(exclude_unset=True) == o.path[0].model_dump()
    assert o.activities[0].model_dump(exclude_unset=True) == o.activities[0].model_dump()
    assert o.next_action is not None
    assert o.next_action.model_dump(exclude_unset=True) == o.next_action.model_dump()
    assert pickle.loads(pickle.dumps(o)) == o
    assert o.model_copy(update={"owner": "x"}).owner == "x"


def test_illegal_events_raise_transition_errors_that_say_where_and_why() -> None:
    opened = Opened(opportunity_id="o", at=at(0), stage="offer", event_id="e0")
    o = apply(None, opened, SCHEME)
    err = raises(
        TransitionError,
        apply,
        o,
        StageChanged(opportunity_id="o", at=at(1), stage="lead", event_id="e1"),
        SCHEME,
    )
    assert (err.rule, err.from_stage, err.to_stage) == ("forward", "offer", "lead")
    assert (err.event_id, err.opportunity_id, err.field) == ("e1", "o", "stage")
    assert err.reason == (
        "illegal move 'offer' -> 'lead': the 'forward' policy only moves to later stages "
        "(or to a lost stage)"
    )
    err = raises(
        TransitionError,
        apply,
        o,
        Opened(opportunity_id="o", at=at(1), stage="lead", event_id="e2"),
        SCHEME,
    )
    assert (err.rule, err.from_stage, err.to_stage, err.field) == (
        "already-opened",
        "offer",
        "lead",
        "type",
    )
    assert (err.event_id, err.opportunity_id) == ("e2", "o")
    assert err.reason == (
        "opportunity 'o' was already opened at 2024-01-01T09:00:00+00:00; a second 'opened' "
        "record is not allowed (a new contract is a new opportunity)"
    )
    change = StageChanged(opportunity_id="p", at=at(1), stage="won", event_id="e3")
    err = raises(TransitionError, apply, None, change, SCHEME)
    assert (err.rule, err.from_stage, err.to_stage, err.field) == (
        "not-opened",
        None,
        "won",
        "opportunity_id",
    )
    assert (err.event_id, err.opportunity_id) == ("e3", "p")
    assert err.reason == (
        "opportunity 'p' has no 'opened' record at or before 2024-01-02T09:00:00+00:00; "
        "open it before recording 'stage_changed'"
    )


@pytest.mark.parametrize(
    ("transitions", "why"),
    [
        ("adjacent", "the 'adjacent' policy only moves to the next stage (or to a lost stage)"),
        ("graph", "the scheme's graph has no such edge"),
    ],
)
def test_illegal_moves_explain_the_policy(transitions: str, why: str) -> None:
    edges = {"lead": ["offer", "lost"], "offer": ["won", "lost"], "won": ["signed"]}
    scheme = SCHEME.replace(transitions=transitions, edges=edges if transitions == "graph" else ())
    o = apply(None, Opened(opportunity_id="o", at=at(0), stage="lead"), scheme)
    err = raises(
        TransitionError, apply, o, StageChanged(opportunity_id="o", at=at(1), stage="won"), scheme
    )
    assert err.reason == f"illegal move 'lead' -> 'won': {why}"


def test_other_bad_events_raise_record_errors_naming_the_event() -> None:
    o = apply(None, Opened(opportunity_id="o", at=at(5), stage="lead"), SCHEME)
    err = raises(
        RecordError,
        apply,
        o,
        StageChanged(opportunity_id="q", at=at(6), stage="offer", event_id="e"),
        SCHEME,
    )
    assert (err.event_id, err.opportunity_id, err.field) == ("e", "q", "opportunity_id")
    assert err.reason == "event is about 'q', not 'o'"
    err = raises(
        RecordError,
        apply,
        o,
        StageChanged(opportunity_id="o", at=at(1), stage="offer", event_id="e"),
        SCHEME,
    )
    assert (err.event_id, err.opportunity_id, err.field) == ("e", "o", "at")
    assert err.reason == (
        "event at 2024-01-02T09:00:00+00:00 is earlier than the opportunity's latest event at "
        "2024-01-06T09:00:00+00:00; apply events in time order"
    )
    err = raises(
        RecordError,
        apply,
        o,
        StageChanged(opportunity_id="o", at=at(6), stage="zzz", event_id="e"),
        SCHEME,
    )
    assert (err.event_id, err.opportunity_id, err.field) == ("e", "o", "stage")


# -- history and pipeline ----------------------------------------------------------------------


def test_history_argument_errors_say_what_was_expected() -> None:
    err = raises(ArgumentError, History.from_records, [], scheme=SCHEME, mode="loose")
    assert err.reason == "expected 'strict' or 'lenient', got 'loose'"
    err = raises(ArgumentError, History.from_records, [], scheme="t")
    assert err.reason == (
        "expected a StageScheme, got str; build one with "
        "StageScheme.model_validate(...) or pipelinekit.schemes.get(name)"
    )
    err = raises(ArgumentError, History.from_records, {"a": 1}, scheme=SCHEME)
    assert err.reason == "expected an iterable of record dicts, got dict"


def test_from_events_rejects_plain_dicts_with_a_hint() -> None:
    err = raises(RecordError, History.from_events, [{"type": "opened"}], scheme=SCHEME)
    assert str(err) == (
        "record 0: expected an event object, got dict; use History.from_records for plain dicts"
    )
    good = Opened(opportunity_id="o", at=at(0), stage="lead")
    h = History.from_events([good, {"type": "opened"}], scheme=SCHEME, mode="lenient")
    assert len(h) == 1
    assert [(r.index, r.reason) for r in h.ingest.rejected] == [(1, err.reason)]


def test_reused_event_ids_with_other_content_are_reported() -> None:
    records = [
        rec("opened", "o", 0, stage="lead", event_id="e"),
        rec("opened", "p", 1, stage="lead", event_id="e"),
    ]
    err = raises(DuplicateEventError, History.from_records, records, scheme=SCHEME)
    assert (err.index, err.event_id, err.opportunity_id, err.field) == (1, "e", "p", "event_id")
    assert err.reason == (
        "event_id 'e' was first used by record 0 with different content; "
        "an event_id must identify one fact"
    )


def test_ingest_report_rows_name_status_field_and_reason() -> None:
    records = [
        rec("opened", "o", 0, stage="lead", event_id="e"),
        rec("opened", "o", 0, stage="lead", event_id="e"),
        rec("stage_changed", "q", 1, stage="offer"),
    ]
    h = History.from_records(records, scheme=SCHEME, mode="lenient")
    rows = h.ingest.to_records()
    assert rows[0] == {
        "index": 1,
        "status": "duplicate",
        "rule": "duplicate",
        "field": "event_id",
        "reason": "repeats record 0 (event_id 'e')",
    }
    assert (rows[1]["status"], rows[1]["rule"]) == ("rejected", "not-opened")
    assert rows[1]["field"] == "opportunity_id"
    assert rows[1]["reason"].startswith("opportunity 'q' has no 'opened' record")


def test_history_repr_len_iteration_and_views() -> None:
    records = [
        rec("opened", o, d, stage="lead", amount="5", currency="EUR") for d, o in enumerate("abc")
    ]
    h = History.from_records(records, scheme=SCHEME)
    assert repr(h) == (
        "<History scheme='t': 3 events, 3 opportunities, "
        "2024-01-01T09:00:00+00:00 .. 2024-01-03T09:00:00+00:00>"
    )
    assert repr(History.from_records([], scheme=SCHEME)) == (
        "<History scheme='t': 0 events, 0 opportunities>"
    )
    assert list(h) == list(h.events)
    rebuilt = History(scheme=SCHEME, events=h.events, ingest=h.ingest)
    assert (rebuilt.start, rebuilt.end) == (at(0), at(2))
    for part in (h.for_opportunities({"a", "c"}), *h.partition(2), h.until(at(1))):
        assert part.ingest.total == part.ingest.applied == len(part)
        assert part.end == (part.events[-1].at if part.events else None)


def test_ingested_events_know_which_fields_their_record_set() -> None:
    records = [rec("opened", o, 0, stage="lead", amount="5") for o in "abc"]
    for event in History.from_records(records, scheme=SCHEME).events:
        assert event.model_fields_set == {"type", "opportunity_id", "at", "stage", "amount"}
        assert event.model_dump(exclude_unset=True)["amount"] == Decimal(5)


def test_time_arguments_are_named_t_in_errors() -> None:
    h = History.from_records([], scheme=SCHEME)
    assert raises(ArgumentError, h.as_of, "yesterday").argument == "t"
    assert raises(ArgumentError, h.until, "yesterday").argument == "t"


def test_pipeline_views_keep_scheme_and_instant() -> None:
    records = [
        rec("opened", "a", 0, stage="lead", amount="5", currency="EUR"),
        rec("opened", "b", 0, stage="won"),
        rec("opened", "c", 0, stage="lost", amount="7", currency="USD"),
    ]
    pipe = History.from_records(records, scheme=SCHEME).as_of(at(3))
    assert pipe.scheme is SCHEME
    assert "a" in pipe and "z" not in pipe
    assert repr(pipe) == "<Pipeline as_of=2024-01-04T09:00:00+00:00: 3 opportunities, 1 open>"
    for view in (pipe.open(), pipe.won(), pipe.lost()):
        assert (view.scheme, view.as_of) == (SCHEME, at(3))
    assert list(pipe.won()) == ["b"]
    assert pipe.currencies() == {"EUR", "USD"}
    assert pipe.open().currencies() == {"EUR"}
    assert pipe.weighted_total() == Decimal("0.5")
    assert pipe.total_amount() == Decimal(5)
    assert isinstance(pipe.lost().total_amount(), Decimal)
    rows = {r["opportunity_id"]: r for r in pipe.to_records()}
    assert (rows["b"]["outcome"], rows["a"]["outcome"]) == ("won", None)
    assert rows["a"]["next_action_due"] is None


def test_pipelines_are_equal_only_with_the_same_instant_scheme_and_states() -> None:
    h = History.from_records([rec("opened", "a", 0, stage="lead")], scheme=SCHEME)
    pipe = h.as_of(at(1))
    assert pipe == h.as_of(at(1))
    assert pipe != h.as_of(at(2))
    assert pipe != History.from_records(
        [rec("opened", "a", 0, stage="lead")], scheme=SCHEME.replace(name="u")
    ).as_of(at(1))
    assert pipe != History.from_records(
        [rec("opened", "a", 0, stage="offer")], scheme=SCHEME
    ).as_of(at(1))


def test_weighted_total_without_weights_names_the_scheme_argument() -> None:
    unweighted = SCHEME.replace(stages=[{**s, "weight": None} for s in STAGES])
    pipe = History.from_records(
        [rec("opened", "a", 0, stage="lead", amount="5", currency="EUR")], scheme=unweighted
    ).as_of(at(1))
    assert raises(ArgumentError, pipe.weighted_total).argument == "scheme"


def test_mixed_currencies_error_names_each_currency() -> None:
    pipe = History.from_records(
        [
            rec("opened", "a", 0, stage="lead", amount="5", currency="EUR"),
            rec("opened", "b", 0, stage="lead", amount="5"),
        ],
        scheme=SCHEME,
    ).as_of(at(1))
    err = raises(CurrencyError, pipe.total_amount)
    assert str(err) == (
        "open opportunities are in several currencies ['<none>', 'EUR']; convert with FxRates "
        "to a reporting currency before adding amounts"
    )


def test_unknown_opportunity_error_reads_as_its_message() -> None:
    pipe = History.from_records([], scheme=SCHEME).as_of(at(0))
    err = raises(KeyError, pipe.__getitem__, "z")
    assert (
        str(err)
        == "no opportunity 'z' at 2024-01-01T09:00:00+00:00 (0 opportunities are known then)"
    )
    assert str(type(err)()) == ""


# -- money ----------------------------------------------------------------------------------


DATED = FxRates.dated(
    "EUR",
    {
        "USD": {date(2024, 1, 1): "0.5", date(2024, 4, 1): "0.6", date(2024, 7, 1): "0.8"},
        "PLN": {date(2024, 1, 1): "0.25", date(2024, 7, 1): "0.2"},
    },
)


def test_conversion_uses_the_rates_valid_on_the_given_date() -> None:
    assert DATED.convert(Decimal(100), "USD", "EUR", on=date(2024, 2, 1)) == Decimal(50)
    assert DATED.convert(Decimal(100), "USD", "PLN", on=date(2024, 2, 1)) == Decimal(200)
    assert DATED.convert(Decimal(100), "USD", "PLN", on=date(2024, 8, 1)) == Decimal(400)
    to_eur = ReportingCurrency("EUR", DATED)
    assert to_eur(Decimal(100), "USD", on=date(2024, 2, 1)) == Decimal(50)
    assert DATED.rate("USD") == Decimal("0.8")


def test_a_missing_rate_lists_the_known_currencies() -> None:
    err = raises(CurrencyError, DATED.rate, "GBP")
    assert str(err) == "no GBP->EUR rate; the rates know ['EUR', 'PLN', 'USD']: add a rate for GBP"


def test_reporting_currency_messages_and_validation() -> None:
    same = ReportingCurrency()
    same(Decimal(1), None)
    err = raises(CurrencyError, same, Decimal(1), "EUR")
    assert str(err) == (
        "some amounts have a currency and some have none; give every opportunity "
        "a currency before adding amounts"
    )
    err = raises(ArgumentError, ReportingCurrency, "eur")
    assert err.reason == "expected an ISO 4217 code like 'EUR', got 'eur'"
    for bad in ("EURO", "ÉUR", "Eur"):
        assert raises(ArgumentError, ReportingCurrency, bad).argument == "currency"
    err = raises(ArgumentError, ReportingCurrency, "EUR", {"USD": 1})
    assert err.reason == "expected FxRates, got dict"


# -- periods ----------------------------------------------------------------------------------


def test_period_argument_errors_say_what_was_expected() -> None:
    assert raises(ArgumentError, quarters, fiscal_start_month=13).reason == (
        "expected a month from 1 to 12, got 13"
    )
    assert raises(ArgumentError, fiscal_years, start_month=0).reason == (
        "expected a month from 1 to 12, got 0"
    )
    assert raises(ArgumentError, weeks, week_start=7).reason == (
        "expected a weekday (0 = Monday) from 0 to 6, got 7"
    )
    kind = months()
    assert raises(ArgumentError, kind.period_of, datetime(2024, 1, 1, tzinfo=UTC)).reason == (
        "expected a date, got the datetime 2024-01-01T00:00:00+00:00; use the *_instant "
        "method with a time zone, or pass value.date()"
    )
    assert raises(ArgumentError, kind.period_of, "2024-01-01").reason == "expected a date, got str"
    period = kind.period_of(date(2024, 1, 1))
    assert raises(ArgumentError, period.start_instant, "UTC").reason == (
        "expected a tzinfo such as zoneinfo.ZoneInfo('Europe/Warsaw'), got 'UTC'"
    )
    assert raises(ArgumentError, kind.between, date(2024, 2, 1), date(2024, 1, 1)).reason == (
        "2024-01-01 is before start 2024-02-01"
    )
    assert raises(ArgumentError, kind.following, date(2024, 1, 1), 0).reason == (
        "expected a whole number of periods >= 1, got 0"
    )
    assert raises(ArgumentError, kind.following, date(9999, 1, 1), 20).reason == (
        "20 month periods reach past 9999-12-31"
    )
    assert raises(ArgumentError, kind.period_of, date(9999, 12, 31)).reason.startswith(
        "the month period containing 9999-12-31 reaches outside "
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("quarter:123", "bad setting in period spec 'quarter:123'; valid: "),
        ("quarter:0", "'quarter:0': the fiscal start month must be 1-12"),
        ("quarter:13", "'quarter:13': the fiscal start month must be 1-12"),
        ("week:7", "'week:7': the first weekday must be 0-6 (0 = Monday)"),
        ("fiscal_year:13", "'fiscal_year:13': the start month must be 1-12"),
        ("fiscal_year:0", "'fiscal_year:0': the start month must be 1-12"),
        (5, "expected a PeriodKind or a spec string ("),
    ],
)
def test_bad_period_specs_are_argument_errors_naming_period(spec: Any, reason: str) -> None:
    err = raises(ArgumentError, period_kind, spec)
    assert err.argument == "period"
    assert err.reason.startswith(reason)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("quarter:1", quarters(fiscal_start_month=1)),
        ("quarter:10", quarters(fiscal_start_month=10)),
        ("quarter:12", quarters(fiscal_start_month=12)),
        ("week:0", weeks(week_start=0)),
        ("week:1", weeks(week_start=1)),
        ("fiscal_year:12", fiscal_years(start_month=12)),
    ],
)
def test_edge_period_specs_are_accepted(spec: str, kind: Any) -> None:
    assert period_kind(spec) == kind


def test_periods_order_by_time_and_refuse_to_compare_with_other_things() -> None:
    jan, feb = months().period_of(date(2024, 1, 5)), months().period_of(date(2024, 2, 5))
    assert jan < feb and jan <= feb and feb > jan and feb >= jan
    assert not (jan < jan) and not (jan > jan) and jan <= jan and jan >= jan
    for compare in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert getattr(jan, compare)(date(2024, 1, 1)) is NotImplemented


# -- calculators ---------------------------------------------------------------------------


def test_partition_of_accepts_one_partition_and_refuses_less() -> None:
    assert partition_of("o-1", 1) == 0
    for bad in (0, True, 2.0):
        err = raises(ArgumentError, partition_of, "o-1", bad)
        assert err.reason == f"expected an integer >= 1, got {bad!r}"


def test_compute_partitioned_needs_a_partition() -> None:
    err = raises(ArgumentError, compute_partitioned, None, [], as_of=at(0))
    assert str(err) == "argument 'partitions': at least one partition is needed"


def test_history_partition_validates_the_count_even_when_empty() -> None:
    empty = History.from_records([], scheme=SCHEME)
    err = raises(ArgumentError, empty.partition, 0)
    assert err.argument == "partitions"
    assert len(empty.partition(3)) == 3


# -- second round: gaps left after the first re-run -------------------------------------------


def test_bulk_ingestion_shares_one_tzinfo_per_non_utc_offset() -> None:
    records = [
        {**rec("opened", f"o-{i}", 0, stage="lead"), "at": f"2024-02-0{i + 1}T09:00:00+02:00"}
        for i in range(3)
    ]
    zones = [e.at.tzinfo for e in History.from_records(records, scheme=SCHEME).events]
    assert zones[0] is zones[1] is zones[2]


def test_a_label_problem_is_located_inside_the_stage() -> None:
    bad = [*STAGES[:1], {**STAGES[1], "labels": {"pl": 5}}, *STAGES[2:]]
    (problem,) = problems({"name": "t", "stages": bad})
    assert problem == (
        "stage 'offer' (stages[1]), field 'labels': a locale and its label must both be "
        "text, got 'pl' and 5"
    )


def test_scheduling_without_a_due_date_clears_the_next_action() -> None:
    h = History.from_records(
        [
            rec("opened", "o", 0, stage="lead"),
            rec("next_action_scheduled", "o", 1, due="2024-02-01"),
            rec("next_action_scheduled", "o", 2, due=None),
        ],
        scheme=SCHEME,
    )
    (row,) = h.as_of(at(1)).to_records()
    assert row["next_action_due"] == date(2024, 2, 1)
    assert h.as_of(at(2))["o"].next_action is None


def test_moving_between_won_stages_keeps_when_and_by_whom_the_deal_closed() -> None:
    h = History.from_records(
        [
            rec("opened", "o", 0, stage="lead"),
            rec("stage_changed", "o", 1, stage="won", actor="bob"),
            rec("stage_changed", "o", 2, stage="signed", actor="carol"),
        ],
        scheme=SCHEME,
    )
    o = h.as_of(at(3))["o"]
    assert (o.stage, o.closed_at, o.closed_by) == ("signed", at(1), "bob")


def test_lenient_mode_applies_assume_tz_to_the_records_it_keeps() -> None:
    records = [
        {"type": "opened", "opportunity_id": "o", "at": "2024-01-01T10:00:00", "stage": "lead"},
        {"type": "opened", "opportunity_id": "p", "at": "not a time", "stage": "lead"},
    ]
    h = History.from_records(records, scheme=SCHEME, mode="lenient", assume_tz=UTC)
    assert [e.at for e in h.events] == [datetime(2024, 1, 1, 10, tzinfo=UTC)]
    assert [r.index for r in h.ingest.rejected] == [1]


def test_from_events_reports_duplicates_and_illegal_moves_by_input_position() -> None:
    first = Opened(opportunity_id="o", at=at(0), stage="offer", event_id="e")
    back = StageChanged(opportunity_id="o", at=at(1), stage="lead")
    events: list[Any] = [{"type": "opened"}, first, first, back]
    h = History.from_events(events, scheme=SCHEME, mode="lenient")
    assert [(d.index, d.first_index) for d in h.ingest.duplicates] == [(2, 1)]
    assert [r.index for r in h.ingest.rejected] == [0, 3]
    err = raises(TransitionError, History.from_events, events[1:], scheme=SCHEME)
    assert (err.index, err.rule) == (2, "forward")


def test_currencies_count_only_opportunities_with_an_amount() -> None:
    pipe = History.from_records(
        [rec("opened", "a", 0, stage="lead", currency="EUR")], scheme=SCHEME
    ).as_of(at(1))
    assert pipe.currencies() == frozenset()


def test_pipeline_to_pandas_can_give_money_as_floats() -> None:
    pytest.importorskip("pandas")
    pipe = History.from_records(
        [rec("opened", "a", 0, stage="lead", amount="5", currency="EUR")], scheme=SCHEME
    ).as_of(at(1))
    assert str(pipe.to_pandas(money="float")["amount"].dtype) == "float64"
    assert pipe.to_pandas()["amount"].tolist() == [Decimal(5)]
