"""Win/loss: how many deals closed in a window were won, how many lost, and why.

:class:`WinLoss` looks at the opportunities that are won or lost at ``as_of`` and whose
``closed_at`` lies in the window ``[start, end)`` (no window: every deal closed by
``as_of``). It counts won and lost deals, their amounts and average amounts, and the win
rate = won / (won + lost) (``None`` when nothing closed), overall and by owner,
product, source or stage reached, and counts the loss reasons.

- **By stage reached** uses the shared definition of *reached*: a deal reached an open stage if it
  entered it or any later open stage in funnel order (skipping counts as passing through),
  and a won deal reached every open stage. A deal is counted in the row of every open stage
  it reached, so each row answers "of the deals that got at least this far, how many were
  won?"; rows overlap and do not add up to the total. (Counting each deal only at its
  furthest stage would put every won deal in the last open stage, and the win rate of
  every other row would be 0 by construction.)
- **Loss reasons** are the ``stage_reason`` of the lost deals (the reason given with the
  move to the lost stage, or a later one), with ``None`` counted as ``"(no reason)"``.
- **Money.** Amounts are ``Decimal``, each converted to the reporting currency on the date
  the deal closed; a deal without an amount is counted in ``won``/``lost`` and in the
  ``unpriced`` columns, and averages are over the priced deals only. Rates are floats.
- **Mergeable.** Results store counts and sums; rates and averages are recomputed, so a
  merge over disjoint opportunities equals the result on all of them.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.win_loss import WinLoss
    >>> def deal(oid, end, amount, reason=None):
    ...     return [{"type": "opened", "opportunity_id": oid, "at": "2024-01-02T00:00:00Z",
    ...              "stage": "prospecting", "amount": amount, "currency": "EUR"},
    ...             {"type": "stage_changed", "opportunity_id": oid,
    ...              "at": "2024-01-20T00:00:00Z", "stage": end, "reason": reason}]
    >>> recs = (deal("a", "closed-won", "900") + deal("b", "closed-won", "300")
    ...         + deal("c", "closed-lost", "500", "price"))
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = WinLoss().compute(h, as_of="2024-02-01T00:00:00Z")
    >>> o = r.overall
    >>> o.won, o.lost, o.win_rate, o.average_won, o.average_lost
    (2, 1, 0.6666666666666666, Decimal('600'), Decimal('500'))
    >>> r.loss_reasons
    (LossReason(reason='price', count=1),)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency
from pipelinekit.opportunity import Opportunity, reached_stages
from pipelinekit.reports._grouping import field_arg, group_of, group_order, same_config
from pipelinekit.reports._windows import (
    Window,
    currency_args,
    in_window,
    merged_currency,
    window_arg,
)
from pipelinekit.results import Result
from pipelinekit.stages import StageScheme

__all__ = ["NO_REASON", "LossReason", "WinLoss", "WinLossResult", "WinLossRow"]

By = Literal["owner", "product", "source", "stage_reached"]
_BY: tuple[By, ...] = ("owner", "product", "source", "stage_reached")
NO_REASON = "(no reason)"
"""How a lost deal without a ``stage_reason`` is counted among the loss reasons."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ZERO = Decimal(0)


class WinLossRow(BaseModel):
    """Won and lost counts and amounts of one group (or of everything).

    Attributes:
        group: the owner, product, source or stage key (``None`` for the overall row, or a
            deal with the field unset).
        won, lost: deals won / lost in the window.
        won_amount, lost_amount: their amounts in the reporting currency.
        won_unpriced, lost_unpriced: how many of them have no amount.
    """

    model_config = _FROZEN

    group: str | None = None
    won: int = 0
    lost: int = 0
    won_amount: Decimal = _ZERO
    lost_amount: Decimal = _ZERO
    won_unpriced: int = 0
    lost_unpriced: int = 0

    @property
    def closed(self) -> int:
        """won + lost."""
        return self.won + self.lost

    @property
    def win_rate(self) -> float | None:
        """won / (won + lost), or ``None`` when nothing closed."""
        return self.won / self.closed if self.closed else None

    @property
    def average_won(self) -> Decimal | None:
        """The average amount of the priced won deals (``None`` when there are none)."""
        priced = self.won - self.won_unpriced
        return self.won_amount / priced if priced else None

    @property
    def average_lost(self) -> Decimal | None:
        """The average amount of the priced lost deals (``None`` when there are none)."""
        priced = self.lost - self.lost_unpriced
        return self.lost_amount / priced if priced else None

    def plus(self, other: WinLossRow) -> WinLossRow:
        """This row with ``other``'s counts and sums added."""
        return self.model_copy(
            update={
                "won": self.won + other.won,
                "lost": self.lost + other.lost,
                "won_amount": EXACT.add(self.won_amount, other.won_amount),
                "lost_amount": EXACT.add(self.lost_amount, other.lost_amount),
                "won_unpriced": self.won_unpriced + other.won_unpriced,
                "lost_unpriced": self.lost_unpriced + other.lost_unpriced,
            }
        )

    def to_record(self) -> dict[str, Any]:
        """The row's counts, sums, win rate and averages as a plain dict."""
        return {
            "won": self.won,
            "lost": self.lost,
            "closed": self.closed,
            "win_rate": self.win_rate,
            "won_amount": self.won_amount,
            "lost_amount": self.lost_amount,
            "average_won": self.average_won,
            "average_lost": self.average_lost,
            "unpriced": self.won_unpriced + self.lost_unpriced,
        }


class LossReason(BaseModel):
    """How many lost deals gave one reason."""

    model_config = _FROZEN

    reason: str
    count: int


def _reasons(counts: Counter[str]) -> tuple[LossReason, ...]:
    ordered = sorted(counts.items(), key=lambda rc: (-rc[1], rc[0]))
    return tuple(LossReason(reason=r, count=n) for r, n in ordered)


class WinLossResult(Result):
    """Win/loss figures overall and per group, with the loss reasons.

    Attributes:
        as_of: the instant computed at; scheme: the scheme's name.
        window: the ``[start, end)`` window of close instants (``None``: all up to as_of).
        by: the grouping, or ``None``.
        currency: the reporting currency (``None`` when no amount was seen).
        overall: the figures of every deal closed in the window.
        groups: one row per group (groups in name order, ``None`` last; for
            ``"stage_reached"`` every open stage in funnel order).
        loss_reasons: lost deals per reason, most frequent first.
    """

    as_of: datetime
    scheme: str
    window: Window | None = None
    by: By | None = None
    currency: str | None = None
    overall: WinLossRow
    groups: tuple[WinLossRow, ...] = ()
    loss_reasons: tuple[LossReason, ...] = ()

    def _html_title(self) -> str:
        return f"Win/loss as of {self.as_of.isoformat(sep=' ')}"

    def group(self, value: str | None) -> WinLossRow:
        """The row of one group.

        Raises:
            ArgumentError: no such group.
        """
        for row in self.groups:
            if row.group == value:
                return row
        known = [r.group for r in self.groups]
        raise ArgumentError("group", f"no group {value!r}; have {known}")

    def to_records(self) -> list[dict[str, Any]]:
        """Group rows then a ``"total"`` row (the group column is named after ``by``)."""
        column = self.by or "group"
        records = [{"level": "group", column: row.group, **row.to_record()} for row in self.groups]
        records.append({"level": "total", column: None, **self.overall.to_record()})
        return records

    def loss_reason_records(self) -> list[dict[str, Any]]:
        """One dict per loss reason: reason, count and share of the lost deals (float)."""
        lost = self.overall.lost
        return [
            {"reason": r.reason, "count": r.count, "share": r.count / lost if lost else None}
            for r in self.loss_reasons
        ]

    def merge(self, other: WinLossResult) -> WinLossResult:
        """The result over both sets of opportunities (computed with the same settings).

        Raises:
            ArgumentError: the results differ in ``as_of``, scheme, window or grouping.
            CurrencyError: they are in different reporting currencies.
        """
        names = ("as_of", "scheme", "window", "by")
        same_config(
            "win/loss",
            {n: getattr(self, n) for n in names},
            {n: getattr(other, n) for n in names},
        )
        currency = merged_currency(self.currency, other.currency)
        groups: dict[str | None, WinLossRow] = {}
        for row in (*self.groups, *other.groups):
            groups[row.group] = groups[row.group].plus(row) if row.group in groups else row
        if self.by == "stage_reached":
            ordered = [groups[r.group] for r in self.groups]
        else:
            ordered = [groups[g] for g in sorted(groups, key=group_order)]
        reasons = Counter({r.reason: r.count for r in self.loss_reasons})
        reasons.update({r.reason: r.count for r in other.loss_reasons})
        return self.model_copy(
            update={
                "currency": currency,
                "overall": self.overall.plus(other.overall),
                "groups": tuple(ordered),
                "loss_reasons": _reasons(reasons),
            }
        )


class WinLoss:
    """Win rate, won and lost amounts and loss reasons of the deals closed in a window.

    Args:
        window: ``(start, end)`` instants (aware datetimes or ISO strings); deals whose
            ``closed_at`` is in ``[start, end)`` count. ``None``: every deal closed by
            ``as_of``.
        by: ``None``, ``"owner"``, ``"product"``, ``"source"`` (the value at ``as_of``) or
            ``"stage_reached"``.
        currency, rates: the reporting currency and :class:`~pipelinekit.money.FxRates`
            (converted on each deal's close date).

    Raises:
        ArgumentError: a bad argument, named: a window that is not two aware instants or
            ends at or before it starts, an unknown ``by``, a bad currency or rates.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=1)
        >>> r = WinLoss(window=("2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z"), by="owner")
        >>> res = r.compute(h, as_of="2024-07-01T00:00:00Z")
        >>> sum(g.closed for g in res.groups) == res.overall.closed
        True
    """

    def __init__(
        self,
        *,
        window: tuple[Instant, Instant] | None = None,
        by: By | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
    ) -> None:
        self.window = window_arg(window, argument="window")
        self.by: By | None = field_arg(by, argument="by", allowed=(None, *_BY))
        currency_args(currency, rates)
        self.currency = currency
        self.rates = rates

    def __repr__(self) -> str:
        return f"WinLoss(window={self.window!r}, by={self.by!r}, currency={self.currency!r})"

    def compute(self, history: History, *, as_of: Instant) -> WinLossResult:
        """Win/loss of the deals closed in the window, as known at ``as_of``.

        Raises:
            ArgumentError: ``as_of`` is not an aware instant.
            CurrencyError: amounts in several currencies without a reporting currency and
                rates for them.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        to_rep = ReportingCurrency(self.currency, self.rates)
        overall = _Sums()
        groups: dict[str | None, _Sums] = {}
        if self.by == "stage_reached":
            groups = {s.key: _Sums() for s in scheme.open_stages}
        reasons: Counter[str] = Counter()
        for opp in history.as_of(when).values():
            if opp.is_open or opp.closed_at is None or not in_window(opp.closed_at, self.window):
                continue
            amount = None
            if opp.amount is not None:
                amount = to_rep(opp.amount, opp.currency, on=opp.closed_at.date())
            overall.add(opp.is_won, amount)
            if opp.is_lost:
                reasons[opp.stage_reason if opp.stage_reason is not None else NO_REASON] += 1
            for group in self._groups_of(opp, scheme):
                groups.setdefault(group, _Sums()).add(opp.is_won, amount)
        keys: Iterable[str | None] = groups
        if self.by != "stage_reached":
            keys = sorted(groups, key=group_order)
        return WinLossResult(
            as_of=when,
            scheme=scheme.name,
            window=self.window,
            by=self.by,
            currency=to_rep.currency,
            overall=overall.row(None),
            groups=tuple(groups[g].row(g) for g in keys),
            loss_reasons=_reasons(reasons),
        )

    def _groups_of(self, opp: Opportunity, scheme: StageScheme) -> tuple[str | None, ...]:
        if self.by is None:
            return ()
        if self.by == "stage_reached":
            return reached_stages(opp, scheme)
        return (group_of(opp, self.by),)


class _Sums:
    """Mutable counters used while scanning; frozen into a :class:`WinLossRow`."""

    __slots__ = ("amounts", "counts", "unpriced")

    def __init__(self) -> None:
        self.counts = [0, 0]
        self.unpriced = [0, 0]
        self.amounts = [_ZERO, _ZERO]

    def add(self, won: bool, amount: Decimal | None) -> None:
        side = 0 if won else 1
        self.counts[side] += 1
        if amount is None:
            self.unpriced[side] += 1
        else:
            self.amounts[side] = EXACT.add(self.amounts[side], amount)

    def row(self, group: str | None) -> WinLossRow:
        return WinLossRow(
            group=group,
            won=self.counts[0],
            lost=self.counts[1],
            won_amount=self.amounts[0],
            lost_amount=self.amounts[1],
            won_unpriced=self.unpriced[0],
            lost_unpriced=self.unpriced[1],
        )
