"""The reference engine: events kept as rows, replayed through the state machine.

Pure Python on pydantic-core; every other engine must agree with it exactly (events,
snapshots, results and errors). Records are validated in bulk straight into rows (see
:mod:`pipelinekit._rows`), de-duplicated by ``event_id``, ordered by time (ties keep input
order) and replayed one opportunity at a time; a :class:`RowStore` keeps the rows, the
instants, where each opportunity's events are and the final working states.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.engine.reference import RowStore
    >>> store, report = RowStore.from_records(
    ...     [{"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
    ...       "stage": "lead"}], pk.schemes.get("vtiger-lead-funnel"), "strict", None)
    >>> len(store), store.opportunity_ids(), report.applied
    (1, ('o-1',), 1)
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import pairwise
from typing import Any, cast

from pydantic import ValidationError

from pipelinekit._rows import (
    AT,
    EVENT_ID,
    OPPORTUNITY_ID,
    ROW_CLASSES,
    Row,
    RowMaker,
    same_event,
)
from pipelinekit.errors import ArgumentError, DuplicateEventError, RecordError
from pipelinekit.events import SHARED_TZ, Event, EventBase, record_error, unreadable_number
from pipelinekit.ingestion import Duplicate, IngestReport, Mode, Rejection
from pipelinekit.opportunity import Opportunity, _Draft, begin, fold
from pipelinekit.partitions import partition_of
from pipelinekit.pipeline import Pipeline
from pipelinekit.records import plain_records
from pipelinekit.stages import StageScheme

__all__ = ["CHUNK", "RowStore"]

CHUNK = 16_384
"""Records validated at a time (see :meth:`RowStore.from_records`)."""

_States = Mapping[str, _Draft | Opportunity]


class RowStore:
    """The events of a History as rows in time order, with what replaying them gave.

    Immutable once built. ``final`` (the working states after the last event) and
    ``grouping`` (where each opportunity's events are) come from ingestion; a store
    without them folds its rows in time order when first asked for a snapshot.
    """

    __slots__ = ("_final", "_final_pipeline", "_grouping", "_rows", "_settled", "_times", "scheme")

    def __init__(
        self,
        scheme: StageScheme,
        rows: list[Row],
        *,
        times: list[datetime] | None = None,
        final: _States | None = None,
        grouping: _Grouping | None = None,
        settled: _States | None = None,
    ) -> None:
        self.scheme = scheme
        self._rows = rows
        self._times = [r[AT] for r in rows] if times is None else times
        self._final = final
        self._final_pipeline: Pipeline | None = None
        # where each opportunity's events are (None: work it out by a time-ordered fold)
        self._grouping = grouping
        # for a prefix: the final states of the store it was cut from (see _Grouping.fold)
        self._settled = settled

    # -- construction --------------------------------------------------------------------

    @classmethod
    def of_events(cls, scheme: StageScheme, events: Iterable[Event]) -> RowStore:
        """A store of events known to be legal and in order (no checks, no grouping)."""
        make = RowMaker()
        return cls(scheme, [make(e) for e in events])

    @classmethod
    def from_records(
        cls,
        records: Iterable[Any],
        scheme: StageScheme,
        mode: Mode,
        assume_tz: tzinfo | None,
    ) -> tuple[RowStore, IngestReport]:
        """Validate, de-duplicate, order and replay plain-dict records (see
        ``History.from_records`` for the rules and errors)."""
        raw = records if isinstance(records, list) else list(records)
        context: dict[str, Any] = {"assume_tz": assume_tz, SHARED_TZ: {}}
        rejected: dict[int, RecordError] = {}
        rows: list[Row] = []
        positions: list[int] | None = None  # the records' indices, once one is rejected
        make = RowMaker()
        # Validate in chunks straight into rows (pipelinekit._rows): the validated dicts of
        # a chunk are freed before the next chunk reuses their memory.
        # Missing values and numpy/pandas scalars are made plain first (pipelinekit.records).
        for start in range(0, len(raw), CHUNK):
            chunk = plain_records(raw[start : start + CHUNK])
            try:
                rows += make.from_records(chunk, context)
                if positions is not None:
                    positions += range(start, start + len(chunk))
            except (ValueError, TypeError) as exc:  # ValidationError is a ValueError
                rejected.update(_chunk_errors(exc, chunk, start, make, context))
                if mode == "strict":
                    raise rejected[min(rejected)] from None
                kept = [i for i in range(start, start + len(chunk)) if i not in rejected]
                rows += make.from_records([chunk[i - start] for i in kept], context)
                if positions is None:
                    positions = list(range(start))
                positions += kept
        every = range(len(raw))  # (no list of a million integers when nothing was rejected)
        return cls._build(
            scheme, rows, every if positions is None else positions, raw, rejected, mode
        )

    @classmethod
    def from_events(
        cls, events: Iterable[Event], scheme: StageScheme, mode: Mode
    ) -> tuple[RowStore, IngestReport]:
        """Check, de-duplicate, order and replay event objects (see
        ``History.from_events``)."""
        given = list(events)
        rejected: dict[int, RecordError] = {}
        for i, event in enumerate(given):
            if type(event) not in ROW_CLASSES:
                what = "a subclass of a pipelinekit event" if isinstance(event, EventBase) else ""
                err = RecordError(
                    f"expected an event object, got {type(event).__name__}"
                    + (f" ({what}; use the event classes themselves)" if what else "")
                    + "; use History.from_records for plain dicts",
                    index=i,
                )
                if mode == "strict":
                    raise err
                rejected[i] = err
        positions = [i for i in range(len(given)) if i not in rejected]
        make = RowMaker()
        rows = [make(given[i]) for i in positions]
        return cls._build(scheme, rows, positions, given, rejected, mode)

    @classmethod
    def _build(
        cls,
        scheme: StageScheme,
        validated: list[Row],
        positions: Sequence[int],
        raw: Sequence[object],
        rejected: dict[int, RecordError],
        mode: Mode,
    ) -> tuple[RowStore, IngestReport]:
        strict = mode == "strict"
        duplicates: list[Duplicate] = []
        kept: Sequence[int] = range(len(validated))
        if _repeats_an_event_id(validated):
            first_seen: dict[str, int] = {}
            unique: list[int] = []
            for k, row in enumerate(validated):
                eid = row[EVENT_ID]
                if eid is not None:
                    first = first_seen.setdefault(eid, k)
                    if first != k:
                        if same_event(validated[first], row):
                            duplicates.append(
                                Duplicate(
                                    index=positions[k], event_id=eid, first_index=positions[first]
                                )
                            )
                            continue
                        err = DuplicateEventError(
                            f"event_id {eid!r} was first used by record {positions[first]} "
                            "with different content; an event_id must identify one fact",
                            index=positions[k],
                            event_id=eid,
                            opportunity_id=row[OPPORTUNITY_ID],
                            field="event_id",
                        )
                        if strict:
                            raise err
                        rejected[positions[k]] = err
                        continue
                unique.append(k)
            kept = unique

        # Order by time (ties keep input order), then replay one opportunity at a time in
        # input order: each opportunity's events and working state stay hot in the CPU
        # cache, where a time-ordered replay jumps between all open deals (3x slower at 1M
        # events). Opportunities are independent, so the states and the rejections are
        # exactly those of a time-ordered replay. (In strict mode the first failure met is
        # raised; History then finds the first bad record.)
        times = [validated[k][AT] for k in kept]
        rank: Sequence[int] = range(len(kept))
        kept_in_time: Sequence[int]
        if any(a > b for a, b in pairwise(times)):
            order = sorted(range(len(kept)), key=times.__getitem__)
            kept_in_time = order if isinstance(kept, range) else [kept[j] for j in order]
            times = [times[j] for j in order]
            ranks = [0] * len(kept)
            for position, j in enumerate(order):
                ranks[j] = position
            rank = ranks
        else:
            kept_in_time = kept
        groups: dict[str, list[int]] = {}
        for k, position in zip(kept, rank, strict=True):
            oid = validated[k][OPPORTUNITY_ID]
            group = groups.get(oid)
            if group is None:
                groups[oid] = [position]
            else:
                group.append(position)
        if isinstance(rank, list):  # the input was not in time order: nor may a group be
            for group in groups.values():
                group.sort()
        ordered = [validated[k] for k in kept_in_time]
        states, failed = _replay(ordered, groups.values(), scheme, strict)
        if failed:
            first = min(failed)
            if strict:
                raise failed[first].located(index=positions[kept_in_time[first]]) from None
            for position, exc in failed.items():
                rejected[positions[kept_in_time[position]]] = exc.located(
                    index=positions[kept_in_time[position]]
                )
            renumber = _renumbering(len(ordered), failed)
            applied = [e for p, e in enumerate(ordered) if p not in failed]
            applied_times = [t for p, t in enumerate(times) if p not in failed]
            grouping = _Grouping.of(
                [renumber[p] for p in g if p not in failed] for g in groups.values()
            )
        else:
            applied, applied_times = ordered, times
            grouping = _Grouping.of(groups.values())

        report = IngestReport(
            total=len(raw),
            applied=len(applied),
            duplicates=tuple(sorted(duplicates, key=lambda d: d.index)),
            rejected=tuple(
                Rejection(index=i, record=raw[i], error=rejected[i]) for i in sorted(rejected)
            ),
        )
        store = cls(scheme, applied, times=applied_times, final=states, grouping=grouping)
        return store, report

    # -- views ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> Sequence[Row]:
        """The rows, in time order (ties in input order)."""
        return self._rows

    @property
    def start(self) -> datetime | None:
        """The first event's instant (``None`` when empty)."""
        return self._times[0] if self._times else None

    @property
    def end(self) -> datetime | None:
        """The last event's instant (``None`` when empty)."""
        return self._times[-1] if self._times else None

    def opportunity_ids(self) -> tuple[str, ...]:
        """The opportunities' ids in order of opening."""
        if self._final_pipeline is not None:
            return tuple(self._final_pipeline)
        return tuple(self._states())

    def cut(self, when: datetime) -> int:
        """How many events happened at or before ``when``."""
        return bisect_right(self._times, when)

    def prefix(self, cut: int) -> RowStore:
        """The store of the first ``cut`` events (a prefix of a legal history is legal)."""
        return RowStore(
            self.scheme,
            self._rows[:cut],
            times=self._times[:cut],
            grouping=self._grouping,  # positions past the cut are skipped
            settled=self._settled_states(),
        )

    def select(self, ids: set[str]) -> RowStore:
        """The store of the given opportunities' events."""
        return RowStore(self.scheme, [r for r in self._rows if r[OPPORTUNITY_ID] in ids])

    def split(self, partitions: int) -> list[RowStore]:
        """The events split by :func:`~pipelinekit.partitions.partition_of`."""
        buckets: list[list[Row]] = [[] for _ in range(partitions)]
        owner: dict[str, int] = {}
        for row in self._rows:
            oid = row[OPPORTUNITY_ID]
            k = owner.get(oid)
            if k is None:
                k = owner[oid] = partition_of(oid, partitions)
            buckets[k].append(row)
        return [RowStore(self.scheme, bucket) for bucket in buckets]

    def snapshot(self) -> Pipeline:
        """Every opportunity's state after the last event, built once and kept (the
        working drafts are dropped once frozen)."""
        if self._final_pipeline is None:
            opps = {
                k: d if isinstance(d, Opportunity) else d.freeze()
                for k, d in self._states().items()
            }
            when = self._times[-1] if self._times else datetime.min.replace(tzinfo=UTC)
            self._final_pipeline = Pipeline(self.scheme, when, opps)
            self._final = self._settled = None
        return self._final_pipeline

    def _states(self) -> _States:
        if self._final is None:
            if self._grouping is None:
                self._final = fold(_as_events(self._rows), self.scheme)
            else:
                self._final = self._grouping.fold(self._rows, self.scheme, self._settled)
        return self._final

    def _settled_states(self) -> _States | None:
        """Every opportunity's state after the last event, if known without a replay."""
        if self._final_pipeline is not None:
            return self._final_pipeline._opps
        return self._final


def _chunk_errors(
    exc: Exception, chunk: list[Any], start: int, make: RowMaker, context: dict[str, Any]
) -> dict[int, RecordError]:
    """The bad records of a chunk whose validation failed with ``exc``, by input index.

    A ``TypeError`` comes from a value pydantic-core could not even inspect (a ``datetime``
    subclass whose fields are not numbers, as pandas' ``NaT`` was before it counted as
    missing), a bare ``ValueError`` from an integer too long to convert to text: the chunk
    is then validated one record at a time to find them, and the field to blame is the
    first whose value alone fails that way.
    """
    if isinstance(exc, ValidationError):
        found: dict[int, RecordError] = {}
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            if not loc or not isinstance(loc[0], int):
                raise ArgumentError("records", err["msg"]) from None
            i = start + loc[0]
            if i not in found:
                found[i] = record_error(err, chunk[loc[0]], index=i, loc_offset=1)
        return found
    found = {}
    for k, record in enumerate(chunk):
        try:
            make.from_records([record], context)
        except ValidationError as one:
            found.update(_chunk_errors(one, [record], start + k, make, context))
        except (TypeError, ValueError) as odd:
            huge = unreadable_number(record, index=start + k)
            if huge is not None:
                found[start + k] = huge
                continue
            blamed = [key for key in record if _unreadable(record, key, make, context)]
            found[start + k] = RecordError(
                f"a value that cannot be read ({odd})",
                index=start + k,
                opportunity_id=_text_or_none(record.get("opportunity_id")),
                field=blamed[0] if blamed else None,
            )
    return found


def _unreadable(record: Mapping[str, Any], key: str, make: RowMaker, ctx: dict[str, Any]) -> bool:
    """Whether the value of ``key`` alone, in a record of the same type, raises ``TypeError``
    or a bare ``ValueError`` (any other complaint, such as the required fields now absent,
    is not its fault)."""
    try:
        make.from_records([{"type": record.get("type"), key: record[key]}], ctx)
    except ValidationError:
        return False
    except (TypeError, ValueError):
        return True
    return False


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _replay(
    events: Sequence[Row], groups: Iterable[list[int]], scheme: StageScheme, strict: bool
) -> tuple[dict[str, _Draft], dict[int, RecordError]]:
    """Replay time-ordered ``events`` (rows) one opportunity at a time.

    ``groups`` holds, per opportunity, the positions of its events in ascending order.
    Returns the working states in order of opening and the events that failed, by
    position; in strict mode each opportunity stops at its first failure (the caller
    raises the earliest, the one a time-ordered replay would have met first).
    """
    as_events = _as_events(events)
    states: dict[str, _Draft] = {}
    failed: dict[int, RecordError] = {}
    opened: list[tuple[int, str]] = []
    for group in groups:
        draft: _Draft | None = None
        for position in group:
            event = as_events[position]
            try:
                if draft is None:
                    draft = begin(event, scheme)
                    states[event.opportunity_id] = draft
                    opened.append((position, event.opportunity_id))
                else:
                    draft.apply(event, scheme)
            except RecordError as exc:
                failed[position] = exc
                if strict:
                    break
    opened.sort()
    return {oid: states[oid] for _, oid in opened}, failed


def _as_events(rows: Sequence[Row]) -> Sequence[Event]:
    """Rows typed as the events they stand for (same attribute names and values), so the
    state machine reads them without a conversion or a cast per event."""
    return cast("Sequence[Event]", rows)


def _repeats_an_event_id(rows: list[Row]) -> bool:
    """Whether two rows share an ``event_id`` (a quick check in C before the exact loop)."""
    ids = [row[EVENT_ID] for row in rows]
    distinct = set(ids)
    distinct.discard(None)
    return len(distinct) < len(ids) - ids.count(None)


def _renumbering(size: int, dropped: Mapping[int, object]) -> list[int]:
    """Each position's new position once the ``dropped`` ones are taken out."""
    renumber = [0] * size
    gone = 0
    for position in range(size):
        if position in dropped:
            gone += 1
        renumber[position] = position - gone
    return renumber


class _Grouping:
    """Where each opportunity's events are in a store, for replays that go one
    opportunity at a time (see :func:`_replay`): ``positions`` holds every opportunity's
    event positions in ascending order, opportunities one after another (in input order,
    which is usually memory order), and ``ends`` where each opportunity's run ends.
    Compact: two arrays of machine integers.
    """

    __slots__ = ("ends", "positions")

    def __init__(self, positions: array[int], ends: array[int]) -> None:
        self.positions = positions
        self.ends = ends

    @classmethod
    def of(cls, groups: Iterable[Iterable[int]]) -> _Grouping:
        positions: array[int] = array("q")
        ends: array[int] = array("q")
        for group in groups:
            positions.extend(group)
            if len(positions) > (ends[-1] if ends else 0):  # none left: all rejected
                ends.append(len(positions))
        return cls(positions, ends)

    def fold(
        self,
        events: Sequence[Row],
        scheme: StageScheme,
        settled: _States | None = None,
    ) -> dict[str, _Draft | Opportunity]:
        """Replay the legal ``events`` (rows, a prefix of the grouped ones: later
        positions are skipped) into working states, in order of opening.

        ``settled``, the final states of the whole grouped store, stands in for the
        replay of every opportunity whose events all lie inside the prefix: its state
        is the same object, neither replayed nor frozen again.
        """
        cut = len(events)
        as_events = _as_events(events)
        positions = self.positions
        states: dict[str, _Draft | Opportunity] = {}
        opened: list[tuple[int, str]] = []
        start = 0
        for end in self.ends:
            first = positions[start]
            if first < cut:
                oid = events[first][OPPORTUNITY_ID]
                if settled is not None and positions[end - 1] < cut:
                    states[oid] = settled[oid]
                else:
                    draft = begin(as_events[first], scheme)
                    for position in positions[start + 1 : end]:
                        if position >= cut:
                            break
                        draft.apply(as_events[position], scheme)
                    states[oid] = draft
                opened.append((first, oid))
            start = end
        opened.sort()
        return {oid: states[oid] for _, oid in opened}
