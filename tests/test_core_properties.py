"""Properties of the core (replay, as_of, until, the record format) over generated input."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from _engines import reference_engine
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipelinekit import History, StageScheme, schemes
from pipelinekit.events import event_from_record
from pipelinekit.testing import events, history_records, stage_schemes

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMES = st.one_of(
    st.sampled_from([schemes.get("salesforce"), schemes.get("vtiger-lead-funnel")]),
    stage_schemes(max_stages=6),
)


@st.composite
def scheme_and_records(draw: st.DrawFn, **kwargs: Any) -> tuple[StageScheme, list[dict[str, Any]]]:
    scheme = draw(SCHEMES)
    return scheme, draw(history_records(scheme, **kwargs))


@st.composite
def cut_offs(draw: st.DrawFn, recs: list[dict[str, Any]]) -> datetime:
    """An instant at, between, before or after the records' timestamps."""
    times = [datetime.fromisoformat(r["at"]) for r in recs] or [datetime.fromisoformat(
        "2024-01-01T00:00:00+00:00")]  # fmt: skip
    base = draw(st.sampled_from(times))
    return base + timedelta(seconds=draw(st.integers(-86_400, 86_400)))


@SETTINGS
@given(scheme_and_records(duplicates=0.1))
def test_replay_is_deterministic(case: tuple[StageScheme, list[dict[str, Any]]]) -> None:
    scheme, recs = case
    first = History.from_records(recs, scheme=scheme)
    second = History.from_records(recs, scheme=scheme)
    assert first.events == second.events
    assert first.ingest == second.ingest
    if first.end is not None:
        assert first.as_of(first.end) == second.as_of(first.end)


@SETTINGS
@given(scheme_and_records(), st.data())
def test_as_of_equals_replaying_only_the_events_up_to_then(
    case: tuple[StageScheme, list[dict[str, Any]]], data: st.DataObject
) -> None:
    scheme, recs = case
    t = data.draw(cut_offs(recs))
    history = History.from_records(recs, scheme=scheme)
    earlier = [r for r in recs if datetime.fromisoformat(r["at"]) <= t]
    assert history.as_of(t) == History.from_records(earlier, scheme=scheme).as_of(t)


@SETTINGS
@given(scheme_and_records(), st.data())
def test_until_then_as_of_is_as_of(
    case: tuple[StageScheme, list[dict[str, Any]]], data: st.DataObject
) -> None:
    scheme, recs = case
    t = data.draw(cut_offs(recs))
    history = History.from_records(recs, scheme=scheme)
    cut = history.until(t)
    assert cut.as_of(t) == history.as_of(t)
    assert all(e.at <= t for e in cut.events)
    assert cut.events == history.events[: len(cut.events)]


@SETTINGS
@given(SCHEMES.flatmap(events))
def test_record_to_event_to_record_is_lossless(event: Any) -> None:
    record = event.model_dump(mode="json")
    again = event_from_record(record)
    assert again == event
    assert again.model_dump(mode="json") == record


@SETTINGS
@given(scheme_and_records(), st.randoms(use_true_random=False))
def test_shuffled_records_with_distinct_timestamps_give_the_same_history(
    case: tuple[StageScheme, list[dict[str, Any]]], rng: Any
) -> None:
    scheme, recs = case
    distinct: list[dict[str, Any]] = []
    seen: set[datetime] = set()
    for r in recs:
        at = datetime.fromisoformat(r["at"])
        if at not in seen:
            seen.add(at)
            distinct.append(r)
    # Dropping records can leave a deal without its opening: compare lenient histories.
    shuffled = list(distinct)
    rng.shuffle(shuffled)
    ordered = History.from_records(distinct, scheme=scheme, mode="lenient")
    mixed = History.from_records(shuffled, scheme=scheme, mode="lenient")
    assert mixed.events == ordered.events
    if ordered.end is not None:
        assert mixed.as_of(ordered.end) == ordered.as_of(ordered.end)


@SETTINGS
@given(scheme_and_records(duplicates=0.2), st.data())
def test_lenient_mode_accounts_for_every_record(
    case: tuple[StageScheme, list[dict[str, Any]]], data: st.DataObject
) -> None:
    scheme, recs = case
    dropped = data.draw(st.sets(st.integers(0, max(len(recs) - 1, 0)), max_size=3))
    kept = [r for i, r in enumerate(recs) if i not in dropped]
    history = History.from_records(kept, scheme=scheme, mode="lenient")
    report = history.ingest
    assert report.applied + len(report.duplicates) + len(report.rejected) == len(kept)
    assert report.accounted
    assert report.applied == len(history.events)
    indices = [r.index for r in report.rejected] + [d.index for d in report.duplicates]
    assert len(indices) == len(set(indices))


@SETTINGS
@given(scheme_and_records())
def test_to_records_round_trips_the_history(
    case: tuple[StageScheme, list[dict[str, Any]]],
) -> None:
    scheme, recs = case
    history = History.from_records(recs, scheme=scheme)
    assert History.from_records(history.to_records(), scheme=scheme).events == history.events


def _time_ordered_replay(
    events: list[Any], scheme: StageScheme
) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """The reference: every event in time order (ties in input order) through ``step``,
    failures set aside. History replays one opportunity at a time for speed; it must give
    exactly this."""
    from pipelinekit.errors import RecordError
    from pipelinekit.opportunity import step

    states: dict[str, Any] = {}
    failures: list[tuple[int, str]] = []
    for i in sorted(range(len(events)), key=lambda i: events[i].at):
        try:
            step(states, events[i], scheme)
        except RecordError as exc:
            failures.append((i, exc.reason))
    return {k: d.freeze() for k, d in states.items()}, failures


@SETTINGS
@given(scheme_and_records(), st.randoms(use_true_random=False), st.data())
def test_replay_by_opportunity_equals_a_time_ordered_replay(
    case: tuple[StageScheme, list[dict[str, Any]]], rnd: Any, data: st.DataObject
) -> None:
    """Legal histories scrambled into illegal ones (timestamps and stages swapped between
    records, some records dropped): the same states in the same order of opening, the
    same rejections in lenient mode, and in strict mode the error of the first record
    lenient mode sets aside."""
    from pipelinekit.errors import RecordError

    scheme, recs = case
    recs = [dict(r) for r in recs if rnd.random() > 0.1]
    for key in ("at", "stage"):
        holders = [r for r in recs if key in r and rnd.random() < 0.3]
        values = [r[key] for r in holders]
        rnd.shuffle(values)
        for r, v in zip(holders, values, strict=True):
            r[key] = v
    for r in recs:
        r.pop("event_id", None)  # duplicates are another matter, tested elsewhere
    events = [event_from_record(r) for r in recs]
    expected, failures = _time_ordered_replay(events, scheme)
    event("some records illegal" if failures else "all legal")

    lenient = History.from_records(recs, scheme=scheme, mode="lenient")
    assert [(r.index, r.reason) for r in lenient.ingest.rejected] == sorted(failures)
    after = max((e.at for e in events), default=datetime.fromisoformat("2024-01-01T00:00:00Z"))
    snapshot = lenient.as_of(after)
    assert list(snapshot) == list(expected)
    assert dict(snapshot) == expected
    # prefixes replay through the grouping kept from ingestion, rejections taken out
    t = data.draw(cut_offs(recs)) if recs else after
    plain = lenient.for_opportunities(lenient.opportunity_ids)
    assert lenient.as_of(t) == plain.as_of(t)
    assert list(lenient.as_of(t)) == list(plain.as_of(t))
    if failures:
        first = min(failures)
        with pytest.raises(RecordError) as caught:
            History.from_records(recs, scheme=scheme)
        assert (caught.value.index, caught.value.reason) == first


@SETTINGS
@given(scheme_and_records(), st.data())
def test_grouped_and_time_ordered_snapshots_agree(
    case: tuple[StageScheme, list[dict[str, Any]]], data: st.DataObject
) -> None:
    """A History from records replays its prefixes one opportunity at a time; a History
    from ``for_opportunities`` (no grouping kept) folds in time order. Same snapshots."""
    scheme, recs = case
    with reference_engine():  # (the reference engine's grouping is what is tested)
        history = History.from_records(recs, scheme=scheme)
    plain = history.for_opportunities(history.opportunity_ids)
    assert plain._store._grouping is None and history._store._grouping is not None
    t = data.draw(cut_offs(recs))
    assert history.as_of(t) == plain.as_of(t)
    assert list(history.as_of(t)) == list(plain.as_of(t))
    assert history.until(t).opportunity_ids == plain.until(t).opportunity_ids


def test_calculators_at_one_as_of_share_one_snapshot() -> None:
    """``until`` keeps its last prefix, so the report and the forecast at the same as_of
    replay and freeze the states once; the states are the very same objects."""
    from pipelinekit import demo

    history = demo.demo_history(opportunities=30, seed=4)
    assert history.end is not None and history.start is not None
    mid = history.start + (history.end - history.start) / 2
    assert history.until(mid) is history.until(mid)
    first, second = history.as_of(mid), history.as_of(mid)
    assert first == second
    assert all(first[k] is second[k] for k in first)
    later = mid + timedelta(days=30)
    assert history.as_of(later) != first  # another cut replaces the kept prefix
    assert history.until(mid) is not history.until(later)


@SETTINGS
@given(scheme_and_records(), st.data(), st.booleans())
def test_a_prefix_reuses_the_states_of_opportunities_it_holds_whole(
    case: tuple[StageScheme, list[dict[str, Any]]], data: st.DataObject, final_first: bool
) -> None:
    """An opportunity whose events all lie before the cut is in the same state as at the
    end: the prefix takes that state (a draft, or the frozen one once the final snapshot
    was built) instead of replaying it. Same snapshot as replaying only the prefix."""
    scheme, recs = case
    with reference_engine():  # (reusing the reference engine's states is what is tested)
        history = History.from_records(recs, scheme=scheme)
    final = history.as_of(history.end) if final_first and history.end is not None else None
    t = data.draw(cut_offs(recs))
    snapshot = history.as_of(t)
    earlier = [r for r in recs if datetime.fromisoformat(r["at"]) <= t]
    assert snapshot == History.from_records(earlier, scheme=scheme).as_of(t)
    assert list(snapshot) == list(History.from_records(earlier, scheme=scheme).as_of(t))
    if final is not None:
        last_at = {
            oid: max(e.at for e in history.events if e.opportunity_id == oid) for oid in snapshot
        }
        whole = [oid for oid in snapshot if last_at[oid] <= t]
        event("whole opportunities reused" if whole else "none whole")
        assert all(snapshot[oid] is final[oid] for oid in whole)
