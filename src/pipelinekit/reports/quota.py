"""Quota attainment: Vtiger's Forecast & Quota per owner or team and period.

For every owner (and every team) and period, :class:`QuotaAttainment` reports

- **quota**: passed in (:class:`Quota`); ``None`` for an owner without one (the row is kept:
  nobody is silently dropped), and owners with a quota but no deals still get a row;
- **won**: the amount of deals won in the period (the local date of ``closed_at`` in ``tz``
  falls in it), converted on that date;
- **gap** = quota - won;
- **pipeline**: the amount of open deals whose expected close falls in the period (deals
  overdue from a past period stay in that period), and **weighted pipeline** (amount x
  probability; ``None`` when a deal has no probability), converted at the ``as_of`` date;
- **coverage** = pipeline / gap (``None`` when the gap is zero or less: the quota is met),
  **attainment** = won / quota (``None`` for a zero quota), both floats;
- the **forecast categories** (:mod:`pipelinekit.categories`), individual (columns
  ``category_pipeline``, ``category_best_case``, ``category_most_likely``,
  ``category_commit``, ``category_closed`` = won, ``category_omitted`` = open deals omitted
  plus deals lost in the period) and Salesforce's cumulative columns
  (``commit_forecast``, ``most_likely_forecast``, ``best_case_forecast``,
  ``open_pipeline``);
- for teams: the team quota, the sum of its members' quotas (``member_quota``) and Vtiger's
  target **mismatch** = team quota - member quota.

A deal belongs to its owner at ``as_of``. The periods reported are those holding a won or
open deal, or named by a quota. Open deals without an expected close are in no period: they
are listed in :attr:`QuotaAttainmentResult.undated`.

Money is ``Decimal``; ``merge`` adds the sums of results on disjoint opportunities (same
quotas and settings) and recomputes the ratios, so it equals the result on the whole.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.quota import QuotaAttainment
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-07-01T00:00:00Z",
    ...    "stage": "closed-won", "amount": "300", "currency": "EUR", "owner": "ann"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-07-01T00:00:00Z",
    ...    "stage": "negotiation-review", "amount": "500", "currency": "EUR",
    ...    "owner": "ann", "expected_close": "2024-09-15"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = QuotaAttainment(quotas={("ann", "2024-Q3"): 1000}).compute(
    ...     h, as_of="2024-08-01T00:00:00Z")
    >>> row = r.rows[0]
    >>> row.period.label, row.quota, row.won, row.gap, row.pipeline, row.coverage
    ('2024-Q3', Decimal('1000'), Decimal('300'), Decimal('700'), Decimal('500'), 0.7142857142857143)
    >>> row.attainment, r.to_records()[0]["commit_forecast"]
    (0.3, Decimal('800'))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelinekit._time import Instant, instant
from pipelinekit.categories import (
    CategoryMap,
    ForecastCategory,
    category_overrides,
    forecast_columns,
)
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, ReportingCurrency, total
from pipelinekit.periods import Period, PeriodKind, period_kind
from pipelinekit.results import Result

__all__ = ["Quota", "QuotaAttainment", "QuotaAttainmentResult", "QuotaRow"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ZERO = Decimal(0)
Level = Literal["owner", "team"]


class Quota(BaseModel):
    """A sales target: who must win how much in which period.

    Attributes:
        who: the owner (or, in ``team_quotas``, the team).
        period: a period label of the report's period kind (``"2024-Q3"``,
            ``"2024-07"``, ``"FY2025"``...); ``None`` means every period of the report.
        amount: the target, in the reporting currency (``Decimal``, at least 0).

    Example:
        >>> Quota(who="ann", period="2024-Q3", amount="50000").amount
        Decimal('50000')
    """

    model_config = _FROZEN

    who: Annotated[str, Field(min_length=1)]
    period: str | None = None
    amount: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


QuotaInput = Sequence[Quota] | Mapping[Any, Decimal | int | str]
"""Quotas as :class:`Quota` objects, or a mapping ``{(who, period label): amount}`` /
``{who: amount}`` (the same amount in every period)."""


class QuotaRow(BaseModel):
    """Quota, won, gap, pipeline and forecast categories of one owner or team in one period.

    Attributes:
        level: ``"owner"`` or ``"team"``; ``who``: the owner (``None`` for deals without
            one) or the team.
        period: the period.
        quota: the quota (``None`` if none was given).
        won, won_deals: amount and number of deals won in the period.
        pipeline, pipeline_deals: amount and number of open deals expected to close in it.
        weighted_pipeline: their weighted amount (``None`` when a deal has no probability).
        categories: the amount per forecast category, in :class:`ForecastCategory` order.
        gap: quota - won; coverage: pipeline / gap (float); attainment: won / quota
            (float); each ``None`` when undefined, with the reason in ``note``.
        member_quota, mismatch: for teams, the sum of the members' quotas and
            team quota - member quota (``None`` for owners or when unknown).
    """

    model_config = _FROZEN

    level: Level
    who: str | None
    period: Period
    quota: Decimal | None
    won: Decimal
    won_deals: int
    pipeline: Decimal
    pipeline_deals: int
    weighted_pipeline: Decimal | None
    categories: tuple[tuple[ForecastCategory, Decimal], ...]
    gap: Decimal | None = None
    coverage: float | None = None
    attainment: float | None = None
    member_quota: Decimal | None = None
    mismatch: Decimal | None = None
    note: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The row as a plain dict, with the individual and cumulative category columns."""
        record: dict[str, Any] = {
            "level": self.level,
            "who": self.who,
            "period": self.period.label,
            "period_start": self.period.start,
            "quota": self.quota,
            "won": self.won,
            "gap": self.gap,
            "pipeline": self.pipeline,
            "weighted_pipeline": self.weighted_pipeline,
            "coverage": self.coverage,
            "attainment": self.attainment,
            "won_deals": self.won_deals,
            "pipeline_deals": self.pipeline_deals,
        }
        columns = forecast_columns(dict(self.categories))
        for category in ForecastCategory:
            record[f"category_{category.value}"] = columns.pop(category.value)
        record.update(columns)
        record["member_quota"] = self.member_quota
        record["mismatch"] = self.mismatch
        record["note"] = self.note
        return record


def _finish(row: QuotaRow) -> QuotaRow:
    """Derive gap, coverage, attainment, mismatch and the note from the sums."""
    quota = row.quota
    notes = []
    gap = coverage = attainment = mismatch = None
    if quota is None:
        notes.append("no quota")
    else:
        gap = EXACT.subtract(quota, row.won)
        if gap > 0:
            coverage = float(row.pipeline / gap)
        else:
            notes.append("quota met: no gap to cover")
        if quota > 0:
            attainment = float(row.won / quota)
        else:
            notes.append("quota is 0: attainment undefined")
    if row.level == "team" and quota is not None and row.member_quota is not None:
        mismatch = EXACT.subtract(quota, row.member_quota)
        if mismatch != 0:
            notes.append("team quota differs from the sum of its members' quotas")
    return row.model_copy(
        update={
            "gap": gap,
            "coverage": coverage,
            "attainment": attainment,
            "mismatch": mismatch,
            "note": "; ".join(notes) or None,
        }
    )


def _row_key(row: QuotaRow) -> tuple[date, int, bool, str]:
    return (row.period.start, 0 if row.level == "owner" else 1, row.who is None, row.who or "")


def _add(a: QuotaRow, b: QuotaRow) -> QuotaRow:
    weighted = None
    if a.weighted_pipeline is not None and b.weighted_pipeline is not None:
        weighted = EXACT.add(a.weighted_pipeline, b.weighted_pipeline)
    cats = tuple(
        (c, EXACT.add(x, y)) for (c, x), (_, y) in zip(a.categories, b.categories, strict=True)
    )
    return _finish(
        a.model_copy(
            update={
                "won": EXACT.add(a.won, b.won),
                "won_deals": a.won_deals + b.won_deals,
                "pipeline": EXACT.add(a.pipeline, b.pipeline),
                "pipeline_deals": a.pipeline_deals + b.pipeline_deals,
                "weighted_pipeline": weighted,
                "categories": cats,
            }
        )
    )


class QuotaAttainmentResult(Result):
    """Quota attainment rows per owner and team and period.

    Attributes:
        as_of: when it was computed; ``period_kind`` the periods' kind.
        currency: the reporting currency (``None`` if no amount was seen).
        settings: the calculator's configuration (compared by :meth:`merge`).
        rows: owner rows then team rows per period, periods in order.
        undated: ids of open deals without an expected close (in no period).
    """

    as_of: datetime
    period_kind: PeriodKind
    currency: str | None
    settings: tuple[tuple[str, str], ...]
    rows: tuple[QuotaRow, ...]
    undated: tuple[str, ...]

    def to_records(self) -> list[dict[str, Any]]:
        """One row per owner or team and period (see :class:`QuotaRow`)."""
        return [row.to_record() for row in self.rows]

    def row(self, who: str | None, period: str, *, level: Level = "owner") -> QuotaRow:
        """The row of ``who`` in the period labelled ``period``.

        Raises:
            ArgumentError: (naming ``who``) no such row.
        """
        for r in self.rows:
            if r.level == level and r.who == who and r.period.label == period:
                return r
        raise ArgumentError("who", f"no {level} row for {who!r} in {period!r}")

    def merge(self, other: QuotaAttainmentResult) -> QuotaAttainmentResult:
        """The result over both results' opportunities (disjoint sets, same settings).

        Raises:
            ArgumentError: (naming ``other``) different ``as_of``, periods, quotas,
                teams or other settings, or different currencies.
        """
        if not isinstance(other, QuotaAttainmentResult):
            raise ArgumentError(
                "other", f"expected a QuotaAttainmentResult, got {type(other).__name__}"
            )
        for name in ("as_of", "period_kind", "settings"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge results with different {name} (quotas and teams must be "
                    "equal in both)",
                )
        if None not in (self.currency, other.currency) and self.currency != other.currency:
            raise ArgumentError(
                "other", f"cannot merge results in {self.currency} and {other.currency}"
            )
        rows: dict[tuple[str, str | None, Period], QuotaRow] = {
            (r.level, r.who, r.period): r for r in self.rows
        }
        for r in other.rows:
            key = (r.level, r.who, r.period)
            rows[key] = _add(rows[key], r) if key in rows else r
        return self.model_copy(
            update={
                "currency": self.currency or other.currency,
                "rows": tuple(sorted(rows.values(), key=_row_key)),
                "undated": tuple(sorted(set(self.undated) | set(other.undated))),
            }
        )

    def _html_title(self) -> str:
        return (
            f"Quota attainment by {self.period_kind.spec} as of "
            f"{self.as_of.isoformat(sep=' ')} ({self.currency or 'no currency'})"
        )


_YEAR = re.compile(r"(\d{4})")


def _period_of_label(kind: PeriodKind, label: str, argument: str) -> Period:
    """The period of ``kind`` labelled ``label`` (searched around the years it names)."""
    for text in _YEAR.findall(label):
        year = int(text)
        if not 2 <= year <= 9997:
            continue
        for p in kind.between(date(year - 1, 1, 1), date(year + 2, 1, 1)):
            if p.label == label:
                return p
    example = kind.period_of(date(2024, 7, 1)).label
    raise ArgumentError(argument, f"{label!r} is not a {kind.spec} period label (e.g. {example!r})")


def _quotas(
    value: object, argument: str, kind: PeriodKind
) -> tuple[tuple[Quota, ...], dict[str, Period]]:
    if value is None:
        return (), {}
    items: list[Quota] = []
    try:
        if isinstance(value, Mapping):
            for key, amount in value.items():
                if isinstance(key, tuple) and len(key) == 2:
                    items.append(Quota(who=key[0], period=key[1], amount=amount))
                elif isinstance(key, str):
                    items.append(Quota(who=key, amount=amount))
                else:
                    raise ArgumentError(
                        argument,
                        f"expected keys (who, period label) or who, got {key!r}",
                    )
        elif isinstance(value, Sequence) and not isinstance(value, str):
            for q in value:
                items.append(q if isinstance(q, Quota) else Quota.model_validate(q))
        else:
            raise ArgumentError(
                argument, f"expected Quota objects or a mapping, got {type(value).__name__}"
            )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ArgumentError(
            argument, f"bad quota: {'.'.join(map(str, err['loc']))}: {err['msg']}"
        ) from None
    seen: set[tuple[str, str | None]] = set()
    periods: dict[str, Period] = {}
    for q in items:
        if (q.who, q.period) in seen:
            raise ArgumentError(
                argument, f"two quotas for {q.who!r} in {q.period or 'every period'}"
            )
        seen.add((q.who, q.period))
        if q.period is not None and q.period not in periods:
            periods[q.period] = _period_of_label(kind, q.period, argument)
    return tuple(sorted(items, key=lambda q: (q.who, q.period or ""))), periods


class _Bucket:
    """Running sums of one owner in one period."""

    __slots__ = ("cats", "pipeline", "pipeline_deals", "weighted", "won", "won_deals")

    def __init__(self) -> None:
        self.won = self.pipeline = _ZERO
        self.won_deals = self.pipeline_deals = 0
        self.weighted: Decimal | None = _ZERO
        self.cats = dict.fromkeys(ForecastCategory, _ZERO)

    def add(self, other: _Bucket) -> None:
        self.won = EXACT.add(self.won, other.won)
        self.pipeline = EXACT.add(self.pipeline, other.pipeline)
        self.won_deals += other.won_deals
        self.pipeline_deals += other.pipeline_deals
        if self.weighted is None or other.weighted is None:
            self.weighted = None
        else:
            self.weighted = EXACT.add(self.weighted, other.weighted)
        for c in ForecastCategory:
            self.cats[c] = EXACT.add(self.cats[c], other.cats[c])


class QuotaAttainment:
    """Quota, won, gap, pipeline, coverage and forecast categories per owner, team, period.

    Args:
        quotas: the owners' quotas: :class:`Quota` objects, or ``{(owner, period label):
            amount}``, or ``{owner: amount}`` for the same quota in every period (an
            explicit period's quota wins over it).
        period: the period kind (``"month"``, ``"quarter"``, ``"fiscal_year:4"``... or a
            :class:`~pipelinekit.periods.PeriodKind`).
        teams: team name -> its members (owners; unknown owners are fine).
        team_quotas: the teams' quotas, in the same forms as ``quotas``.
        currency, rates: reporting currency and :class:`~pipelinekit.money.FxRates`
            (quotas are in the reporting currency).
        categories: the :class:`~pipelinekit.categories.CategoryMap` (default: the
            scheme's default map).
        overrides: per-deal forecast categories, opportunity id -> category.
        tz: the time zone whose calendar places a close instant in a period.

    Raises:
        ArgumentError: a bad argument, naming it.

    Example:
        >>> from pipelinekit import demo
        >>> r = QuotaAttainment(quotas={"ann": 100000}, teams={"east": ("ann", "bob")}
        ...     ).compute(demo.demo_history(opportunities=30, seed=2), as_of="2024-09-30T00:00:00Z")
        >>> r.row("ann", "2024-Q3").quota
        Decimal('100000')
    """

    def __init__(
        self,
        *,
        quotas: QuotaInput | None = None,
        period: str | PeriodKind = "quarter",
        teams: Mapping[str, Sequence[str]] | None = None,
        team_quotas: QuotaInput | None = None,
        currency: str | None = None,
        rates: FxRates | None = None,
        categories: CategoryMap | None = None,
        overrides: Mapping[str, ForecastCategory | str] | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        self.period_kind = period_kind(period)
        self.quotas, owner_periods = _quotas(quotas, "quotas", self.period_kind)
        self.team_quotas, team_periods = _quotas(team_quotas, "team_quotas", self.period_kind)
        self.quota_periods = {**owner_periods, **team_periods}
        self.teams = _teams(teams)
        unknown = sorted({q.who for q in self.team_quotas} - {t for t, _ in self.teams})
        if unknown:
            raise ArgumentError("team_quotas", f"quotas for unknown teams {unknown}")
        ReportingCurrency(currency, rates)  # validates both
        if categories is not None and not isinstance(categories, CategoryMap):
            raise ArgumentError(
                "categories", f"expected a CategoryMap, got {type(categories).__name__}"
            )
        if not isinstance(tz, tzinfo):
            raise ArgumentError("tz", f"expected a tzinfo, got {tz!r}")
        self.currency = currency
        self.rates = rates
        self.categories = categories
        self.overrides = category_overrides(overrides)
        self.tz = tz

    def _settings(self) -> tuple[tuple[str, str], ...]:
        return (
            ("quotas", repr([q.model_dump(mode="json") for q in self.quotas])),
            ("team_quotas", repr([q.model_dump(mode="json") for q in self.team_quotas])),
            ("teams", repr(self.teams)),
            ("currency", str(self.currency)),
            ("rates", "" if self.rates is None else self.rates.model_dump_json()),
            ("categories", "" if self.categories is None else self.categories.model_dump_json()),
            ("overrides", repr([(k, v.value) for k, v in self.overrides])),
            ("tz", str(self.tz)),
        )

    def compute(self, history: History, *, as_of: Instant) -> QuotaAttainmentResult:
        """Quota attainment as of ``as_of`` (only events up to ``as_of`` are seen).

        Raises:
            ArgumentError: the category map does not fit the history's scheme.
            CurrencyError: amounts in several currencies without currency and rates.
        """
        t = instant(as_of, argument="as_of")
        history = history.until(t)
        cmap = self.categories or CategoryMap.for_scheme(history.scheme)
        cmap.check(history.scheme)
        overrides = dict(self.overrides)
        money = ReportingCurrency(self.currency, self.rates)
        kind, tz = self.period_kind, self.tz
        buckets: dict[tuple[str | None, Period], _Bucket] = {}
        undated: list[str] = []
        pipe = history.as_of(t)
        for oid in sorted(pipe):
            o = pipe[oid]
            if o.is_open:
                if o.expected_close is None:
                    undated.append(oid)
                    continue
                period = kind.period_of(o.expected_close)
                on = t.astimezone(tz).date()
            else:
                assert o.closed_at is not None  # a closed deal has a close instant
                period = kind.period_of_instant(o.closed_at, tz)
                on = o.closed_at.astimezone(tz).date()
            b = buckets.setdefault((o.owner, period), _Bucket())
            value = _ZERO if o.amount is None else money(o.amount, o.currency, on)
            category = cmap.category_of(o, overrides)
            b.cats[category] = EXACT.add(b.cats[category], value)
            if o.is_won:
                b.won = EXACT.add(b.won, value)
                b.won_deals += 1
            elif o.is_open:
                b.pipeline = EXACT.add(b.pipeline, value)
                b.pipeline_deals += 1
                weighted = o.weighted_amount
                if o.amount is not None and weighted is None:
                    b.weighted = None
                elif b.weighted is not None and weighted is not None:
                    b.weighted = EXACT.add(b.weighted, money(weighted, o.currency, on))
        return QuotaAttainmentResult(
            as_of=t,
            period_kind=kind,
            currency=money.currency,
            settings=self._settings(),
            rows=tuple(sorted(self._rows(buckets), key=_row_key)),
            undated=tuple(undated),
        )

    def _quota(self, quotas: tuple[Quota, ...], who: str, period: Period) -> Decimal | None:
        every = None
        for q in quotas:
            if q.who == who:
                if q.period == period.label:
                    return q.amount
                if q.period is None:
                    every = q.amount
        return every

    def _rows(self, buckets: dict[tuple[str | None, Period], _Bucket]) -> list[QuotaRow]:
        periods = {p for _, p in buckets} | set(self.quota_periods.values())
        every = {q.who for q in self.quotas if q.period is None}
        rows = []
        for period in periods:
            owners = {w for w, p in buckets if p == period} | every
            owners |= {q.who for q in self.quotas if q.period == period.label}
            for who in owners:
                quota = None if who is None else self._quota(self.quotas, who, period)
                rows.append(_row("owner", who, period, quota, buckets.get((who, period))))
            for team, members in self.teams:
                team_sums = _Bucket()
                for member in members:
                    found = buckets.get((member, period))
                    if found is not None:
                        team_sums.add(found)
                member_quotas = [self._quota(self.quotas, m, period) for m in members]
                known = [q for q in member_quotas if q is not None]
                quota = self._quota(self.team_quotas, team, period)
                row = _row("team", team, period, quota, team_sums)
                rows.append(
                    _finish(
                        row.model_copy(update={"member_quota": total(known) if known else None})
                    )
                )
        return rows


def _row(
    level: Level, who: str | None, period: Period, quota: Decimal | None, b: _Bucket | None
) -> QuotaRow:
    b = b or _Bucket()
    return _finish(
        QuotaRow(
            level=level,
            who=who,
            period=period,
            quota=quota,
            won=b.won,
            won_deals=b.won_deals,
            pipeline=b.pipeline,
            pipeline_deals=b.pipeline_deals,
            weighted_pipeline=b.weighted,
            categories=tuple(b.cats.items()),
        )
    )


def _teams(teams: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if teams is None:
        return ()
    if not isinstance(teams, Mapping):
        raise ArgumentError(
            "teams", f"expected a mapping of team -> members, got {type(teams).__name__}"
        )
    out = []
    for team, members in teams.items():
        if not isinstance(team, str) or not team:
            raise ArgumentError("teams", f"a team name must be a non-empty string, got {team!r}")
        if isinstance(members, str) or not isinstance(members, Sequence | frozenset | set):
            raise ArgumentError(
                "teams", f"team {team!r}: expected a sequence of owners, got {members!r}"
            )
        names = sorted(set(members))
        if not all(isinstance(m, str) and m for m in names):
            raise ArgumentError("teams", f"team {team!r}: owners must be non-empty strings")
        out.append((team, tuple(names)))
    return tuple(sorted(out))
