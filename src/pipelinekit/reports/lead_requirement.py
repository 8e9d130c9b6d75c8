"""Lead requirement: how many new leads a team needs to reach a revenue target.

"How many leads must the team generate to close a given number of sales?", as the Dutch
and French pipeline-management articles ask. :class:`LeadRequirement` learns from the
history, over a learning window of opening dates:

- the **lead-to-win rate**: won ÷ (won + lost) among the opportunities opened in the window.
  Opportunities still open at ``as_of`` are *censored* and left out of the denominator
  (an open deal is never treated as lost);
- the **average won amount** of those won deals (in one reporting currency);

and answers: deals needed = ceil(target ÷ average won amount); leads needed = ceil(deals
needed ÷ lead-to-win rate); and, per open stage, how many deals must reach it = ceil(deals
needed ÷ stage-to-won rate), where the stage-to-won rate is won ÷ closed among the
opportunities that reached the stage (*reached* as ``pipelinekit.reached_stages`` defines
it, any path).

A *lead* is an opened opportunity. With ``won_so_far`` (revenue already won in the target
period, in the reporting currency) only the remaining ``target - won_so_far`` (at least 0)
is planned for. When a figure cannot be computed (no closed deal, no win, no won amount)
the result says so in ``reason`` instead of dividing by zero. Ceilings are exact (computed
with fractions). Rates are floats; money is ``Decimal``.

Example:
    >>> import pipelinekit as pk
    >>> from decimal import Decimal
    >>> from pipelinekit.reports.lead_requirement import LeadRequirement
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": o, "at": "2024-01-01T00:00:00Z",
    ...    "stage": "prospecting", "amount": "4000", "currency": "EUR"} for o in "abcd"] + [
    ...   {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-20T00:00:00Z",
    ...    "stage": "closed-won"},
    ...   {"type": "stage_changed", "opportunity_id": "b", "at": "2024-01-21T00:00:00Z",
    ...    "stage": "closed-lost"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = LeadRequirement(target=Decimal("10000")).compute(h, as_of="2024-02-01T00:00:00Z")
    >>> r.lead_to_win_rate, r.average_won_amount, r.deals_needed, r.leads_needed
    (0.5, Decimal('4000'), 3, 6)
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency
from pipelinekit.reports._windows import (
    Window,
    currency_args,
    in_window,
    merged_currency,
    ratio,
    window_arg,
)
from pipelinekit.reports.funnel import reach
from pipelinekit.results import Result

__all__ = ["LeadRequirement", "LeadRequirementResult", "StageRequirement"]

_ZERO = Decimal(0)


def _money_arg(value: object, argument: str, *, positive: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ArgumentError(
            argument,
            f"expected a Decimal amount (or an int or decimal string), got {value!r}; "
            "floats are not exact money",
        )
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise ArgumentError(argument, f"not a decimal number: {value!r}") from None
    if not amount.is_finite() or amount < 0 or (positive and amount == 0):
        need = "> 0" if positive else ">= 0"
        raise ArgumentError(argument, f"must be a finite amount {need}, got {value!r}")
    return amount


class StageRequirement(BaseModel):
    """How many deals must reach one open stage.

    Attributes:
        stage, label: the stage.
        reached, won, lost: learning-cohort opportunities that reached the stage, and of
            those how many are won / lost at ``as_of``.
        stage_to_won: won ÷ (won + lost) among them (float; ``None`` if none is closed).
        needed: deals that must reach the stage (``None`` when undefined).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    label: str
    reached: int
    won: int
    lost: int
    stage_to_won: float | None
    needed: int | None


class LeadRequirementResult(Result):
    """Leads, deals and stage reaches needed for a revenue target, with what they rest on.

    Attributes:
        as_of, window: when and from which opening window the rates were learned.
        target, won_so_far, remaining: the target, revenue already won (or ``None``),
            and what is left to win (``max(target - won_so_far, 0)``).
        currency: the currency of the money figures.
        opportunities, won, lost, open: the learning cohort and its outcomes at ``as_of``
            (``open`` deals are censored: left out of the rates).
        won_amount, won_with_amount: total amount of the won deals that have one, and
            how many they are.
        lead_to_win_rate: won ÷ (won + lost) (float, ``None`` if nothing is closed).
        average_won_amount: ``Decimal``, ``None`` without won amounts.
        deals_needed, leads_needed: the requirement, ``None`` when undefined.
        defined: whether the requirement could be computed; ``reason`` says why not.
        stages: a :class:`StageRequirement` per open stage, in funnel order.
    """

    as_of: datetime
    window: Window | None
    target: Decimal
    won_so_far: Decimal | None
    remaining: Decimal
    currency: str | None
    funnel_order: tuple[str, ...]
    opportunities: int
    won: int
    lost: int
    open: int
    won_amount: Decimal
    won_with_amount: int
    lead_to_win_rate: float | None
    average_won_amount: Decimal | None
    deals_needed: int | None
    leads_needed: int | None
    defined: bool
    reason: str | None
    stages: tuple[StageRequirement, ...]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per open stage: reached/won/lost, stage-to-won rate, deals needed."""
        return [s.model_dump() for s in self.stages]

    def summary_records(self) -> list[dict[str, Any]]:
        """One dict: the headline requirement and the rates it rests on."""
        return [
            {
                "target": self.target,
                "won_so_far": self.won_so_far,
                "remaining": self.remaining,
                "currency": self.currency,
                "lead_to_win_rate": self.lead_to_win_rate,
                "average_won_amount": self.average_won_amount,
                "deals_needed": self.deals_needed,
                "leads_needed": self.leads_needed,
                "defined": self.defined,
                "reason": self.reason,
            }
        ]

    def _html_title(self) -> str:
        if self.leads_needed is None:
            return f"Lead requirement: undefined ({self.reason})"
        return (
            f"Lead requirement: {self.leads_needed} leads, {self.deals_needed} deals "
            f"for {self.remaining} {self.currency or ''}".rstrip()
        )

    def merge(self, other: LeadRequirementResult) -> LeadRequirementResult:
        """The requirement learned from both sets of opportunities (counts add).

        Raises:
            ArgumentError: different as_of, window, target, won_so_far or scheme.
            CurrencyError: the results are in different currencies.
        """
        if not isinstance(other, LeadRequirementResult):
            raise ArgumentError("other", f"expected a LeadRequirementResult, got {other!r}")
        for name in ("as_of", "window", "target", "won_so_far", "funnel_order"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge results with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}",
                )
        pairs = zip(self.stages, other.stages, strict=True)
        return _build(
            as_of=self.as_of,
            window=self.window,
            target=self.target,
            won_so_far=self.won_so_far,
            currency=merged_currency(self.currency, other.currency),
            funnel_order=self.funnel_order,
            won=self.won + other.won,
            lost=self.lost + other.lost,
            open_count=self.open + other.open,
            won_amount=EXACT.add(self.won_amount, other.won_amount),
            won_with_amount=self.won_with_amount + other.won_with_amount,
            stages=[
                (a.stage, a.label, a.reached + b.reached, a.won + b.won, a.lost + b.lost)
                for a, b in pairs
            ],
        )


class LeadRequirement:
    """Leads needed to reach a revenue target, learned from history (see the module docs).

    Args:
        target: the revenue target (``Decimal``, int or decimal string; > 0), in the
            reporting currency.
        window: ``(start, end)``: learn from opportunities opened in ``[start, end)``;
            ``None`` learns from every opportunity opened by ``as_of``.
        currency: the reporting currency; ``None`` requires the won amounts to share one.
        rates: :class:`~pipelinekit.money.FxRates` for other currencies (dated rates apply
            on the close date).
        won_so_far: revenue already won in the target period (>= 0): plan only for the
            rest.

    Raises:
        ArgumentError: a bad target, window, currency, rates or won_so_far.

    Example:
        >>> from pipelinekit import demo
        >>> from pipelinekit.reports.lead_requirement import LeadRequirement
        >>> r = LeadRequirement(target=100_000).compute(
        ...     demo.demo_history(opportunities=30, seed=3), as_of="2024-09-30T00:00:00Z")
        >>> r.defined, r.leads_needed >= r.deals_needed
        (True, True)
    """

    def __init__(
        self,
        *,
        target: Decimal | int | str,
        window: tuple[Instant, Instant] | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
        won_so_far: Decimal | int | str | None = None,
    ) -> None:
        self.target = _money_arg(target, "target", positive=True)
        self.window = window_arg(window)
        currency_args(currency, rates)
        self.currency = currency
        self.rates = rates
        self.won_so_far = (
            None if won_so_far is None else _money_arg(won_so_far, "won_so_far", positive=False)
        )

    def __repr__(self) -> str:
        return (
            f"LeadRequirement(target={self.target!r}, window={self.window!r}, "
            f"currency={self.currency!r}, won_so_far={self.won_so_far!r})"
        )

    def compute(self, history: History, *, as_of: Instant) -> LeadRequirementResult:
        """Learn the rates as of ``as_of`` and size the requirement.

        Raises:
            CurrencyError: won amounts in several currencies without ``currency``/``rates``.
        """
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        open_stages = scheme.open_stages
        to_rep = ReportingCurrency(self.currency, self.rates)
        reached = [0] * len(open_stages)
        won_at = [0] * len(open_stages)
        lost_at = [0] * len(open_stages)
        won = lost = open_count = won_with_amount = 0
        won_amount = _ZERO
        for opp in history.as_of(when).values():
            if not in_window(opp.opened_at, self.window):
                continue
            k = reach(opp, scheme)
            for i in range(k):
                reached[i] += 1
                won_at[i] += opp.is_won
                lost_at[i] += opp.is_lost
            if opp.is_open:
                open_count += 1
            elif opp.is_lost:
                lost += 1
            else:
                won += 1
                if opp.amount is not None and opp.closed_at is not None:
                    amount = to_rep(opp.amount, opp.currency, on=opp.closed_at.date())
                    won_amount = EXACT.add(won_amount, amount)
                    won_with_amount += 1
        return _build(
            as_of=when,
            window=self.window,
            target=self.target,
            won_so_far=self.won_so_far,
            currency=to_rep.currency if to_rep.currency is not None else self.currency,
            funnel_order=scheme.keys,
            won=won,
            lost=lost,
            open_count=open_count,
            won_amount=won_amount,
            won_with_amount=won_with_amount,
            stages=[
                (s.key, s.label, reached[i], won_at[i], lost_at[i])
                for i, s in enumerate(open_stages)
            ],
        )


def _ceil(value: Fraction) -> int:
    return math.ceil(value)


def _build(
    *,
    as_of: datetime,
    window: Window | None,
    target: Decimal,
    won_so_far: Decimal | None,
    currency: str | None,
    funnel_order: tuple[str, ...],
    won: int,
    lost: int,
    open_count: int,
    won_amount: Decimal,
    won_with_amount: int,
    stages: list[tuple[str, str, int, int, int]],
) -> LeadRequirementResult:
    remaining = max(EXACT.subtract(target, won_so_far or _ZERO), _ZERO)
    average = won_amount / won_with_amount if won_with_amount else None
    deals: int | None = None
    leads: int | None = None
    reason: str | None = None
    if remaining == 0:
        deals = leads = 0
    elif won + lost == 0:
        reason = (
            "no opportunity of the learning window is closed yet: the lead-to-win rate is undefined"
        )
    elif won == 0:
        reason = (
            "no opportunity of the learning window was won: the lead-to-win rate is 0 "
            "and the average won amount is undefined"
        )
    elif won_with_amount == 0 or won_amount <= 0:
        reason = "the won opportunities have no amount: the average won amount is undefined"
    else:
        deals = _ceil(Fraction(remaining) * won_with_amount / Fraction(won_amount))
        leads = _ceil(Fraction(deals * (won + lost), won))
    rows = []
    for key, label, reached, s_won, s_lost in stages:
        needed: int | None = None
        if deals == 0:
            needed = 0
        elif deals is not None and s_won:
            needed = _ceil(Fraction(deals * (s_won + s_lost), s_won))
        rows.append(
            StageRequirement(
                stage=key,
                label=label,
                reached=reached,
                won=s_won,
                lost=s_lost,
                stage_to_won=ratio(s_won, s_won + s_lost),
                needed=needed,
            )
        )
    return LeadRequirementResult(
        as_of=as_of,
        window=window,
        target=target,
        won_so_far=won_so_far,
        remaining=remaining,
        currency=currency,
        funnel_order=funnel_order,
        opportunities=won + lost + open_count,
        won=won,
        lost=lost,
        open=open_count,
        won_amount=won_amount,
        won_with_amount=won_with_amount,
        lead_to_win_rate=ratio(won, won + lost),
        average_won_amount=average,
        deals_needed=deals,
        leads_needed=leads,
        defined=deals is not None,
        reason=reason,
        stages=tuple(rows),
    )
