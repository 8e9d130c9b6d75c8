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

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, tzinfo
from typing import Any

from pipelinekit._rows import event_of
from pipelinekit._time import Instant, instant, time_zone
from pipelinekit.engine import FrameKind, Store, bulk_work, ingest_frame, ingest_records
from pipelinekit.engine.reference import RowStore
from pipelinekit.errors import ArgumentError, RecordError
from pipelinekit.events import Event
from pipelinekit.ingestion import (
    Duplicate,
    IngestReport,
    Mode,
    Rejection,
    check_mode,
    check_scheme,
)
from pipelinekit.partitions import partition_of
from pipelinekit.pipeline import Pipeline, UnknownOpportunityError
from pipelinekit.results import text_table
from pipelinekit.stages import StageScheme

__all__ = [
    "Duplicate",
    "History",
    "IngestReport",
    "Pipeline",
    "Rejection",
    "UnknownOpportunityError",
]


class History:
    """All events of many opportunities under one scheme, validated and in time order.

    Build it with :meth:`from_records` (plain dicts) or :meth:`from_events`; it is
    immutable. Iterating yields the events in order.

    A thin facade over the store its engine built (:mod:`pipelinekit.engine`): the
    reference engine keeps the events compactly, as rows (one tuple of field values each,
    see ``pipelinekit._rows``). The event models of :attr:`events` are built only when they
    are first asked for; reports and forecasts that work on snapshots never need them.

    Attributes:
        scheme: the stage scheme the events were checked against.
        ingest: how the input records were accounted for.
    """

    __slots__ = ("_events", "_prefix", "_store", "ingest", "scheme")

    scheme: StageScheme
    ingest: IngestReport

    def __init__(
        self,
        *,
        scheme: StageScheme,
        events: Iterable[Event] = (),
        ingest: IngestReport,
        _store: Store | None = None,
    ) -> None:
        self.scheme = scheme
        self._store: Store = RowStore.of_events(scheme, events) if _store is None else _store
        self._events: tuple[Event, ...] | None = None
        self.ingest = ingest
        # the last prefix asked of until(): calculators at one as_of share its snapshot
        self._prefix: History | None = None

    @classmethod
    def _of(cls, store: Store) -> History:
        """A History of a store whose every event counts as a record applied."""
        n = len(store)
        return cls(scheme=store.scheme, ingest=IngestReport(total=n, applied=n), _store=store)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        scheme: StageScheme,
        mode: Mode = "strict",
        assume_tz: tzinfo | str | None = None,
    ) -> History:
        """Validate, de-duplicate, order and replay plain-dict records.

        Args:
            records: the records (see the record format in ``docs/concepts.md``).
            scheme: the stage scheme every move is checked against.
            mode: ``"strict"`` raises the error of the first bad record (the lowest index
                among the records lenient mode would set aside); ``"lenient"`` sets bad
                records aside and reports each in :attr:`ingest`.
            assume_tz: the zone for timestamps that carry none (else they are an error):
                a ``tzinfo`` or an IANA name such as ``"Europe/Warsaw"``.

        Raises:
            RecordError: (strict mode) a malformed record, naming its index, ``event_id``,
                ``opportunity_id`` and field; a :class:`~pipelinekit.errors.TransitionError`
                for an illegal move, a :class:`~pipelinekit.errors.DuplicateEventError` for
                an ``event_id`` reused with different content.
            ArgumentError: ``records``, ``scheme``, ``mode`` or ``assume_tz`` is not what
                it should be.

        Example:
            >>> import pipelinekit as pk
            >>> try:
            ...     pk.History.from_records([
            ...         {"type": "stage_changed", "opportunity_id": "o-1", "stage": "won",
            ...          "at": "2024-01-02T00:00:00Z"},
            ...         {"type": "opened", "opportunity_id": "o-2", "stage": "lead",
            ...          "at": "2024-01-01T00:00:00Z", "amount": "-5"}],
            ...         scheme=pk.schemes.get("vtiger-lead-funnel"))
            ... except pk.RecordError as err:
            ...     print(err.index, err.field)
            0 opportunity_id
        """
        check_mode(mode)
        check_scheme(scheme)
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
            raise ArgumentError(
                "records", f"expected an iterable of record dicts, got {type(records).__name__}"
            )
        zone = time_zone(assume_tz, argument="assume_tz")
        raw = records if isinstance(records, list) else list(records)
        with bulk_work():
            store, report = _first_bad_record_raised(
                lambda how: ingest_records(raw, scheme, how, zone), mode
            )
        return cls(scheme=scheme, ingest=report, _store=store)

    @classmethod
    def from_polars(
        cls,
        frame: Any,
        *,
        scheme: StageScheme,
        mode: Mode = "strict",
        assume_tz: tzinfo | str | None = None,
    ) -> History:
        """Build a History from a polars DataFrame: one row per record, one column per
        field of the record format (``type``, ``opportunity_id``, ``at``...).

        The same rules as :meth:`from_records` for the rows as records (every column a key
        of every row; a null is a missing value: ``None`` for a field of the row's type,
        ignored for another). Columns may be strings, or typed: ``at`` a tz-aware
        datetime, dates as dates, amounts and probabilities as integers, floats or
        decimals (a float counts as the number its ``repr`` shows, as in a record).
        With the ``fast`` extra the columns are checked as columns; what the columnar
        engine cannot prove valid goes through the reference engine, which names the
        bad row (its position in the frame) and field.

        Example:
            >>> import polars as pl
            >>> import pipelinekit as pk
            >>> frame = pl.DataFrame({
            ...     "type": ["opened", "stage_changed"], "opportunity_id": ["o-1", "o-1"],
            ...     "at": ["2024-01-05T10:00:00Z", "2024-02-01T10:00:00Z"],
            ...     "stage": ["prospecting", "closed-won"], "amount": [1200.5, None]})
            >>> h = pk.History.from_polars(frame, scheme=pk.schemes.get("salesforce"))
            >>> h.as_of("2024-03-01T00:00:00Z")["o-1"].amount
            Decimal('1200.5')
        """
        return cls._from_frame(frame, "polars", "polars", scheme, mode, assume_tz)

    @classmethod
    def from_pandas(
        cls,
        frame: Any,
        *,
        scheme: StageScheme,
        mode: Mode = "strict",
        assume_tz: tzinfo | str | None = None,
    ) -> History:
        """Build a History from a pandas DataFrame (as :meth:`from_polars`: NaN, NaT and
        ``pd.NA`` are missing values; the index is ignored, errors name row positions).

        With the ``fast`` extra (polars and pyarrow) the columns are checked as columns;
        without it the rows are read column by column into records for the reference
        engine: correct, and several times slower on large frames (see
        ``docs/performance.md``).

        Example:
            >>> import pandas as pd
            >>> import pipelinekit as pk
            >>> frame = pd.DataFrame({
            ...     "type": ["opened"], "opportunity_id": ["o-1"],
            ...     "at": pd.to_datetime(["2024-01-05T10:00:00Z"]), "stage": ["prospecting"],
            ...     "amount": [1200.0]})
            >>> h = pk.History.from_pandas(frame, scheme=pk.schemes.get("salesforce"))
            >>> h.as_of("2024-03-01T00:00:00Z")["o-1"].amount
            Decimal('1200.0')
        """
        return cls._from_frame(frame, "pandas", "pandas", scheme, mode, assume_tz)

    @classmethod
    def from_arrow(
        cls,
        table: Any,
        *,
        scheme: StageScheme,
        mode: Mode = "strict",
        assume_tz: tzinfo | str | None = None,
    ) -> History:
        """Build a History from a pyarrow Table (as :meth:`from_polars`).

        Example:
            >>> import pyarrow as pa
            >>> import pipelinekit as pk
            >>> table = pa.table({"type": ["opened"], "opportunity_id": ["o-1"],
            ...     "at": ["2024-01-05T10:00:00Z"], "stage": ["prospecting"]})
            >>> pk.History.from_arrow(table, scheme=pk.schemes.get("salesforce")).opportunity_ids
            ('o-1',)
        """
        return cls._from_frame(table, "arrow", "pyarrow", scheme, mode, assume_tz)

    @classmethod
    def _from_frame(
        cls,
        frame: Any,
        kind: FrameKind,
        library: str,
        scheme: StageScheme,
        mode: Mode,
        assume_tz: tzinfo | str | None,
    ) -> History:
        check_mode(mode)
        check_scheme(scheme)
        expected = {"polars": "DataFrame", "pandas": "DataFrame", "pyarrow": "Table"}[library]
        kind_of = type(frame)
        if kind_of.__module__.partition(".")[0] != library or kind_of.__name__ != expected:
            raise ArgumentError("frame", f"expected a {library} {expected}, got {kind_of.__name__}")
        zone = time_zone(assume_tz, argument="assume_tz")
        with bulk_work():
            store, report = _first_bad_record_raised(
                lambda how: ingest_frame(frame, kind, scheme, how, zone), mode
            )
        return cls(scheme=scheme, ingest=report, _store=store)

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
            ...     scheme=pk.schemes.get("vtiger-lead-funnel"))
            >>> len(h), h.opportunity_ids
            (1, ('o-1',))
        """
        check_mode(mode)
        check_scheme(scheme)
        given = list(events)
        with bulk_work():
            store, report = _first_bad_record_raised(
                lambda how: RowStore.from_events(given, scheme, how), mode
            )
        return cls(scheme=scheme, ingest=report, _store=store)

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
            self._events = tuple(map(event_of, self._store.rows()))
        return self._events

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[Event]:
        """The events in order; built one at a time (and not kept) unless :attr:`events`
        was read already, so iterating over a large History costs no memory."""
        if self._events is not None:
            return iter(self._events)
        return map(event_of, self._store.rows())

    def __repr__(self) -> str:
        span = ""
        start, end = self._store.start, self._store.end
        if start is not None and end is not None:
            span = f", {start.isoformat()} .. {end.isoformat()}"
        return (
            f"<History scheme={self.scheme.name!r}: {len(self._store)} events, "
            f"{len(self.opportunity_ids)} opportunities{span}>"
        )

    def __str__(self) -> str:
        """A short text table: the span, the ingest counts, and the opportunities per stage
        after the last event.

        Example:
            >>> from pipelinekit import demo
            >>> print(demo.demo_history(opportunities=12, seed=1))
            History (scheme 'salesforce'): 89 events, 12 opportunities, 2024-01-30 .. 2024-12-25
            ingest: 89 records: 89 applied, 0 duplicates, 0 rejected
            stage                 outcome  opportunities
            --------------------  -------  -------------
            qualification                              1
            proposal-price-quote                       2
            closed-won            won                  3
            closed-lost           lost                 6
        """
        start, end = self.start, self.end
        span = "" if start is None or end is None else f", {start.date()} .. {end.date()}"
        head = (
            f"History (scheme {self.scheme.name!r}): {len(self)} events, "
            f"{len(self.opportunity_ids)} opportunities{span}\n"
            f"ingest: {self.ingest._title()}"
        )
        if end is None:
            return head
        counts: dict[str, int] = {}
        for opportunity in self.as_of(end).values():
            counts[opportunity.stage] = counts.get(opportunity.stage, 0) + 1
        rows = [
            {
                "stage": stage.key,
                "outcome": None if stage.outcome is None else stage.outcome.value,
                "opportunities": counts[stage.key],
            }
            for stage in self.scheme.stages
            if stage.key in counts
        ]
        return text_table(rows, title=head, max_rows=len(rows))

    @property
    def start(self) -> datetime | None:
        """When the first event happened (``None`` for an empty history)."""
        return self._store.start

    @property
    def end(self) -> datetime | None:
        """When the last event happened (``None`` for an empty history)."""
        return self._store.end

    @property
    def opportunity_ids(self) -> tuple[str, ...]:
        """Ids of the opportunities in the history, in order of opening."""
        return self._store.opportunity_ids()

    def to_records(self) -> list[dict[str, Any]]:
        """The applied events as plain JSON-ready dicts, in order (a lossless round trip).

        Example:
            >>> import pipelinekit as pk
            >>> recs = [{"type": "opened", "opportunity_id": "o-1", "stage": "lead",
            ...          "at": "2024-01-05T10:00:00+00:00"}]
            >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("vtiger-lead-funnel"))
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
        cut = self._store.cut(instant(t, argument="t"))
        if cut == len(self._store):
            return self
        prefix = self._prefix
        if prefix is None or len(prefix) != cut:
            prefix = self._prefix = History._of(self._store.prefix(cut))
        return prefix

    def as_of(self, t: Instant) -> Pipeline:
        """The pipeline at ``t``: every opportunity opened at or before ``t``, in its state
        from the events at or before ``t``.
        """
        when = instant(t, argument="t")
        with bulk_work():
            return self.until(when)._store.snapshot().at(when)

    def for_opportunities(self, ids: Iterable[str]) -> History:
        """The sub-history of the given opportunities (for partitioned computation).

        Example:
            >>> import pipelinekit as pk
            >>> recs = [{"type": "opened", "opportunity_id": o, "stage": "lead",
            ...          "at": "2024-01-05T10:00:00+00:00"} for o in ("a", "b", "c")]
            >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("vtiger-lead-funnel"))
            >>> h.for_opportunities({"a", "c"}).opportunity_ids
            ('a', 'c')
        """
        return History._of(self._store.select(set(ids)))

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
        return tuple(History._of(part) for part in self._store.split(partitions))


def _first_bad_record_raised(
    ingest: Callable[[Mode], tuple[Store, IngestReport]], mode: Mode
) -> tuple[Store, IngestReport]:
    """Run an engine's ingestion; in strict mode raise the error of the first bad record.

    An engine in strict mode stops at the first problem it meets, which need not be the
    first bad record: records are validated before they are de-duplicated and replayed,
    and whether a move is legal can depend on a later record (the one that opens the deal
    earlier in time). So once strict ingestion fails, the records are checked again as
    lenient mode checks them, and the first one set aside is raised.
    """
    try:
        return ingest(mode)
    except RecordError:
        if mode != "strict":
            raise
    _, report = ingest("lenient")
    assert report.rejected, "strict ingestion refused what lenient ingestion accepts"
    raise report.rejected[0].error from None
