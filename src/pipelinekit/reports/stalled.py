"""Stalled and neglected deals: "where deals stall" and "never lose a contact".

:class:`StalledDeals` flags every open opportunity at ``as_of`` that meets one of the
configured rules, and says which, with a short code and a sentence:

============================  ===============================================================
code                          rule
============================  ===============================================================
``over_max_days``             time in the current stage exceeds ``max_days_in_stage``
``over_stage_percentile``     time in the current stage exceeds the ``stage_percentile``-th
                              percentile of the completed stays in that stage (learned from
                              ``history.until(as_of)``)
``idle``                      no event of any kind for more than ``idle_days`` (Pipedrive's
                              "rotting": any activity, note or change resets it)
``no_next_action``            no next action is scheduled (``next_action=True``)
``next_action_overdue``       the next action was due before ``as_of``'s date
``past_close``                the expected close date is before ``as_of``'s date
``inactive_owner``            the owner is not in ``active_owners`` (or there is none)
============================  ===============================================================

Rows are sorted by amount, largest first (deals without an amount last), then by id; a
per-stage summary counts open and flagged deals, and :attr:`StalledDealsResult.reasons`
counts the deals per reason. Days are floats.

**Merging.** With fixed thresholds every rule looks at one deal at a time, so results on
disjoint sets of opportunities merge by concatenation and equal the result on all of them.
With ``stage_percentile`` the thresholds are learned from every opportunity's history, so
a partition would learn different ones: ``merge`` refuses (``ArgumentError``). To split
the work, learn the thresholds once on the whole history with :func:`stage_stay_percentiles`
and pass them as ``max_days_in_stage`` to every partition.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.stalled import StalledDeals
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
    ...    "stage": "prospecting", "amount": "500", "currency": "EUR", "owner": "ann",
    ...    "expected_close": "2024-01-20"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-01-25T00:00:00Z",
    ...    "stage": "prospecting", "amount": "900", "currency": "EUR", "owner": "ann"},
    ...   {"type": "next_action_scheduled", "opportunity_id": "b",
    ...    "at": "2024-01-25T00:00:00Z", "due": "2024-02-05"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = StalledDeals(max_days_in_stage=14).compute(h, as_of="2024-02-01T00:00:00Z")
    >>> [(d.opportunity_id, d.days_in_stage, d.codes) for d in r.deals]
    [('a', 31.0, ('over_max_days', 'no_next_action', 'past_close'))]
    >>> r.deals[0].reasons[0].text
    "in stage 'prospecting' for 31 days, over the limit of 14 days"
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import FxRates, ReportingCurrency
from pipelinekit.opportunity import Opportunity
from pipelinekit.reports._grouping import same_config
from pipelinekit.reports._windows import currency_args
from pipelinekit.reports.velocity import percentile as nearest_rank
from pipelinekit.results import Result
from pipelinekit.stages import StageScheme

__all__ = [
    "REASON_CODES",
    "Reason",
    "StageStalls",
    "StageThreshold",
    "StalledDeal",
    "StalledDeals",
    "StalledDealsResult",
    "stage_stay_percentiles",
]

REASON_CODES = (
    "over_max_days",
    "over_stage_percentile",
    "idle",
    "no_next_action",
    "next_action_overdue",
    "past_close",
    "inactive_owner",
)
"""Every reason code, in the order reasons are listed on a deal."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_DAY = timedelta(days=1)


class Reason(BaseModel):
    """Why a deal is flagged: a short ``code`` (see :data:`REASON_CODES`) and a sentence."""

    model_config = _FROZEN

    code: str
    text: str


class StalledDeal(BaseModel):
    """One flagged open opportunity.

    Attributes:
        opportunity_id, stage, owner: the deal, its stage and owner at ``as_of``.
        amount, currency: its amount (in the reporting currency when one was given, else
            in the deal's own currency).
        days_in_stage: days since it entered its current stage.
        days_idle: days since its latest event of any kind.
        expected_close, next_action_due: its expected close date and next action's due date.
        reasons: why it is flagged, in :data:`REASON_CODES` order.
    """

    model_config = _FROZEN

    opportunity_id: str
    stage: str
    owner: str | None
    amount: Decimal | None
    currency: str | None
    days_in_stage: float
    days_idle: float
    expected_close: date | None
    next_action_due: date | None
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes."""
        return tuple(r.code for r in self.reasons)


class StageStalls(BaseModel):
    """Per open stage: how many deals are open there and how many are flagged."""

    model_config = _FROZEN

    stage: str
    open: int
    flagged: int


class StageThreshold(BaseModel):
    """A learned time-in-stage threshold: the percentile of the completed stays.

    Attributes:
        stage: the stage key.
        days: the percentile in days (``None`` when the stage has no completed stay).
        stays: how many completed stays it was learned from.
    """

    model_config = _FROZEN

    stage: str
    days: float | None
    stays: int


def stage_stay_percentiles(
    history: History, *, as_of: Instant, percentile: float
) -> tuple[StageThreshold, ...]:
    """Per open stage, the ``percentile``-th percentile of completed stays, in days.

    A completed stay is a visit to the stage that was left by ``as_of`` (re-entries count
    as separate stays); only ``history.until(as_of)`` is seen. The statistical
    percentile (nearest rank, docs/concepts.md): P90 is the smallest duration that 90 % of
    the stays are at or below.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=2)
        >>> t = stage_stay_percentiles(h, as_of="2024-09-30T00:00:00Z", percentile=90)
        >>> t[0].stage, t[0].stays > 0, t[0].days is not None
        ('prospecting', True, True)
    """
    when = instant(as_of, argument="as_of")
    q = _percentile_arg(percentile, argument="percentile") / 100
    history = history.until(when)
    scheme = history.scheme
    stays: dict[str, list[float]] = {s.key: [] for s in scheme.open_stages}
    for opp in history.as_of(when).values():
        for visit in opp.path:
            if visit.exited_at is not None and visit.stage in stays:
                stays[visit.stage].append((visit.exited_at - visit.entered_at) / _DAY)
    return tuple(
        StageThreshold(stage=key, days=nearest_rank(tuple(sorted(values)), q), stays=len(values))
        for key, values in stays.items()
    )


def _percentile_arg(value: object, *, argument: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value < 100
    ):
        raise ArgumentError(argument, f"expected a percentile between 0 and 100, got {value!r}")
    return float(value)


def _days_arg(value: object, *, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ArgumentError(argument, f"expected a number of days, got {value!r}")
    days = float(value)
    if not math.isfinite(days) or days < 0:
        raise ArgumentError(argument, f"expected a finite number of days >= 0, got {value!r}")
    return days


def _fmt(days: float) -> str:
    return f"{days:g}" if days == int(days) else f"{days:.1f}"


class StalledDealsResult(Result):
    """The flagged open deals at ``as_of``, with a per-stage summary.

    Attributes:
        as_of: the instant computed at; scheme: the scheme's name.
        settings: the rules as configured (compared by :meth:`merge`).
        currency: the reporting currency, if one was given.
        deals: the flagged deals, largest amount first, then by id.
        stages: per open stage in funnel order: open and flagged deals.
        thresholds: the thresholds learned with ``stage_percentile`` (else empty).
    """

    as_of: datetime
    scheme: str
    settings: tuple[tuple[str, Any], ...]
    currency: str | None = None
    deals: tuple[StalledDeal, ...] = ()
    stages: tuple[StageStalls, ...] = ()
    thresholds: tuple[StageThreshold, ...] = ()

    def _html_title(self) -> str:
        return f"Stalled deals as of {self.as_of.isoformat(sep=' ')}"

    @property
    def reasons(self) -> tuple[tuple[str, int], ...]:
        """How many flagged deals have each reason, in :data:`REASON_CODES` order."""
        counts = Counter(code for d in self.deals for code in d.codes)
        return tuple((code, counts[code]) for code in REASON_CODES if counts[code])

    def learned_days(self) -> dict[str, float]:
        """The learned thresholds as a ``max_days_in_stage`` mapping (stages with one)."""
        return {t.stage: t.days for t in self.thresholds if t.days is not None}

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per flagged deal; ``reasons`` joins the codes with commas."""
        return [
            {
                "opportunity_id": d.opportunity_id,
                "stage": d.stage,
                "owner": d.owner,
                "amount": d.amount,
                "currency": d.currency,
                "days_in_stage": d.days_in_stage,
                "days_idle": d.days_idle,
                "expected_close": d.expected_close,
                "next_action_due": d.next_action_due,
                "reasons": ", ".join(d.codes),
            }
            for d in self.deals
        ]

    def stage_records(self) -> list[dict[str, Any]]:
        """The per-stage summary: stage, open, flagged."""
        return [s.model_dump() for s in self.stages]

    def merge(self, other: StalledDealsResult) -> StalledDealsResult:
        """The flagged deals of both sets of opportunities (fixed thresholds only).

        Raises:
            ArgumentError: the results used ``stage_percentile`` (argument
                ``stage_percentile``: learned thresholds depend on every opportunity), or
                differ in ``as_of``, scheme, settings or currency (argument ``other``).
        """
        if dict(self.settings).get("stage_percentile") is not None:
            raise ArgumentError(
                "stage_percentile",
                "results with thresholds learned from a stage percentile cannot be merged: "
                "each partition learns its own; learn them once with stage_stay_percentiles() "
                "on the whole history and pass them as max_days_in_stage",
            )
        names = ("as_of", "scheme", "settings", "currency")
        same_config(
            "stalled-deals",
            {n: getattr(self, n) for n in names},
            {n: getattr(other, n) for n in names},
        )
        theirs = {s.stage: s for s in other.stages}
        stages = tuple(
            s.model_copy(
                update={
                    "open": s.open + theirs[s.stage].open,
                    "flagged": s.flagged + theirs[s.stage].flagged,
                }
            )
            for s in self.stages
        )
        deals = tuple(sorted((*self.deals, *other.deals), key=_deal_order))
        return self.model_copy(update={"deals": deals, "stages": stages})


def _deal_order(deal: StalledDeal) -> tuple[bool, Decimal, str]:
    amount = deal.amount
    return (amount is None, -(amount or Decimal(0)), deal.opportunity_id)


class StalledDeals:
    """Flags open deals that stall, idle, lack a next action, slip past close or lost an owner.

    Args:
        max_days_in_stage: a limit in days on the time in the current stage: one number
            for every open stage, or ``{stage key: days}`` for some (open stages only).
        stage_percentile: flag deals whose time in stage exceeds this percentile (0-100,
            e.g. 90) of the completed stays in that stage, learned from
            ``history.until(as_of)``; the learned values are in ``thresholds_`` and in the
            result. A stage with no completed stay has no such threshold.
        idle_days: flag deals with no event of any kind for more than this many days.
        next_action: flag deals whose next action is missing or was due before ``as_of``'s
            date.
        past_close: flag deals whose expected close date is before ``as_of``'s date.
        active_owners: flag deals whose owner is not in this collection (or unset).
        currency, rates: show and sort amounts in this reporting currency, converted at
            ``as_of``'s date (without: each deal's own currency, sorted by the number).

    Attributes:
        thresholds_: after :meth:`compute` with ``stage_percentile``, the learned
            thresholds (``None`` before).

    Raises:
        ArgumentError: a bad argument, named.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=2)
        >>> calc = StalledDeals(stage_percentile=90, next_action=False, past_close=False)
        >>> r = calc.compute(h, as_of="2024-09-30T00:00:00Z")
        >>> calc.thresholds_ == r.thresholds, all(d.codes for d in r.deals)
        (True, True)
    """

    def __init__(
        self,
        *,
        max_days_in_stage: Mapping[str, float] | float | None = None,
        stage_percentile: float | None = None,
        idle_days: float | None = None,
        next_action: bool = True,
        past_close: bool = True,
        active_owners: Collection[str] | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
    ) -> None:
        self.max_days_in_stage: float | dict[str, float] | None = None
        if isinstance(max_days_in_stage, Mapping):
            self.max_days_in_stage = {
                str(k): _days_arg(v, argument="max_days_in_stage")
                for k, v in max_days_in_stage.items()
            }
        elif max_days_in_stage is not None:
            self.max_days_in_stage = _days_arg(max_days_in_stage, argument="max_days_in_stage")
        self.stage_percentile = (
            None
            if stage_percentile is None
            else _percentile_arg(stage_percentile, argument="stage_percentile")
        )
        self.idle_days = None if idle_days is None else _days_arg(idle_days, argument="idle_days")
        for name, flag in (("next_action", next_action), ("past_close", past_close)):
            if not isinstance(flag, bool):
                raise ArgumentError(name, f"expected True or False, got {flag!r}")
        self.next_action = next_action
        self.past_close = past_close
        self.active_owners: frozenset[str] | None = None
        if active_owners is not None:
            if isinstance(active_owners, str) or not isinstance(active_owners, Collection):
                raise ArgumentError(
                    "active_owners", f"expected a collection of owner names, got {active_owners!r}"
                )
            self.active_owners = frozenset(active_owners)
        currency_args(currency, rates)
        self.currency = currency
        self.rates = rates
        self.thresholds_: tuple[StageThreshold, ...] | None = None

    def __repr__(self) -> str:
        return (
            f"StalledDeals(max_days_in_stage={self.max_days_in_stage!r}, "
            f"stage_percentile={self.stage_percentile!r}, idle_days={self.idle_days!r}, "
            f"next_action={self.next_action!r}, past_close={self.past_close!r}, "
            f"active_owners={self.active_owners!r})"
        )

    def _settings(self) -> tuple[tuple[str, Any], ...]:
        limits = self.max_days_in_stage
        return (
            (
                "max_days_in_stage",
                tuple(sorted(limits.items())) if isinstance(limits, dict) else limits,
            ),
            ("stage_percentile", self.stage_percentile),
            ("idle_days", self.idle_days),
            ("next_action", self.next_action),
            ("past_close", self.past_close),
            (
                "active_owners",
                None if self.active_owners is None else tuple(sorted(self.active_owners)),
            ),
        )

    def _limits(self, scheme: StageScheme) -> dict[str, float]:
        limits = self.max_days_in_stage
        open_keys = [s.key for s in scheme.open_stages]
        if limits is None:
            return {}
        if not isinstance(limits, dict):
            return dict.fromkeys(open_keys, limits)
        bad = [k for k in limits if k not in open_keys]
        if bad:
            raise ArgumentError(
                "max_days_in_stage",
                f"{bad} are not open stages of scheme {scheme.name!r}; open stages: {open_keys}",
            )
        return limits

    def compute(self, history: History, *, as_of: Instant) -> StalledDealsResult:
        """The flagged open deals at ``as_of`` (sees only ``history.until(as_of)``).

        Raises:
            ArgumentError: ``as_of`` is not an aware instant; ``max_days_in_stage`` names a
                stage that is not an open stage of the scheme.
            CurrencyError: with a reporting currency, a deal in a currency without a rate.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        limits = self._limits(scheme)
        thresholds: tuple[StageThreshold, ...] = ()
        learned: dict[str, float] = {}
        if self.stage_percentile is not None:
            thresholds = stage_stay_percentiles(
                history, as_of=when, percentile=self.stage_percentile
            )
            learned = {t.stage: t.days for t in thresholds if t.days is not None}
            self.thresholds_ = thresholds
        to_rep = ReportingCurrency(self.currency, self.rates) if self.currency else None
        today = when.date()
        opened = dict.fromkeys((s.key for s in scheme.open_stages), 0)
        flagged = dict.fromkeys(opened, 0)
        deals: list[StalledDeal] = []
        for opp in history.as_of(when).open().values():
            opened[opp.stage] += 1
            in_stage = (when - opp.stage_entered_at) / _DAY
            idle = (when - opp.last_event_at) / _DAY
            reasons = self._reasons(
                opp, in_stage, idle, limits.get(opp.stage), learned.get(opp.stage), today
            )
            if not reasons:
                continue
            flagged[opp.stage] += 1
            amount, currency = opp.amount, opp.currency
            if to_rep is not None and amount is not None:
                amount, currency = to_rep(amount, currency, on=today), to_rep.currency
            deals.append(
                StalledDeal(
                    opportunity_id=opp.id,
                    stage=opp.stage,
                    owner=opp.owner,
                    amount=amount,
                    currency=currency,
                    days_in_stage=in_stage,
                    days_idle=idle,
                    expected_close=opp.expected_close,
                    next_action_due=opp.next_action.due if opp.next_action else None,
                    reasons=reasons,
                )
            )
        return StalledDealsResult(
            as_of=when,
            scheme=scheme.name,
            settings=self._settings(),
            currency=self.currency,
            deals=tuple(sorted(deals, key=_deal_order)),
            stages=tuple(StageStalls(stage=k, open=opened[k], flagged=flagged[k]) for k in opened),
            thresholds=thresholds,
        )

    def _reasons(
        self,
        opp: Opportunity,
        in_stage: float,
        idle: float,
        limit: float | None,
        learned: float | None,
        today: date,
    ) -> tuple[Reason, ...]:
        here = f"in stage {opp.stage!r} for {_fmt(in_stage)} days"
        reasons: list[Reason] = []
        if limit is not None and in_stage > limit:
            text = f"{here}, over the limit of {_fmt(limit)} days"
            reasons.append(Reason(code="over_max_days", text=text))
        if learned is not None and in_stage > learned:
            text = (
                f"{here}, longer than {_fmt(self.stage_percentile or 0)} % of past stays "
                f"there ({_fmt(learned)} days)"
            )
            reasons.append(Reason(code="over_stage_percentile", text=text))
        if self.idle_days is not None and idle > self.idle_days:
            text = f"no activity or change for {_fmt(idle)} days (limit {_fmt(self.idle_days)})"
            reasons.append(Reason(code="idle", text=text))
        if self.next_action:
            if opp.next_action is None:
                reasons.append(Reason(code="no_next_action", text="no next action scheduled"))
            elif opp.next_action.due < today:
                text = f"next action was due on {opp.next_action.due.isoformat()}"
                reasons.append(Reason(code="next_action_overdue", text=text))
        if self.past_close and opp.expected_close is not None and opp.expected_close < today:
            text = f"expected to close on {opp.expected_close.isoformat()}, which has passed"
            reasons.append(Reason(code="past_close", text=text))
        if self.active_owners is not None and opp.owner not in self.active_owners:
            who = "has no owner" if opp.owner is None else f"owner {opp.owner!r} is not active"
            reasons.append(Reason(code="inactive_owner", text=who))
        return tuple(reasons)
