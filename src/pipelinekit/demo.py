"""A small, deterministic, synthetic sales history for examples, docs and tests.

The generator walks opportunities forward through any stage scheme with moves the scheme
allows, so its output is always legal. Same arguments, same records, bit for bit.

Example:
    >>> from pipelinekit import demo
    >>> history = demo.demo_history(opportunities=20, seed=1)
    >>> len(history.opportunity_ids)
    20
    >>> demo.demo_records(opportunities=3, seed=1) == demo.demo_records(opportunities=3, seed=1)
    True
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.stages import StageScheme

__all__ = [
    "CRM_ADVANCE",
    "CRM_SCHEME",
    "crm_history",
    "crm_records",
    "demo_history",
    "demo_records",
]

_START = datetime(2024, 1, 1, tzinfo=UTC)


def demo_records(
    *,
    scheme: StageScheme | None = None,
    opportunities: int = 40,
    start: datetime = _START,
    days: int = 365,
    seed: int = 0,
    currency: str = "EUR",
    owners: tuple[str, ...] = ("ann", "bob", "chen"),
    products: tuple[str, ...] = ("hardware", "software", "services"),
    sources: tuple[str, ...] = ("web", "referral", "event"),
    win_rate: float = 0.4,
) -> list[dict[str, Any]]:
    """Plain-dict records of a synthetic history (see :func:`demo_history`).

    Args:
        scheme: the stage scheme to walk (default: the ``salesforce`` preset).
        opportunities: how many opportunities to open.
        start: the earliest instant; opportunities open within ``days`` after it.
        days: the length of the history; nothing happens after ``start + days``.
        seed: the seed of the local random generator.
        currency: the currency of every amount.
        owners, products, sources: the values drawn for those fields.
        win_rate: roughly the share of deals that are won rather than lost (each move
            is a loss with the probability that gives this overall rate).
    """
    if opportunities < 0:
        raise ArgumentError("opportunities", f"must be >= 0, got {opportunities}")
    if days < 1:
        raise ArgumentError("days", f"must be >= 1, got {days}")
    if start.tzinfo is None:
        raise ArgumentError("start", "must be timezone-aware")
    if scheme is None:
        from pipelinekit import schemes

        scheme = schemes.get("salesforce")
    rng = random.Random(seed)
    end = start + timedelta(days=days)
    if not 0 < win_rate <= 1:
        raise ArgumentError("win_rate", f"must be in (0, 1], got {win_rate}")
    first = scheme.stages[0].key
    lose = 1 - win_rate ** (1 / max(1, len(scheme.open_stages)))
    records: list[dict[str, Any]] = []
    for n in range(opportunities):
        oid = f"opp-{n + 1:04d}"
        at = start + timedelta(minutes=rng.randrange(days * 24 * 60))
        amount = Decimal(rng.randrange(10, 1000) * 100)
        close = (at + timedelta(days=rng.randrange(20, 150))).date()
        owner = rng.choice(owners)
        records.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": at.isoformat(),
                "stage": first,
                "amount": str(amount),
                "currency": currency,
                "owner": owner,
                "account": f"account-{rng.randrange(1, opportunities // 2 + 2)}",
                "product": rng.choice(products),
                "source": rng.choice(sources),
                "expected_close": close.isoformat(),
                "name": f"Deal {n + 1}",
                "actor": owner,
            }
        )
        stage = first
        while True:
            at += timedelta(minutes=1 + int(rng.expovariate(1 / 12) * 24 * 60))
            if at >= end:
                break
            roll = rng.random()
            if roll < 0.12:
                records.append(
                    _event(
                        "activity_logged",
                        oid,
                        at,
                        kind=rng.choice(("call", "meeting", "email")),
                        note=None,
                    )
                )
                continue
            if roll < 0.18:
                due = (at + timedelta(days=rng.randrange(1, 21))).date()
                records.append(
                    _event("next_action_scheduled", oid, at, due=due.isoformat(), note="follow up")
                )
                continue
            if roll < 0.23:
                close = close + timedelta(days=rng.randrange(7, 45))
                records.append(
                    _event("close_date_changed", oid, at, expected_close=close.isoformat())
                )
                continue
            if roll < 0.27:
                amount = (amount * Decimal(rng.randrange(80, 125)) / 100).quantize(Decimal(1))
                records.append(_event("amount_changed", oid, at, amount=str(amount)))
                continue
            nxt = _next_stage(scheme, stage, rng, lose)
            if nxt is None:
                break
            records.append(_event("stage_changed", oid, at, stage=nxt, reason=None))
            stage = nxt
            if not scheme.stage(stage).is_open and (
                scheme.stage(stage).is_lost or rng.random() < 0.7
            ):
                break
    records.sort(key=lambda r: r["at"])
    return records


def _event(type_: str, oid: str, at: datetime, **fields: object) -> dict[str, Any]:
    return {"type": type_, "opportunity_id": oid, "at": at.isoformat(), **fields}


def _next_stage(scheme: StageScheme, stage: str, rng: random.Random, lose: float) -> str | None:
    here = scheme.index(stage)
    legal = [k for k in scheme.keys if k != stage and scheme.can_move(stage, k)]
    if not legal:
        return None
    lost = [k for k in legal if scheme.stage(k).is_lost]
    if lost and rng.random() < lose:
        return rng.choice(lost)
    ahead = sorted(
        (k for k in legal if not scheme.stage(k).is_lost and scheme.index(k) > here),
        key=scheme.index,
    )
    if ahead:
        # mostly the next stage; sometimes skip one (stages may be skipped)
        return ahead[0] if rng.random() < 0.8 or len(ahead) == 1 else ahead[1]
    others = [k for k in legal if not scheme.stage(k).is_lost]
    return rng.choice(others) if others else rng.choice(legal)


def demo_history(
    *,
    scheme: StageScheme | None = None,
    opportunities: int = 40,
    start: datetime = _START,
    days: int = 365,
    seed: int = 0,
    currency: str = "EUR",
) -> History:
    """A synthetic :class:`~pipelinekit.History`: open, advance, win, lose, push dates.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=30, seed=7)
        >>> pipe = h.as_of("2024-07-01T00:00:00Z")
        >>> len(pipe.open()) + len(pipe.won()) + len(pipe.lost()) == len(pipe)
        True
    """
    records = demo_records(
        scheme=scheme,
        opportunities=opportunities,
        start=start,
        days=days,
        seed=seed,
        currency=currency,
    )
    if scheme is None:
        from pipelinekit import schemes

        scheme = schemes.get("salesforce")
    return History.from_records(records, scheme=scheme)


CRM_SCHEME = StageScheme.model_validate(
    {
        "name": "synthetic-crm",
        "description": "A five-step B2B funnel whose weights are what the sales team believes; "
        "the synthetic CRM's true chances of winning are lower (see crm_records).",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "qualified", "label": "Qualified", "weight": "25"},
            {"key": "proposal", "label": "Proposal", "weight": "50"},
            {"key": "negotiation", "label": "Negotiation", "weight": "75"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
"""The scheme of :func:`crm_records`: weights 10/25/50/75 %, far above the true rates."""

CRM_ADVANCE = {"lead": 0.6, "qualified": 0.65, "proposal": 0.55, "negotiation": 0.65}
"""The true chance of moving on from each stage of :func:`crm_records` (if not stalled)."""
_CRM_NEXT = {"lead": "qualified", "qualified": "proposal", "proposal": "negotiation",
             "negotiation": "won"}  # fmt: skip
_CRM_DAYS = {"lead": 10.0, "qualified": 18.0, "proposal": 25.0, "negotiation": 20.0}


def crm_records(
    *,
    months: int = 36,
    deals_per_month: float = 200.0,
    growth: float = 0.01,
    stall_share: float = 0.25,
    quarter_end_push: float = 0.35,
    seed: int = 0,
    start: datetime = datetime(2022, 1, 1, tzinfo=UTC),
    currency: str = "EUR",
) -> list[dict[str, Any]]:
    """Records of a realistic synthetic CRM whose truth is known (for forecast backtests).

    Unlike :func:`demo_records`, this history behaves like a real sales team's, with the
    traits that make naive forecasts fail (and it is under :data:`CRM_SCHEME`):

    - **true rates below the weights**: from each stage a deal moves on with the chance in
      :data:`CRM_ADVANCE` or is lost, so a proposal is won about 36 % of the time, not 50 %;
      the time in a stage is log-normal (median 10 to 25 days, long tail);
    - **zombie deals**: a share ``stall_share`` of deals stall in a random stage and stay
      open for years, as real CRMs keep them; at each year end a third of the deals idle
      for over 180 days are closed lost by a pipeline clean-up;
    - **quarter-end push**: a win due in the first two months of a quarter is pulled into
      its last month with probability ``quarter_end_push``;
    - **growth**: new deals arrive ``deals_per_month`` a month at first, ``growth`` more
      each month (a Poisson count);
    - **optimistic close dates**: typed 30 days after opening and pushed 30 days whenever
      they pass while the deal moves; amounts (log-normal, median 12,000) are revised at
      the proposal.

    Same arguments, same records, bit for bit.

    Example:
        >>> recs = crm_records(months=2, deals_per_month=5, seed=1)
        >>> recs[0]["type"], recs[0]["stage"]
        ('opened', 'lead')
        >>> crm_records(months=2, deals_per_month=5, seed=1) == recs
        True
    """
    if months < 1:
        raise ArgumentError("months", f"must be >= 1, got {months}")
    if deals_per_month < 0:
        raise ArgumentError("deals_per_month", f"must be >= 0, got {deals_per_month}")
    for name, value in (("stall_share", stall_share), ("quarter_end_push", quarter_end_push)):
        if not 0 <= value <= 1:
            raise ArgumentError(name, f"must be in [0, 1], got {value}")
    if start.tzinfo is None:
        raise ArgumentError("start", "must be timezone-aware")
    rng = random.Random(seed)
    end = _add_months(start, months)
    out: list[dict[str, Any]] = []
    idle: dict[str, datetime] = {}  # stalled deal -> last event
    n = 0
    for m in range(months):
        first = _add_months(start, m)
        days = (_add_months(start, m + 1) - first).total_seconds() / 86400
        for _ in range(_poisson(rng, deals_per_month * (1 + growth) ** m)):
            n += 1
            oid = f"deal-{n:05d}"
            at = first + timedelta(days=rng.random() * days)
            amount = Decimal(round(rng.lognormvariate(9.4, 0.7) / 100) * 100 + 100)
            close = (at + timedelta(days=30)).date()
            out.append(
                {
                    "type": "opened",
                    "opportunity_id": oid,
                    "at": at.isoformat(),
                    "stage": "lead",
                    "amount": str(amount),
                    "currency": currency,
                    "owner": rng.choice(("ann", "bob", "chen", "dana")),
                    "product": rng.choice(("hardware", "software", "services")),
                    "expected_close": close.isoformat(),
                }
            )
            stall = rng.choice(list(_CRM_DAYS)) if rng.random() < stall_share else None
            stage = "lead"
            while stage in _CRM_NEXT:
                if stage == stall:
                    idle[oid] = at
                    break
                at += timedelta(days=rng.lognormvariate(math.log(_CRM_DAYS[stage]), 0.8))
                advance = rng.random() < CRM_ADVANCE[stage]
                nxt = _CRM_NEXT[stage] if advance else "lost"
                if nxt == "won" and rng.random() < quarter_end_push:
                    at = _pull_to_quarter_end(at, rng)
                if at >= end:
                    break
                if close < at.date():
                    close = (at + timedelta(days=30)).date()
                    out.append(_event("close_date_changed", oid, at, expected_close=str(close)))
                if nxt == "proposal":
                    amount = Decimal(round(float(amount) * rng.uniform(0.8, 1.3) / 100) * 100)
                    out.append(_event("amount_changed", oid, at, amount=str(amount)))
                out.append(_event("stage_changed", oid, at, stage=nxt))
                stage = nxt
    for year_end in range(start.year, end.year + 1):
        cleanup = datetime(year_end, 12, 31, 12, tzinfo=start.tzinfo)
        if not start < cleanup < end:
            continue
        for oid in sorted(idle):
            last = idle[oid]
            if last < cleanup - timedelta(days=180) and rng.random() < 1 / 3:
                out.append(_event("stage_changed", oid, cleanup, stage="lost", reason="cleanup"))
                idle[oid] = end  # closed: never cleaned again
    out.sort(key=lambda r: r["at"])
    return out


def crm_history(**kwargs: Any) -> History:
    """:func:`crm_records` as a :class:`~pipelinekit.History` under :data:`CRM_SCHEME`.

    Example:
        >>> h = crm_history(months=3, deals_per_month=20, seed=2)
        >>> h.scheme.name, len(h.opportunity_ids) > 40
        ('synthetic-crm', True)
    """
    return History.from_records(crm_records(**kwargs), scheme=CRM_SCHEME)


def _add_months(t: datetime, months: int) -> datetime:
    years, month = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + years, month=month + 1, day=1)


def _pull_to_quarter_end(at: datetime, rng: random.Random) -> datetime:
    position = (at.month - 1) % 3
    if position == 2:
        return at
    last = at.replace(day=1, month=at.month + 2 - position)
    return last + timedelta(days=rng.random() * 27)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 50, Knuth's product method below)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
