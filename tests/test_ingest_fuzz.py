"""Hardened ingestion: History.from_records over arbitrary JSON-like input.

Strict mode raises only pipelinekit's own errors (never a bare KeyError, TypeError or
decimal error); lenient mode never raises and accounts for every record.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelinekit import History, PipelineError, RecordError, StageScheme, schemes
from pipelinekit.testing import history_records, records, stage_schemes

SALESFORCE = schemes.get("salesforce")
FIELDS = (
    "type", "opportunity_id", "at", "stage", "amount", "currency", "owner", "account",
    "product", "source", "expected_close", "probability", "name", "reason", "kind", "note",
    "due", "event_id", "actor",
)  # fmt: skip
TYPES = (
    "opened", "stage_changed", "amount_changed", "close_date_changed", "probability_set",
    "owner_changed", "activity_logged", "next_action_scheduled",
)  # fmt: skip

DEEP: list[Any] = []
for _ in range(3000):
    DEEP = [DEEP]

NASTY = st.one_of(
    st.sampled_from(
        [
            None, True, False, 0, -1, 1.5, -0.0, math.nan, math.inf, -math.inf, 10**30,
            -(10**30), 2**63, "", " ", "NaN", "sNaN", "-Infinity", "1e999999999",
            "1e-999999999", "-0", "1E+15", "1000000000000001", "0.0000000000000000000000000001",
            "x" * 300, "x" * 100_001, "prospecting", "closed-won", "closed-lost", "EUR", "eur",
            "2024-01-05", "2024-01-05T10:00:00", "2024-01-05T10:00:00Z",
            "2024-01-05T10:00:00+14:00", "0001-01-01T00:00:00+00:00",
            "0001-01-01T00:00:00-23:59", "9999-12-31T23:59:59+23:59",
            "9999-12-31T23:59:59.999999-23:59", "2024-02-30", "10000-01-01", "\x00", "\ud7ff",
            "Zoë 🚀 مرحبا", [], {}, [1, 2], {"a": 1}, *TYPES, 10**5000, DEEP, "1704067200",
            "1900-01-01T00:00:00+00:19:32", "9999-12-31T23:00:00-05:00",
        ]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.decimals().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)  # fmt: skip
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, record: dict[str, Any]) -> Any:
    """A valid record broken in a few random ways (or left alone)."""
    result: dict[Any, Any] = dict(record)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.integers(0, 3))
        if how == 0 and result:
            del result[draw(st.sampled_from(sorted(result, key=str)))]
        elif how == 1:
            result[draw(st.sampled_from(FIELDS))] = draw(NASTY)
        elif how == 2:
            result[draw(st.one_of(st.text(max_size=8), st.integers()))] = draw(NASTY)
        else:
            return draw(JSON)
    return result


@st.composite
def messy_inputs(draw: st.DrawFn, scheme: StageScheme) -> list[Any]:
    """A legal history's records, mutated, duplicated, conflicting and shuffled."""
    base = draw(history_records(scheme, max_opportunities=3, max_events=5, duplicates=0.2))
    out: list[Any] = [draw(mutated(r)) if draw(st.integers(0, 4)) == 4 else r for r in base]
    extra = draw(st.lists(st.one_of(records(scheme), JSON), max_size=3))
    out.extend(draw(mutated(r)) if isinstance(r, dict) else r for r in extra)
    dicts = [r for r in out if isinstance(r, dict)]
    if dicts and draw(st.booleans()):  # re-use an event_id with other content
        victim = draw(st.sampled_from(dicts))
        changed = draw(mutated(victim))
        if not isinstance(changed, dict):
            changed = {**victim, "at": "2030-01-01T00:00:00Z"}
        out.append({**changed, "event_id": victim.get("event_id", "e")})
    if draw(st.booleans()):
        out = draw(st.permutations(out))
    return out


def ingest_both_ways(recs: list[Any], scheme: StageScheme) -> None:
    strict_error: PipelineError | None = None
    try:
        strict = History.from_records(recs, scheme=scheme)
    except PipelineError as exc:
        strict_error = exc
    lenient = History.from_records(recs, scheme=scheme, mode="lenient")
    report = lenient.ingest
    assert report.total == len(recs)
    assert report.accounted
    assert report.applied == len(lenient.events)
    rejected = [r.index for r in report.rejected]
    duplicate = [d.index for d in report.duplicates]
    assert len(set(rejected) | set(duplicate)) == len(rejected) + len(duplicate)
    assert all(0 <= i < len(recs) for i in rejected + duplicate)
    if strict_error is None:
        assert not rejected
        assert strict.events == lenient.events
    else:  # strict mode raises the first record lenient mode sets aside
        assert isinstance(strict_error, RecordError) and report.rejected, strict_error
        first = report.rejected[0]
        assert type(strict_error) is type(first.error)
        assert (strict_error.index, strict_error.field, strict_error.reason) == (
            first.index,
            first.field,
            first.reason,
        )
    # what lenient mode kept is a legal history on its own
    again = History.from_records(lenient.to_records(), scheme=scheme)
    assert again.events == lenient.events
    if lenient.end is not None:
        lenient.as_of(lenient.end)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_inputs(SALESFORCE))
def test_messy_records_raise_only_pipeline_errors_and_are_all_accounted_for(
    recs: list[Any],
) -> None:
    ingest_both_ways(recs, SALESFORCE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stage_schemes(max_stages=5), st.data())
def test_messy_records_under_generated_schemes_are_accounted_for(
    scheme: StageScheme, data: st.DataObject
) -> None:
    ingest_both_ways(data.draw(messy_inputs(scheme)), scheme)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(JSON, st.dictionaries(st.sampled_from(FIELDS), NASTY)), max_size=6))
def test_arbitrary_json_values_raise_only_pipeline_errors(recs: list[Any]) -> None:
    ingest_both_ways(recs, SALESFORCE)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(TYPES), "opportunity_id": st.sampled_from(["a", "b", 1])},
            optional={f: NASTY for f in FIELDS if f not in ("type", "opportunity_id")},
        ),
        max_size=8,
    )
)
def test_records_with_known_types_and_nasty_fields_raise_only_pipeline_errors(
    recs: list[Any],
) -> None:
    ingest_both_ways(recs, SALESFORCE)


def test_a_non_list_input_is_an_argument_error_not_a_crash() -> None:
    for bad in ("opened", b"x", {"type": "opened"}, 42, None):
        try:
            History.from_records(bad, scheme=SALESFORCE)  # type: ignore[arg-type]
        except PipelineError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_a_generator_of_records_is_ingested_once() -> None:
    recs = ({"type": "opened", "opportunity_id": f"o-{i}", "at": "2024-01-05T10:00:00Z",
             "stage": "prospecting"} for i in range(3))  # fmt: skip
    assert History.from_records(recs, scheme=SALESFORCE, mode="lenient").ingest.applied == 3
