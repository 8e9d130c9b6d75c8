"""Activity and next actions: activities done and still to do, per owner.

For a window ``[start, end)`` and ``as_of``, :class:`ActivityReport` gives per owner (or
product, source, account):

- **activities** logged in the window (up to ``as_of``), in total and by kind. An activity
  counts for whoever owned the opportunity when it was logged, so handing a deal over does
  not move past work to the new owner ("whatever the staff changes");
- the **open deals** the owner holds at ``as_of``, and among them the next actions
  **due in the window** (a due date means the start of that day, in the time zone of the
  window's start), **overdue** ones (due before ``as_of``'s date) and the deals with a
  **missing** next action. A next action both due in the window and overdue counts in both.

Everything is a count, so results on disjoint sets of opportunities merge by adding and
equal the result on all of them.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.activity import ActivityReport
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-03-01T00:00:00Z",
    ...    "stage": "prospecting", "owner": "ann"},
    ...   {"type": "activity_logged", "opportunity_id": "a", "at": "2024-03-02T00:00:00Z",
    ...    "kind": "call"},
    ...   {"type": "owner_changed", "opportunity_id": "a", "at": "2024-03-03T00:00:00Z",
    ...    "owner": "bob"},
    ...   {"type": "activity_logged", "opportunity_id": "a", "at": "2024-03-04T00:00:00Z",
    ...    "kind": "meeting"},
    ...   {"type": "next_action_scheduled", "opportunity_id": "a",
    ...    "at": "2024-03-04T00:00:00Z", "due": "2024-03-05"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = ActivityReport(window=("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z")).compute(
    ...     h, as_of="2024-03-10T00:00:00Z")
    >>> [(g.group, g.activities, g.open_deals, g.due_in_window, g.overdue) for g in r.rows]
    [('ann', 1, 0, 0, 0), ('bob', 1, 1, 1, 1)]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.events import ActivityLogged, Opened, OwnerChanged
from pipelinekit.history import History
from pipelinekit.reports._grouping import (
    FIELDS,
    Field,
    field_arg,
    group_of,
    group_order,
    same_config,
)
from pipelinekit.reports._windows import Window, in_window, window_arg
from pipelinekit.results import Result

__all__ = ["ActivityReport", "ActivityReportResult", "ActivityRow"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ActivityRow(BaseModel):
    """The activity and next-action counts of one owner (or other group).

    Attributes:
        group: the owner (or product, source, account); ``None`` when unset.
        kinds: activities logged in the window per kind, kinds in name order.
        open_deals: open deals held at ``as_of``.
        due_in_window: open deals whose next action is due in the window.
        overdue: open deals whose next action was due before ``as_of``'s date.
        missing: open deals without a next action.
    """

    model_config = _FROZEN

    group: str | None = None
    kinds: tuple[tuple[str, int], ...] = ()
    open_deals: int = 0
    due_in_window: int = 0
    overdue: int = 0
    missing: int = 0

    @property
    def activities(self) -> int:
        """All activities logged in the window."""
        return sum(n for _, n in self.kinds)

    def plus(self, other: ActivityRow) -> ActivityRow:
        """This row with ``other``'s counts added."""
        kinds = Counter(dict(self.kinds))
        kinds.update(dict(other.kinds))
        return self.model_copy(
            update={
                "kinds": tuple(sorted(kinds.items())),
                "open_deals": self.open_deals + other.open_deals,
                "due_in_window": self.due_in_window + other.due_in_window,
                "overdue": self.overdue + other.overdue,
                "missing": self.missing + other.missing,
            }
        )


class ActivityReportResult(Result):
    """Activities and next actions per group.

    Attributes:
        as_of: the instant computed at; scheme: the scheme's name.
        window: the ``[start, end)`` window of the activities and due dates.
        by: the grouping field.
        rows: one row per group, in name order (``None`` last).
    """

    as_of: datetime
    scheme: str
    window: Window
    by: Field
    rows: tuple[ActivityRow, ...] = ()

    def _html_title(self) -> str:
        return f"Activities and next actions as of {self.as_of.isoformat(sep=' ')}"

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every activity kind seen, in name order."""
        return tuple(sorted({k for r in self.rows for k, _ in r.kinds}))

    @property
    def total(self) -> ActivityRow:
        """The counts over every group."""
        total = ActivityRow()
        for row in self.rows:
            total = total.plus(row)
        return total

    def row(self, group: str | None) -> ActivityRow:
        """The row of ``group`` (all zeros when the group has none)."""
        for r in self.rows:
            if r.group == group:
                return r
        return ActivityRow(group=group)

    def to_records(self) -> list[dict[str, Any]]:
        """Group rows then a ``"total"`` row; one ``activities_<kind>`` column per kind."""
        kinds = self.kinds

        def record(level: str, row: ActivityRow) -> dict[str, Any]:
            by_kind = dict(row.kinds)
            return {
                "level": level,
                self.by: row.group,
                "activities": row.activities,
                **{f"activities_{k}": by_kind.get(k, 0) for k in kinds},
                "open_deals": row.open_deals,
                "due_in_window": row.due_in_window,
                "overdue": row.overdue,
                "missing": row.missing,
            }

        return [record("group", r) for r in self.rows] + [record("total", self.total)]

    def merge(self, other: ActivityReportResult) -> ActivityReportResult:
        """The counts over both sets of opportunities (computed with the same settings).

        Raises:
            ArgumentError: the results differ in ``as_of``, scheme, window or grouping.
        """
        names = ("as_of", "scheme", "window", "by")
        same_config(
            "activity",
            {n: getattr(self, n) for n in names},
            {n: getattr(other, n) for n in names},
        )
        rows: dict[str | None, ActivityRow] = {}
        for r in (*self.rows, *other.rows):
            rows[r.group] = rows[r.group].plus(r) if r.group in rows else r
        return self.model_copy(
            update={"rows": tuple(rows[g] for g in sorted(rows, key=group_order))}
        )


class ActivityReport:
    """Activities logged and next actions due, overdue and missing, per owner.

    Args:
        window: ``(start, end)`` instants (aware datetimes or ISO strings): activities logged
            in ``[start, end)`` count, and next actions due in it.
        by: ``"owner"`` (default), ``"product"``, ``"source"`` or ``"account"``.

    Raises:
        ArgumentError: a bad argument, named: a missing window or one that ends at or
            before it starts, an unknown ``by``.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=5)
        >>> calc = ActivityReport(window=("2024-07-01T00:00:00Z", "2024-10-01T00:00:00Z"))
        >>> r = calc.compute(h, as_of="2024-09-30T00:00:00Z")
        >>> r.total.open_deals == len(h.as_of("2024-09-30T00:00:00Z").open())
        True
    """

    def __init__(self, *, window: tuple[Instant, Instant], by: Field = "owner") -> None:
        checked = window_arg(window, argument="window")
        if checked is None:
            raise ArgumentError("window", "a (start, end) window is required")
        self.window: Window = checked
        self.by: Field = field_arg(by, argument="by", allowed=FIELDS)

    def __repr__(self) -> str:
        return f"ActivityReport(window={self.window!r}, by={self.by!r})"

    def compute(self, history: History, *, as_of: Instant) -> ActivityReportResult:
        """The counts as of ``as_of`` (sees only ``history.until(as_of)``).

        Raises:
            ArgumentError: ``as_of`` is not an aware instant.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        start, end = self.window
        kinds: dict[str | None, Counter[str]] = {}
        for group, kind in self._activities(history):  # events built one at a time
            kinds.setdefault(group, Counter())[kind] += 1
        deals: dict[str | None, list[int]] = {}
        today = when.date()
        for opp in history.as_of(when).open().values():
            counts = deals.setdefault(group_of(opp, self.by), [0, 0, 0, 0])
            counts[0] += 1
            action = opp.next_action
            if action is None:
                counts[3] += 1
                continue
            due_at = datetime.combine(action.due, time(), tzinfo=start.tzinfo)
            counts[1] += start <= due_at < end
            counts[2] += action.due < today
        rows = []
        for group in sorted(kinds.keys() | deals.keys(), key=group_order):
            open_deals, due, overdue, missing = deals.get(group, (0, 0, 0, 0))
            rows.append(
                ActivityRow(
                    group=group,
                    kinds=tuple(sorted(kinds.get(group, Counter()).items())),
                    open_deals=open_deals,
                    due_in_window=due,
                    overdue=overdue,
                    missing=missing,
                )
            )
        return ActivityReportResult(
            as_of=when, scheme=history.scheme.name, window=self.window, by=self.by, rows=tuple(rows)
        )

    def _activities(self, events: Iterable[Any]) -> Iterable[tuple[str | None, str]]:
        """(group at the time, kind) of each activity logged in the window."""
        current: dict[str, str | None] = {}
        for event in events:
            if isinstance(event, Opened):
                current[event.opportunity_id] = getattr(event, self.by)
            elif isinstance(event, OwnerChanged) and self.by == "owner":
                current[event.opportunity_id] = event.owner
            elif isinstance(event, ActivityLogged) and in_window(event.at, self.window):
                yield current.get(event.opportunity_id), event.kind
