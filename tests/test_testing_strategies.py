"""pipelinekit.testing strategies: valid output, argument checks, legality, shrinking."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipelinekit import History, StageScheme, schemes
from pipelinekit.errors import TransitionError
from pipelinekit.events import event_from_record
from pipelinekit.testing import (
    INVALID_RECORD_RULES,
    check_scheme,
    events,
    histories,
    history_records,
    invalid_records,
    records,
    stage_schemes,
    stages,
)

SALESFORCE = schemes.get("salesforce")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_importing_the_core_never_imports_hypothesis() -> None:
    done = run("import sys, pipelinekit; print('hypothesis' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_importing_testing_without_hypothesis_names_the_extra() -> None:
    done = run("import sys; sys.modules['hypothesis'] = None; import pipelinekit.testing")
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "pip install 'pipelinekit[testing]'" in done.stderr


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (stage_schemes, {"min_stages": 1}),
        (stage_schemes, {"min_stages": 5, "max_stages": 4}),
        (stage_schemes, {"max_stages": 2, "lost_stages": (1, 1)}),
        (stage_schemes, {"weights": "rising"}),
        (stage_schemes, {"policies": ()}),
        (stage_schemes, {"policies": "forward"}),
        (stage_schemes, {"policies": ("sideways",)}),
        (stage_schemes, {"reopen": "yes"}),
        (stage_schemes, {"won_stages": (0, 1)}),
        (stage_schemes, {"won_stages": (2, 1)}),
        (stage_schemes, {"lost_stages": 1}),
        (stage_schemes, {"locales": "pl"}),
        (stage_schemes, {"locales": ("pl", "pl")}),
        (stages, {"outcomes": ("maybe",)}),
        (stages, {"weighted": 1}),
        (stages, {"keys": "lead"}),
    ],
)
def test_bad_scheme_arguments_raise_invalid_argument(make: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        make(**kwargs)


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (histories, {"scheme": "salesforce"}),
        (histories, {"scheme": SALESFORCE, "min_opportunities": -1}),
        (histories, {"scheme": SALESFORCE, "min_opportunities": 3, "max_opportunities": 2}),
        (histories, {"scheme": SALESFORCE, "max_events": 0}),
        (histories, {"scheme": SALESFORCE, "start": datetime(2024, 1, 1)}),
        (histories, {"scheme": SALESFORCE, "span": timedelta(days=-1)}),
        (histories, {"scheme": SALESFORCE, "currencies": ()}),
        (histories, {"scheme": SALESFORCE, "currencies": ("eur",)}),
        (histories, {"scheme": SALESFORCE, "lose": 1.5}),
        (histories, {"scheme": SALESFORCE, "skip": "often"}),
        (histories, {"scheme": SALESFORCE, "types": ("opened",)}),
        (histories, {"scheme": SALESFORCE, "duplicates": True, "event_ids": False}),
        (history_records, {"scheme": SALESFORCE, "actors": None}),
        (records, {"scheme": SALESFORCE, "opportunity_ids": ()}),
        (events, {"scheme": SALESFORCE, "types": ("deleted",)}),
        (invalid_records, {"scheme": SALESFORCE, "rules": ("typo",)}),
    ],
)
def test_bad_history_arguments_raise_invalid_argument(make: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        make(**kwargs)


def test_invalid_records_refuses_an_illegal_move_when_every_move_is_legal() -> None:
    anything_goes = StageScheme.model_validate(
        {
            "name": "anything",
            "transitions": "any",
            "reopen": True,
            "stages": [
                {"key": "lead", "label": "Lead"},
                {"key": "won", "label": "Won", "outcome": "won"},
            ],
        }
    )
    with pytest.raises(InvalidArgument):
        invalid_records(anything_goes, rules=("illegal-move",))


@FAST
@given(stages(outcomes=("open", "lost"), weighted=False, locales=("pl", "de")))
def test_stages_respect_outcomes_weights_and_locales(stage: Any) -> None:
    assert not stage.is_won
    assert stage.weight is None
    assert [loc for loc, _ in stage.labels] == ["de", "pl"]


@FAST
@given(
    stage_schemes(
        min_stages=3,
        max_stages=6,
        policies=("adjacent", "graph"),
        reopen=False,
        won_stages=(2, 3),
        lost_stages=(1, 1),
        locales=("pl",),
    )
)
def test_stage_schemes_respect_every_argument(scheme: StageScheme) -> None:
    assert 3 <= len(scheme.stages) <= 6
    assert scheme.transitions in ("adjacent", "graph")
    assert not scheme.reopen
    assert 2 <= len(scheme.won_stages) <= 3
    assert len(scheme.lost_stages) == 1
    assert all(dict(s.labels).keys() == {"pl"} for s in scheme.stages)
    assert StageScheme.model_validate_json(scheme.model_dump_json()) == scheme


@FAST
@given(stage_schemes())
def test_monotone_schemes_have_no_weight_findings_and_no_errors(scheme: StageScheme) -> None:
    weight_codes = {"falling-weight", "won-weight", "lost-weight", "partial-weights"}
    findings = check_scheme(scheme)
    assert not [f for f in findings if f.severity == "error" or f.code in weight_codes]


@FAST
@given(stage_schemes(weights="none"))
def test_unweighted_schemes_have_no_weights(scheme: StageScheme) -> None:
    assert all(s.weight is None for s in scheme.stages)


@FAST
@given(stage_schemes(weights="any"))
def test_any_weights_schemes_weight_every_stage(scheme: StageScheme) -> None:
    assert all(s.weight is not None for s in scheme.stages)


@FAST
@given(stage_schemes(max_stages=6), st.data())
def test_histories_are_legal_under_generated_schemes(
    scheme: StageScheme, data: st.DataObject
) -> None:
    recs = data.draw(history_records(scheme, duplicates=0.2))
    history = History.from_records(recs, scheme=scheme)  # strict: every move is legal
    assert history.ingest.applied + len(history.ingest.duplicates) == len(recs)
    times = [e.at for e in history.events]
    assert times == sorted(times)


START = datetime(2023, 7, 1, tzinfo=UTC)


@FAST
@given(
    history_records(
        SALESFORCE,
        min_opportunities=2,
        max_opportunities=4,
        max_events=6,
        start=START,
        span=timedelta(days=30),
        currencies=("PLN", "USD"),
        types=("stage_changed", "amount_changed"),
        event_ids=False,
        actors=False,
    )
)
def test_history_records_respect_every_argument(recs: list[dict[str, Any]]) -> None:
    opportunities = {r["opportunity_id"] for r in recs}
    assert 2 <= len(opportunities) <= 4
    assert all(r["type"] in ("opened", "stage_changed", "amount_changed") for r in recs)
    assert all("event_id" not in r and "actor" not in r for r in recs)
    for r in recs:
        assert START <= datetime.fromisoformat(r["at"]) <= START + timedelta(days=30)
        assert r.get("currency") in (None, "PLN", "USD")
    for oid in opportunities:
        assert sum(r["opportunity_id"] == oid for r in recs) <= 6


def moves(history: History) -> list[tuple[str, str]]:
    stage: dict[str, str] = {}
    result = []
    for event in history.events:
        if event.type in ("opened", "stage_changed"):
            if event.opportunity_id in stage:
                result.append((stage[event.opportunity_id], event.stage))
            stage[event.opportunity_id] = event.stage
    return result


@FAST
@given(histories(SALESFORCE, max_opportunities=4, lose=False, regress=False, skip=False))
def test_without_skips_losses_or_regressions_deals_move_one_stage_at_a_time(
    history: History,
) -> None:
    for src, dst in moves(history):
        assert SALESFORCE.index(dst) == SALESFORCE.index(src) + 1
        assert not SALESFORCE.stage(dst).is_lost
    assert all(e.stage == "prospecting" for e in history.events if e.type == "opened")


REOPENING = StageScheme.model_validate(
    {
        "name": "reopening",
        "transitions": "any",
        "reopen": True,
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)


@FAST
@given(histories(REOPENING, max_opportunities=3, reopen=False, regress=False))
def test_without_reopen_closed_deals_stay_closed(history: History) -> None:
    for src, dst in moves(history):
        assert REOPENING.stage(src).is_open
        assert REOPENING.index(dst) > REOPENING.index(src) or REOPENING.stage(dst).is_lost


def test_histories_can_regress_reopen_skip_and_lose_where_the_scheme_allows() -> None:
    kinds = {
        "regress": lambda s, d: REOPENING.index(d) < REOPENING.index(s),
        "reopen": lambda s, d: not REOPENING.stage(s).is_open,
        "lose": lambda s, d: REOPENING.stage(d).is_lost,
        "skip": lambda s, d: REOPENING.index(d) > REOPENING.index(s) + 1,
    }
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(histories(REOPENING, max_opportunities=3, skip=0.5, regress=0.5, reopen=0.5))
    def collect(history: History) -> None:
        seen.update(k for k, test in kinds.items() for s, d in moves(history) if test(s, d))

    collect()
    assert seen == set(kinds)


def test_a_failing_history_shrinks_to_one_opportunity_with_one_move() -> None:
    found = find(
        histories(SALESFORCE),
        lambda h: any(e.type == "stage_changed" for e in h.events),
        # derandomized: a random search under load once stopped shrinking one step short
        settings=settings(max_examples=500, database=None, derandomize=True),
    )
    assert len(found.opportunity_ids) == 1
    assert [e.type for e in found.events] == ["opened", "stage_changed"]
    assert [e.stage for e in found.events if e.type in ("opened", "stage_changed")] == [
        "prospecting",
        "qualification",
    ]


def test_a_failing_scheme_shrinks_to_the_smallest_scheme() -> None:
    found = find(stage_schemes(), lambda s: True, settings=settings(database=None))
    assert len(found.stages) == 2
    assert [s.outcome for s in found.stages] == [None, "won"]


@FAST
@given(records(SALESFORCE))
def test_records_validate_one_by_one(record: dict[str, Any]) -> None:
    event = event_from_record(record)
    assert event_from_record(event.model_dump(mode="json")) == event


@FAST
@given(events(SALESFORCE, types=("opened", "stage_changed")))
def test_events_name_the_schemes_stages(event: Any) -> None:
    assert SALESFORCE.has_stage(event.stage)


@pytest.mark.parametrize("rule", INVALID_RECORD_RULES)
def test_each_invalid_record_is_rejected_by_strict_and_lenient_ingestion(rule: str) -> None:
    @settings(max_examples=15, deadline=None, database=None)
    @given(stage_schemes(max_stages=5, reopen=False), st.data())
    def check(scheme: StageScheme, data: st.DataObject) -> None:
        case = data.draw(invalid_records(scheme, rules=(rule,)))
        assert case.rule == rule
        with pytest.raises(case.error) as info:
            History.from_records(case.records, scheme=scheme)
        assert info.value.index == case.index
        assert info.value.field == case.field
        if isinstance(info.value, TransitionError) and rule == "illegal-move":
            assert info.value.rule in (scheme.transitions, "reopen")
        lenient = History.from_records(case.records, scheme=scheme, mode="lenient")
        assert [r.index for r in lenient.ingest.rejected] == [case.index]
        assert case.record is case.records[case.index]

    check()
