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

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.stages import StageScheme

__all__ = ["demo_history", "demo_records"]

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
        # mostly the next stage; sometimes skip one (seed 001: stages may be skipped)
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
