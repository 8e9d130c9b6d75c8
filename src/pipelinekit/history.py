"""History: every event of many opportunities under one scheme, validated and in order.

The single source of truth: every state, report and forecast is derived from it.
:meth:`History.from_records` validates plain-dict records in bulk, de-duplicates them by
``event_id``, orders them by time (ties keep input order) and replays them through the
state machine, so a History only ever holds events that are legal together.

- ``history.as_of(t)`` gives the :class:`Pipeline` (every opportunity's state at ``t``).
- ``history.until(t)`` gives a History without the events after ``t``: no look-ahead.

Example:
    >>> import pipelinekit as pk
    >>> scheme = pk.schemes.get("salesforce")
    >>> records = [
    ...     {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00+00:00",
    ...      "stage": "prospecting", "amount": "12000.00", "currency": "USD"},
    ...     {"type": "stage_changed", "opportunity_id": "o-1",
    ...      "at": "2024-02-01T10:00:00+00:00", "stage": "proposal-price-quote"},
    ... ]
    >>> history = pk.History.from_records(records, scheme=scheme)
    >>> opp = history.as_of("2024-01-31T00:00:00+00:00")["o-1"]
    >>> opp.stage, opp.weighted_amount
    ('prospecting', Decimal('1200.00'))
    >>> history.as_of("2024-03-01T00:00:00+00:00")["o-1"].stage
    'proposal-price-quote'
"""

from __future__ import annotations

import gc
from array import array
from bisect import bisect_right
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from itertools import pairwise
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from pipelinekit._rows import (
    AT,
    EVENT_ID,
    OPPORTUNITY_ID,
    ROW_CLASSES,
    Row,
    RowMaker,
    event_of,
    same_event,
)
from pipelinekit._time import Instant, instant
from pipelinekit.calculators import partition_of
from pipelinekit.errors import (
    ArgumentError,
    CurrencyError,
    DuplicateEventError,
    PipelineError,
    RecordError,
)
from pipelinekit.events import SHARED_TZ, Event, EventBase, record_error
from pipelinekit.opportunity import Opportunity, _Draft, begin, fold
from pipelinekit.records import plain_records
from pipelinekit.results import html_table, records_to_pandas
from pipelinekit.stages import StageScheme

__all__ = [
    "Duplicate",
    "History",
    "IngestReport",
    "Pipeline",
    "Rejection",
    "UnknownOpportunityError",
]

Mode = Literal["strict", "lenient"]
_CHUNK = 16_384  # records validated at a time (see History._ingest)


@contextmanager
def _bulk_work() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk ingestion and replay.

    Ingestion creates millions of small acyclic objects (events, drafts, snapshots); the
    cyclic collector finds nothing to free among them, yet each of its full passes walks
    the whole heap, the caller's records included. Measured at 200k events it more than
    doubled the time of ``from_records`` (see docs/performance.md). Reference counting
    still frees everything as usual; only the cycle detector waits, and the caller's
    setting is restored on exit (if it was already disabled, it stays disabled).

    On exit the objects created meanwhile are moved to the oldest generation first
    (``gc.freeze()`` then ``gc.unfreeze()``, which splices lists and walks nothing).
    Otherwise they would all still count as young, and the first allocation after
    ``gc.enable()`` would run a young collection over every one of them: about 1 s after
    ingesting 1M events. Cycles among them are still found, by the next full collection.
    The move is skipped when the caller keeps objects frozen (``gc.get_freeze_count()``):
    unfreezing would hand those back to the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


class Rejection(BaseModel):
    """A record set aside in lenient mode, with the error that explains why."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    index: int
    record: Any
    error: RecordError

    @property
    def reason(self) -> str:
        """What is wrong with the record."""
        return self.error.reason

    @property
    def field(self) -> str | None:
        """The offending field, when one field is to blame."""
        return self.error.field


class Duplicate(BaseModel):
    """A record whose ``event_id`` and content repeat an earlier record's."""

    model_config = ConfigDict(frozen=True)

    index: int
    event_id: str
    first_index: int


class IngestReport(BaseModel):
    """How the records of a History were accounted for.

    Every input record is exactly one of: applied, a duplicate, or rejected, so
    ``applied + len(duplicates) + len(rejected) == total`` always holds.

    Example:
        >>> import pipelinekit as pk
        >>> h = pk.History.from_records(
        ...     [{"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
        ...       "stage": "prospecting", "event_id": "e1"},
        ...      {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
        ...       "stage": "prospecting", "event_id": "e1"},
        ...      {"type": "stage_changed", "opportunity_id": "o-2",
        ...       "at": "2024-01-06T10:00:00Z", "stage": "closed-won"}],
        ...     scheme=pk.schemes.get("salesforce"), mode="lenient")
        >>> r = h.ingest
        >>> r.total, r.applied, len(r.duplicates), len(r.rejected)
        (3, 1, 1, 1)
        >>> r.rejected[0].index, r.rejected[0].error.rule
        (2, 'not-opened')
    """

    model_config = ConfigDict(frozen=True)

    total: int
    applied: int
    duplicates: tuple[Duplicate, ...] = ()
    rejected: tuple[Rejection, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """One row per record set aside: index, status, field and reason."""
        rows: list[dict[str, Any]] = [
            {
                "index": d.index,
                "status": "duplicate",
                "field": "event_id",
                "reason": f"repeats record {d.first_index} (event_id {d.event_id!r})",
            }
            for d in self.duplicates
        ]
        rows += [
            {"index": r.index, "status": "rejected", "field": r.field, "reason": r.reason}
            for r in self.rejected
        ]
        return sorted(rows, key=lambda row: row["index"])

    def _repr_html_(self) -> str:
        title = (
            f"{self.total} records: {self.applied} applied, {len(self.duplicates)} "
            f"duplicates, {len(self.rejected)} rejected"
        )
        return html_table(self.to_records(), title=title)

    @property
    def accounted(self) -> bool:
        """True when every record is applied, duplicate or rejected (always, by design)."""
        return self.applied + len(self.duplicates) + len(self.rejected) == self.total


class UnknownOpportunityError(PipelineError, KeyError):
    """A pipeline was asked for an opportunity it does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class History:
    """All events of many opportunities under one scheme, validated and in time order.

    Build it with :meth:`from_records` (plain dicts) or :meth:`from_events`; it is
    immutable. Iterating yields the events in order.

    It keeps its events compactly, as rows (one tuple of field values each, see
    ``pipelinekit._rows``), and builds the event models of :attr:`events` only when they
    are first asked for; reports and forecasts that work on snapshots never need them.

    Attributes:
        scheme: the stage scheme the events were checked against.
        ingest: how the input records were accounted for.
    """

    __slots__ = (
        "_events",
        "_final",
        "_final_pipeline",
        "_grouping",
        "_prefix",
        "_rows",
        "_settled",
        "_times",
        "ingest",
        "scheme",
    )

    scheme: StageScheme
    ingest: IngestReport

    def __init__(
        self,
        *,
        scheme: StageScheme,
        events: Iterable[Event] = (),
        ingest: IngestReport,
        _rows: list[Row] | None = None,
        _times: list[datetime] | None = None,
        _final: Mapping[str, _Draft | Opportunity] | None = None,
        _grouping: _Grouping | None = None,
        _settled: Mapping[str, _Draft | Opportunity] | None = None,
    ) -> None:
        self.scheme = scheme
        if _rows is None:
            make = RowMaker()
            _rows = [make(e) for e in events]
        self._rows = _rows
        self._events: tuple[Event, ...] | None = None
        self.ingest = ingest
        self._times = [r[AT] for r in _rows] if _times is None else _times
        self._final = _final
        self._final_pipeline: Pipeline | None = None
        # where each opportunity's events are (None: work it out by a time-ordered fold)
        self._grouping = _grouping
        # for a prefix: the final states of the history it was cut from (see _Grouping.fold)
        self._settled = _settled
        # the last prefix asked of until(): calculators at one as_of share its snapshot
        self._prefix: History | None = None

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        scheme: StageScheme,
        mode: Mode = "strict",
        assume_tz: tzinfo | None = None,
    ) -> History:
        """Validate, de-duplicate, order and replay plain-dict records.

        Args:
            records: the records (see the record format in ``docs/concepts.md``).
            scheme: the stage scheme every move is checked against.
            mode: ``"strict"`` raises at the first bad record; ``"lenient"`` sets bad
                records aside and reports each in :attr:`ingest`.
            assume_tz: the zone for timestamps that carry none (else they are an error).

        Raises:
            RecordError: (strict mode) a malformed record, naming its index, ``event_id``,
                ``opportunity_id`` and field; a :class:`~pipelinekit.errors.TransitionError`
                for an illegal move, a :class:`~pipelinekit.errors.DuplicateEventError` for
                an ``event_id`` reused with different content.
        """
        _check_mode(mode)
        _check_scheme(scheme)
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
            raise ArgumentError(
                "records", f"expected an iterable of record dicts, got {type(records).__name__}"
            )
        with _bulk_work():
            return cls._ingest(records, scheme, mode, assume_tz)

    @classmethod
    def _ingest(
        cls,
        records: Iterable[Mapping[str, Any]],
        scheme: StageScheme,
        mode: Mode,
        assume_tz: tzinfo | None,
    ) -> History:
        raw = records if isinstance(records, list) else list(records)
        context: dict[str, Any] = {"assume_tz": assume_tz, SHARED_TZ: {}}
        rejected: dict[int, RecordError] = {}
        rows: list[Row] = []
        positions: list[int] | None = None  # the records' indices, once one is rejected
        make = RowMaker()
        # Validate in chunks straight into rows (pipelinekit._rows): the validated dicts of
        # a chunk are freed before the next chunk reuses their memory.
        # Missing values and numpy/pandas scalars are made plain first (pipelinekit.records).
        for start in range(0, len(raw), _CHUNK):
            chunk = plain_records(raw[start : start + _CHUNK])
            try:
                rows += make.from_records(chunk, context)
                if positions is not None:
                    positions += range(start, start + len(chunk))
            except (ValidationError, TypeError) as exc:
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
        cls, events: Iterable[Event], *, scheme: StageScheme, mode: Mode = "strict"
    ) -> History:
        """Build a History from event objects (same checks as :meth:`from_records`).

        Example:
            >>> import pipelinekit as pk
            >>> from pipelinekit.events import Opened
            >>> h = pk.History.from_events(
            ...     [Opened(opportunity_id="o-1", at="2024-01-05T10:00:00Z", stage="lead")],
            ...     scheme=pk.schemes.get("seed-004"))
            >>> len(h), h.opportunity_ids
            (1, ('o-1',))
        """
        _check_mode(mode)
        _check_scheme(scheme)
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
        with _bulk_work():
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
    ) -> History:
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
        # events). Opportunities are independent, so the states, the rejections and (in
        # strict mode) the first error in time order are exactly those of a time-ordered
        # replay.
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
        return cls(
            scheme=scheme,
            _rows=applied,
            ingest=report,
            _times=applied_times,
            _final=states,
            _grouping=grouping,
        )

    # -- views ---------------------------------------------------------------------------

    @property
    def events(self) -> tuple[Event, ...]:
        """The applied events, ordered by time (ties keep input order).

        Built from the rows the first time it is read, then kept: reading it costs the
        memory of one pydantic model per event (about 1 KB each). Iterating over the
        History (``for event in history``) builds them one at a time and keeps none.

        Example:
            >>> from pipelinekit import demo
            >>> h = demo.demo_history(opportunities=3, seed=1)
            >>> type(h.events[0]).__name__, h.events is h.events
            ('Opened', True)
            >>> list(h) == list(h.events)
            True
        """
        if self._events is None:
            self._events = tuple(map(event_of, self._rows))
        return self._events

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Event]:
        """The events in order; built one at a time (and not kept) unless :attr:`events`
        was read already, so iterating over a large History costs no memory."""
        if self._events is not None:
            return iter(self._events)
        return map(event_of, self._rows)

    def __repr__(self) -> str:
        span = ""
        if self._rows:
            span = f", {self._times[0].isoformat()} .. {self._times[-1].isoformat()}"
        return (
            f"<History scheme={self.scheme.name!r}: {len(self._rows)} events, "
            f"{len(self.opportunity_ids)} opportunities{span}>"
        )

    @property
    def start(self) -> datetime | None:
        """When the first event happened (``None`` for an empty history)."""
        return self._times[0] if self._times else None

    @property
    def end(self) -> datetime | None:
        """When the last event happened (``None`` for an empty history)."""
        return self._times[-1] if self._times else None

    @property
    def opportunity_ids(self) -> tuple[str, ...]:
        """Ids of the opportunities in the history, in order of opening."""
        if self._final_pipeline is not None:
            return tuple(self._final_pipeline)
        return tuple(self._states())

    def to_records(self) -> list[dict[str, Any]]:
        """The applied events as plain JSON-ready dicts, in order (a lossless round trip).

        Example:
            >>> import pipelinekit as pk
            >>> recs = [{"type": "opened", "opportunity_id": "o-1", "stage": "lead",
            ...          "at": "2024-01-05T10:00:00+00:00"}]
            >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("seed-004"))
            >>> h2 = pk.History.from_records(h.to_records(), scheme=h.scheme)
            >>> h2.events == h.events
            True
        """
        return [e.model_dump(mode="json") for e in self]  # events built one at a time

    def until(self, t: Instant) -> History:
        """The history without events after ``t`` (events at exactly ``t`` are kept).

        This is how calculators avoid look-ahead. Every prefix of a legal history is
        legal, so nothing is re-checked. The last prefix asked for is kept (with its
        snapshot, once built), so several calculators at one ``as_of`` replay it once.
        """
        cut = bisect_right(self._times, instant(t, argument="t"))
        if cut == len(self._rows):
            return self
        prefix = self._prefix
        if prefix is None or len(prefix) != cut:
            prefix = self._prefix = History(
                scheme=self.scheme,
                _rows=self._rows[:cut],
                ingest=IngestReport(total=cut, applied=cut),
                _times=self._times[:cut],
                _grouping=self._grouping,  # positions past the cut are skipped
                _settled=self._settled_states(),
            )
        return prefix

    def as_of(self, t: Instant) -> Pipeline:
        """The pipeline at ``t``: every opportunity opened at or before ``t``, in its state
        from the events at or before ``t``.
        """
        when = instant(t, argument="t")
        with _bulk_work():
            return self.until(when)._final_snapshot().at(when)

    def for_opportunities(self, ids: Iterable[str]) -> History:
        """The sub-history of the given opportunities (for partitioned computation).

        Example:
            >>> import pipelinekit as pk
            >>> recs = [{"type": "opened", "opportunity_id": o, "stage": "lead",
            ...          "at": "2024-01-05T10:00:00+00:00"} for o in ("a", "b", "c")]
            >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("seed-004"))
            >>> h.for_opportunities({"a", "c"}).opportunity_ids
            ('a', 'c')
        """
        wanted = set(ids)
        picked = [r for r in self._rows if r[OPPORTUNITY_ID] in wanted]
        return History(
            scheme=self.scheme,
            _rows=picked,
            ingest=IngestReport(total=len(picked), applied=len(picked)),
        )

    def partition(self, partitions: int) -> tuple[History, ...]:
        """Split into ``partitions`` histories by opportunity (see
        :func:`~pipelinekit.calculators.partition_of`); every opportunity's events stay
        together, so mergeable results computed per part merge into the whole.

        Example:
            >>> from pipelinekit import demo
            >>> h = demo.demo_history(opportunities=20, seed=2)
            >>> parts = h.partition(3)
            >>> sum(len(p) for p in parts) == len(h)
            True
        """
        partition_of("", partitions)  # validates the count even for an empty history
        buckets: list[list[Row]] = [[] for _ in range(partitions)]
        owner: dict[str, int] = {}
        for row in self._rows:
            oid = row[OPPORTUNITY_ID]
            k = owner.get(oid)
            if k is None:
                k = owner[oid] = partition_of(oid, partitions)
            buckets[k].append(row)
        return tuple(
            History(
                scheme=self.scheme,
                _rows=bucket,
                ingest=IngestReport(total=len(bucket), applied=len(bucket)),
            )
            for bucket in buckets
        )

    def _states(self) -> Mapping[str, _Draft | Opportunity]:
        if self._final is None:
            if self._grouping is None:
                self._final = fold(_as_events(self._rows), self.scheme)
            else:
                self._final = self._grouping.fold(self._rows, self.scheme, self._settled)
        return self._final

    def _settled_states(self) -> Mapping[str, _Draft | Opportunity] | None:
        """Every opportunity's state after the last event, if known without a replay."""
        if self._final_pipeline is not None:
            return self._final_pipeline._opps
        return self._final

    def _final_snapshot(self) -> Pipeline:
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


class Pipeline(Mapping[str, Opportunity]):
    """A snapshot: every opportunity's state at one instant, keyed by id.

    Attributes:
        scheme: the scheme of the history it came from.
        as_of: the instant of the snapshot.

    Example:
        >>> import pipelinekit as pk
        >>> recs = [
        ...   {"type": "opened", "opportunity_id": "a", "stage": "prospecting",
        ...    "at": "2024-01-05T10:00:00Z", "amount": "1000", "currency": "USD"},
        ...   {"type": "opened", "opportunity_id": "b", "stage": "negotiation-review",
        ...    "at": "2024-01-06T10:00:00Z", "amount": "2000", "currency": "USD"},
        ...   {"type": "stage_changed", "opportunity_id": "a", "stage": "closed-lost",
        ...    "at": "2024-01-07T10:00:00Z"}]
        >>> pipe = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce")).as_of(
        ...     "2024-02-01T00:00:00Z")
        >>> len(pipe), list(pipe.open()), list(pipe.lost())
        (2, ['b'], ['a'])
        >>> pipe.total_amount(), pipe.weighted_total()
        (Decimal('2000'), Decimal('1800'))
    """

    __slots__ = ("_opps", "as_of", "scheme")

    def __init__(self, scheme: StageScheme, as_of: datetime, opportunities: dict[str, Opportunity]):
        self.scheme = scheme
        self.as_of = as_of
        self._opps = opportunities

    def at(self, when: datetime) -> Pipeline:
        """The same states labelled with another instant (no events in between)."""
        return Pipeline(self.scheme, when, self._opps)

    def __getitem__(self, opportunity_id: str) -> Opportunity:
        try:
            return self._opps[opportunity_id]
        except KeyError:
            raise UnknownOpportunityError(
                f"no opportunity {opportunity_id!r} at {self.as_of.isoformat()} "
                f"({len(self._opps)} opportunities are known then)"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._opps)

    def __len__(self) -> int:
        return len(self._opps)

    def __contains__(self, key: object) -> bool:
        return key in self._opps

    # the dict's own views: Mapping's would look every value up through __getitem__
    def keys(self) -> KeysView[str]:
        return self._opps.keys()

    def values(self) -> ValuesView[Opportunity]:
        return self._opps.values()

    def items(self) -> ItemsView[str, Opportunity]:
        return self._opps.items()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return (
            self.as_of == other.as_of and self.scheme == other.scheme and self._opps == other._opps
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<Pipeline as_of={self.as_of.isoformat()}: {len(self)} opportunities, "
            f"{sum(1 for o in self.values() if o.is_open)} open>"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One row per opportunity: stage, amount, probability, weighted amount, dates.

        Example:
            >>> from pipelinekit import demo
            >>> pipe = demo.demo_history(opportunities=3, seed=1).as_of("2024-12-31T00:00:00Z")
            >>> sorted(pipe.to_records()[0])[:5]
            ['account', 'amount', 'closed_at', 'currency', 'expected_close']
        """
        rows = []
        for o in self._opps.values():
            rows.append(
                {
                    "opportunity_id": o.id,
                    "name": o.name,
                    "stage": o.stage,
                    "outcome": None if o.outcome is None else o.outcome.value,
                    "amount": o.amount,
                    "currency": o.currency,
                    "probability": o.probability,
                    "weighted_amount": o.weighted_amount,
                    "expected_close": o.expected_close,
                    "owner": o.owner,
                    "account": o.account,
                    "product": o.product,
                    "source": o.source,
                    "opened_at": o.opened_at,
                    "stage_entered_at": o.stage_entered_at,
                    "closed_at": o.closed_at,
                    "next_action_due": None if o.next_action is None else o.next_action.due,
                }
            )
        return rows

    def _repr_html_(self) -> str:
        title = f"Pipeline as of {self.as_of.isoformat(sep=' ')} ({len(self)} opportunities)"
        return html_table(self.to_records(), title=title)

    def to_pandas(self, *, money: Literal["decimal", "float"] = "decimal") -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame (needs pandas)."""
        return records_to_pandas(self.to_records(), money=money)

    def _subset(self, keep: Any) -> Pipeline:
        return Pipeline(self.scheme, self.as_of, {k: o for k, o in self._opps.items() if keep(o)})

    def open(self) -> Pipeline:
        """The opportunities that are neither won nor lost."""
        return self._subset(lambda o: o.is_open)

    def won(self) -> Pipeline:
        """The won opportunities."""
        return self._subset(lambda o: o.is_won)

    def lost(self) -> Pipeline:
        """The lost opportunities."""
        return self._subset(lambda o: o.is_lost)

    def currencies(self) -> frozenset[str]:
        """The currencies of the opportunities that have an amount."""
        return frozenset(o.currency for o in self.values() if o.amount is not None and o.currency)

    def total_amount(self) -> Decimal:
        """Sum of the open opportunities' amounts (those without an amount add nothing).

        Raises:
            CurrencyError: the open opportunities are in more than one currency.
        """
        opps = [o for o in self.values() if o.is_open and o.amount is not None]
        _single_currency(opps)
        return sum((o.amount for o in opps if o.amount is not None), Decimal(0))

    def weighted_total(self) -> Decimal:
        """Sum of the open opportunities' weighted amounts (amount x probability / 100).

        Raises:
            CurrencyError: the open opportunities are in more than one currency.
            ArgumentError: an open opportunity with an amount has no probability (its
                stage has no weight and no override is set).
        """
        opps = [o for o in self.values() if o.is_open and o.amount is not None]
        _single_currency(opps)
        total = Decimal(0)
        for o in opps:
            weighted = o.weighted_amount
            if weighted is None:
                raise ArgumentError(
                    "scheme",
                    f"opportunity {o.id!r} at stage {o.stage!r} has no probability: the "
                    "stage has no weight and no override is set; weighted totals are "
                    "unavailable",
                )
            total += weighted
        return total


def _single_currency(opps: list[Opportunity]) -> None:
    currencies = {o.currency for o in opps}
    if len(currencies) > 1:
        shown = sorted(c or "<none>" for c in currencies)
        raise CurrencyError(
            f"open opportunities are in several currencies {shown}; convert with FxRates "
            "to a reporting currency before adding amounts"
        )


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
    """Where each opportunity's events are in a History, for replays that go one
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
        settled: Mapping[str, _Draft | Opportunity] | None = None,
    ) -> dict[str, _Draft | Opportunity]:
        """Replay the legal ``events`` (rows, a prefix of the grouped ones: later
        positions are skipped) into working states, in order of opening.

        ``settled``, the final states of the whole grouped history, stands in for the
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


def _chunk_errors(
    exc: Exception, chunk: list[Any], start: int, make: RowMaker, context: dict[str, Any]
) -> dict[int, RecordError]:
    """The bad records of a chunk whose validation failed with ``exc``, by input index.

    A ``TypeError`` comes from a value pydantic-core could not even inspect (a ``datetime``
    subclass whose fields are not numbers, as pandas' ``NaT`` was before it counted as
    missing): the chunk is then validated one record at a time to find it, and the field to
    blame is the first whose removal lets the record through.
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
        except TypeError as odd:
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
    (any other complaint, such as the required fields now absent, is not its fault)."""
    try:
        make.from_records([{"type": record.get("type"), key: record[key]}], ctx)
    except TypeError:
        return True
    except ValidationError:
        return False
    return False


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _check_mode(mode: str) -> None:
    if mode not in ("strict", "lenient"):
        raise ArgumentError("mode", f"expected 'strict' or 'lenient', got {mode!r}")


def _check_scheme(scheme: object) -> None:
    if not isinstance(scheme, StageScheme):
        raise ArgumentError(
            "scheme",
            f"expected a StageScheme, got {type(scheme).__name__}; build one with "
            "StageScheme.model_validate(...) or pipelinekit.schemes.get(name)",
        )
