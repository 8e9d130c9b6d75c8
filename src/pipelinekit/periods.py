"""Periods: months, quarters, weeks and fiscal years as half-open intervals of dates.

A :class:`Period` is the calendar dates ``[start, end)`` (``end`` is the first day *after*
the period) with a human label. A :class:`PeriodKind` says how the calendar is cut into
periods; build one with :func:`months`, :func:`quarters`, :func:`weeks`,
:func:`fiscal_years`, or from a short text spec with :func:`period_kind`. The month and
year arithmetic is python-dateutil's ``relativedelta``.

Fiscal years are named by the calendar year in which they **end**: with a fiscal year
starting in April, 2024-04-01 up to (not including) 2025-04-01 is ``FY2025``.

Instants (timezone-aware datetimes) are mapped to the local date in the time zone you pass
(UTC by default) before a period is looked up.

Example:
    >>> from datetime import date
    >>> from pipelinekit.periods import period_kind, quarters
    >>> q = quarters(fiscal_start_month=4).period_of(date(2024, 5, 17))
    >>> q.label, q.start, q.end
    ('FY2025-Q1', datetime.date(2024, 4, 1), datetime.date(2024, 7, 1))
    >>> date(2024, 6, 30) in q, date(2024, 7, 1) in q
    (True, False)
    >>> [p.label for p in period_kind("month").between(date(2024, 1, 15), date(2024, 4, 1))]
    ['2024-01', '2024-02', '2024-03']
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from dateutil.relativedelta import relativedelta, weekday
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError

__all__ = [
    "Period",
    "PeriodKind",
    "PeriodUnit",
    "fiscal_years",
    "months",
    "period_kind",
    "quarters",
    "weeks",
]

PeriodUnit = Literal["month", "quarter", "week", "fiscal_year"]
"""The unit a :class:`PeriodKind` cuts the calendar into."""

_SPECS = (
    "'month', 'quarter', 'quarter:<fiscal start month 1-12>', "
    "'week', 'week:<first weekday 0-6, 0=Monday>', "
    "'fiscal_year', 'fiscal_year:<start month 1-12>'"
)
_RANGE = f"{date.min.isoformat()}..{date.max.isoformat()}"


def _check_int(argument: str, value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArgumentError(argument, f"expected {what} from {low} to {high}, got {value!r}")
    return value


def _check_date(argument: str, value: object) -> date:
    # datetime is a subclass of date; comparing one with a date raises TypeError far from
    # the mistake, and which local date an instant falls on depends on a time zone.
    if isinstance(value, datetime):
        raise ArgumentError(
            argument,
            f"expected a date, got the datetime {value.isoformat()}; use the *_instant "
            "method with a time zone, or pass value.date()",
        )
    if not isinstance(value, date):
        raise ArgumentError(argument, f"expected a date, got {type(value).__name__}")
    return value


def _check_tz(tz: object) -> tzinfo:
    if not isinstance(tz, tzinfo):
        raise ArgumentError(
            "tz", f"expected a tzinfo such as zoneinfo.ZoneInfo('Europe/Warsaw'), got {tz!r}"
        )
    return tz


def _first_instant(d: date, tz: tzinfo) -> datetime:
    """The first instant of local date ``d`` in ``tz``, as an existing wall time.

    Round-tripping through UTC moves a midnight that a DST jump skips (e.g. 00:00 -> 01:00
    in America/Santiago) to the wall time that really exists (01:00).
    """
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC).astimezone(tz)


class PeriodKind(BaseModel):
    """How the calendar is cut into periods: a unit plus the unit's calendar settings.

    Build kinds with :func:`months`, :func:`quarters`, :func:`weeks`, :func:`fiscal_years`
    or :func:`period_kind`. A kind is data: it round-trips through JSON, and validating a
    spec string such as ``"quarter:4"`` gives the same kind as ``period_kind("quarter:4")``,
    so models holding a ``PeriodKind`` field accept either form from configuration.

    Attributes:
        unit: ``"month"``, ``"quarter"``, ``"week"`` or ``"fiscal_year"``.
        fiscal_start_month: the month (1-12) a fiscal year starts in; only quarters and
            fiscal years use it, every other unit keeps the default 1.
        week_start: the first day of a week, 0 = Monday (ISO) ... 6 = Sunday; only weeks
            use it, every other unit keeps the default 0.

    Example:
        >>> from pipelinekit.periods import PeriodKind, quarters
        >>> PeriodKind.model_validate("quarter:4") == quarters(fiscal_start_month=4)
        True
        >>> quarters(fiscal_start_month=4).model_dump(mode="json")
        {'unit': 'quarter', 'fiscal_start_month': 4, 'week_start': 0}
        >>> str(quarters(fiscal_start_month=4))
        'quarter:4'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: PeriodUnit
    fiscal_start_month: int = Field(default=1, ge=1, le=12)
    week_start: int = Field(default=0, ge=0, le=6)

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, data: Any) -> Any:
        if isinstance(data, str):
            return period_kind(data).model_dump()
        return data

    @model_validator(mode="after")
    def _settings_fit_unit(self) -> PeriodKind:
        if self.fiscal_start_month != 1 and self.unit not in ("quarter", "fiscal_year"):
            raise ValueError(
                f"fiscal_start_month applies to quarters and fiscal years, not to {self.unit}s"
            )
        if self.week_start != 0 and self.unit != "week":
            raise ValueError(f"week_start applies to weeks, not to {self.unit}s")
        return self

    @property
    def spec(self) -> str:
        """The short text form that :func:`period_kind` parses back to this kind.

        Example:
            >>> from pipelinekit.periods import period_kind, weeks
            >>> weeks(week_start=6).spec
            'week:6'
            >>> period_kind(weeks(week_start=6).spec) == weeks(week_start=6)
            True
        """
        if self.unit == "week":
            return "week" if self.week_start == 0 else f"week:{self.week_start}"
        if self.unit in ("quarter", "fiscal_year") and self.fiscal_start_month != 1:
            return f"{self.unit}:{self.fiscal_start_month}"
        return self.unit

    def __str__(self) -> str:
        return self.spec

    def period_of(self, d: date) -> Period:
        """The period of this kind that contains date ``d``.

        Args:
            d: a calendar date (a ``datetime`` is refused: use :meth:`period_of_instant`).

        Raises:
            ArgumentError: ``d`` is not a date, or its period would reach outside the dates
                Python can represent (0001-01-01..9999-12-31).

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import fiscal_years, weeks
            >>> fiscal_years(start_month=7).period_of(date(2024, 7, 1)).label
            'FY2025'
            >>> weeks().period_of(date(2021, 1, 3)).label   # ISO week 53 of 2020
            '2020-W53'
        """
        d = _check_date("d", d)
        try:
            return _period(self, _start_of(self, d))
        except (OverflowError, ValueError):
            raise ArgumentError(
                "d", f"the {self.spec} period containing {d} reaches outside {_RANGE}"
            ) from None

    def period_of_instant(self, t: Instant, tz: tzinfo = UTC) -> Period:
        """The period containing the local date of the instant ``t`` in time zone ``tz``.

        Args:
            t: a timezone-aware datetime (or ISO 8601 string with an offset).
            tz: the zone whose calendar decides the date; UTC by default.

        Raises:
            ArgumentError: ``t`` has no time zone (naming ``t``), or ``tz`` is not a tzinfo.

        Example:
            >>> from datetime import datetime, timedelta, timezone
            >>> from pipelinekit.periods import months
            >>> t = datetime(2024, 3, 31, 23, 30, tzinfo=timezone.utc)
            >>> months().period_of_instant(t).label
            '2024-03'
            >>> months().period_of_instant(t, timezone(timedelta(hours=2))).label
            '2024-04'
        """
        local = instant(t, argument="t").astimezone(_check_tz(tz))
        return self.period_of(local.date())

    def between(self, start: date, end: date) -> tuple[Period, ...]:
        """All periods overlapping the dates ``[start, end)``, in order.

        The first period may begin before ``start`` and the last may end after ``end``;
        an empty range (``end == start``) overlaps nothing.

        Raises:
            ArgumentError: ``start`` or ``end`` is not a date, or ``end`` is before ``start``.

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import quarters
            >>> [p.label for p in quarters().between(date(2023, 11, 5), date(2024, 4, 2))]
            ['2023-Q4', '2024-Q1', '2024-Q2']
            >>> quarters().between(date(2024, 1, 1), date(2024, 1, 1))
            ()
        """
        start = _check_date("start", start)
        end = _check_date("end", end)
        if end < start:
            raise ArgumentError("end", f"{end} is before start {start}")
        if end == start:
            return ()
        found = [self.period_of(start)]
        while found[-1].end < end:
            found.append(found[-1].next())
        return tuple(found)

    def following(self, d: date, n: int) -> tuple[Period, ...]:
        """``n`` consecutive periods: the one containing ``d`` and the ``n - 1`` after it.

        Raises:
            ArgumentError: ``d`` is not a date, ``n`` is not a whole number >= 1, or the
                periods would reach past 9999-12-31 (naming ``n``).

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import months
            >>> [p.label for p in months().following(date(2024, 11, 20), 3)]
            ['2024-11', '2024-12', '2025-01']
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArgumentError("n", f"expected a whole number of periods >= 1, got {n!r}")
        found = [self.period_of(d)]
        try:
            for _ in range(n - 1):
                found.append(found[-1].next())
        except OverflowError:
            raise ArgumentError("n", f"{n} {self.spec} periods reach past {date.max}") from None
        return tuple(found)


def _start_of(kind: PeriodKind, d: date) -> date:
    """The first day of the period of ``kind`` containing ``d``."""
    if kind.unit == "week":
        return d + relativedelta(weekday=weekday(kind.week_start)(-1))
    first_of_month = d.replace(day=1)
    if kind.unit == "month":
        return first_of_month
    if kind.unit == "quarter":
        return first_of_month - relativedelta(months=(d.month - kind.fiscal_start_month) % 3)
    return first_of_month - relativedelta(months=(d.month - kind.fiscal_start_month) % 12)


_LENGTH: dict[PeriodUnit, relativedelta] = {
    "month": relativedelta(months=1),
    "quarter": relativedelta(months=3),
    "week": relativedelta(days=7),
    "fiscal_year": relativedelta(years=1),
}


def _fiscal_year(kind: PeriodKind, start: date) -> int:
    """The number of the fiscal year containing ``start``: the calendar year it ends in."""
    starts_in = start.year if start.month >= kind.fiscal_start_month else start.year - 1
    return starts_in if kind.fiscal_start_month == 1 else starts_in + 1


def _label(kind: PeriodKind, start: date) -> str:
    if kind.unit == "month":
        return f"{start.year:04d}-{start.month:02d}"
    if kind.unit == "week":
        if kind.week_start == 0:
            iso = start.isocalendar()
            return f"{iso.year:04d}-W{iso.week:02d}"
        return f"week of {start.isoformat()}"
    year = _fiscal_year(kind, start)
    if kind.unit == "quarter":
        number = (start.month - kind.fiscal_start_month) % 12 // 3 + 1
        prefix = f"{year:04d}" if kind.fiscal_start_month == 1 else f"FY{year:04d}"
        return f"{prefix}-Q{number}"
    return f"{year:04d}" if kind.fiscal_start_month == 1 else f"FY{year:04d}"


def _period(kind: PeriodKind, start: date) -> Period:
    """The period of ``kind`` starting on ``start`` (which must be a period boundary)."""
    end = start + _LENGTH[kind.unit]
    # Fields are computed here, so the consistency check in Period's validator is skipped.
    return Period.model_construct(kind=kind, start=start, end=end, label=_label(kind, start))


class Period(BaseModel):
    """One period: the dates ``[start, end)`` with a label, of one :class:`PeriodKind`.

    Get periods from a kind (:meth:`PeriodKind.period_of` and friends) rather than by hand;
    validating one from data checks that ``start``, ``end`` and ``label`` are exactly the
    period of ``kind`` that begins on ``start``. Periods are immutable, hashable, ordered by
    ``(start, end)`` and round-trip through ``model_dump(mode="json")``.

    Attributes:
        kind: how the calendar is cut.
        start: the first day of the period.
        end: the first day after the period (exclusive).
        label: e.g. ``"2024-03"``, ``"2024-Q1"``, ``"FY2025-Q1"``, ``"2024-W05"``,
            ``"week of 2024-01-28"``, ``"FY2025"``.

    Example:
        >>> from datetime import date
        >>> from pipelinekit.periods import Period, months
        >>> feb = months().period_of(date(2024, 2, 10))
        >>> feb.label, feb.days, str(feb)
        ('2024-02', 29, '2024-02')
        >>> Period.model_validate(feb.model_dump(mode="json")) == feb
        True
        >>> sorted([feb.next(), feb.previous(), feb])[0].label
        '2024-01'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PeriodKind
    start: date
    end: date
    label: str

    @model_validator(mode="after")
    def _is_the_period_starting_on_start(self) -> Period:
        try:
            expected = self.kind.period_of(self.start)
        except ArgumentError as exc:
            raise ValueError(exc.reason) from None
        if (expected.start, expected.end, expected.label) != (self.start, self.end, self.label):
            raise ValueError(
                f"not a {self.kind.spec} period: the one containing {self.start} is "
                f"{expected.label!r} [{expected.start}, {expected.end})"
            )
        return self

    def __str__(self) -> str:
        return self.label

    def __contains__(self, d: date) -> bool:
        """Whether the date ``d`` falls in the period: ``start <= d < end``.

        A ``datetime`` is refused with :class:`~pipelinekit.errors.ArgumentError`: which day
        an instant falls on depends on a time zone, so use :meth:`contains_instant`.

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import months
            >>> jan = months().period_of(date(2024, 1, 1))
            >>> date(2024, 1, 31) in jan, date(2024, 2, 1) in jan
            (True, False)
        """
        d = _check_date("d", d)
        return self.start <= d < self.end

    def contains_instant(self, t: Instant, tz: tzinfo = UTC) -> bool:
        """Whether the local date of the aware instant ``t`` in ``tz`` falls in the period.

        Raises:
            ArgumentError: ``t`` has no time zone (naming ``t``), or ``tz`` is not a tzinfo.

        Example:
            >>> from datetime import date, datetime, timedelta, timezone
            >>> from pipelinekit.periods import months
            >>> jan = months().period_of(date(2024, 1, 1))
            >>> t = datetime(2024, 1, 31, 23, 0, tzinfo=timezone.utc)
            >>> jan.contains_instant(t), jan.contains_instant(t, timezone(timedelta(hours=1)))
            (True, False)
        """
        local = instant(t, argument="t").astimezone(_check_tz(tz))
        return self.start <= local.date() < self.end

    def start_instant(self, tz: tzinfo = UTC) -> datetime:
        """The first instant of the period in ``tz``: local midnight of ``start`` (aware).

        Where a DST change skips midnight, this is the first wall time that exists that day.

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import months
            >>> months().period_of(date(2024, 1, 9)).start_instant().isoformat()
            '2024-01-01T00:00:00+00:00'
        """
        return _first_instant(self.start, _check_tz(tz))

    def end_instant(self, tz: tzinfo = UTC) -> datetime:
        """The first instant after the period in ``tz``: local midnight of ``end`` (aware).

        Example:
            >>> from datetime import date
            >>> from zoneinfo import ZoneInfo
            >>> from pipelinekit.periods import months
            >>> jan = months().period_of(date(2024, 1, 9))
            >>> jan.end_instant(ZoneInfo("Europe/Warsaw")).isoformat()
            '2024-02-01T00:00:00+01:00'
        """
        return _first_instant(self.end, _check_tz(tz))

    @property
    def days(self) -> int:
        """The number of days in the period."""
        return (self.end - self.start).days

    def next(self) -> Period:
        """The period of the same kind that starts where this one ends.

        Raises:
            OverflowError: there is no such period before 9999-12-31.

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import quarters
            >>> quarters().period_of(date(2024, 12, 1)).next().label
            '2025-Q1'
        """
        try:
            return _period(self.kind, self.end)
        except (OverflowError, ValueError):
            raise OverflowError(f"no {self.kind.spec} period after {self.label}") from None

    def previous(self) -> Period:
        """The period of the same kind that ends where this one starts.

        Raises:
            OverflowError: there is no such period after 0001-01-01.

        Example:
            >>> from datetime import date
            >>> from pipelinekit.periods import weeks
            >>> weeks().period_of(date(2024, 1, 3)).previous().label
            '2023-W52'
        """
        try:
            return _period(self.kind, _start_of(self.kind, self.start - timedelta(days=1)))
        except (OverflowError, ValueError):
            raise OverflowError(f"no {self.kind.spec} period before {self.label}") from None

    def _key(self) -> tuple[date, date, str]:
        return (self.start, self.end, self.kind.spec)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() >= other._key()


def months() -> PeriodKind:
    """Calendar months, labelled ``"2024-03"``.

    Example:
        >>> from datetime import date
        >>> months().period_of(date(2024, 2, 29)).end
        datetime.date(2024, 3, 1)
    """
    return PeriodKind(unit="month")


def quarters(*, fiscal_start_month: int = 1) -> PeriodKind:
    """Quarters of a year starting in ``fiscal_start_month``.

    Calendar quarters (the default) are labelled ``"2024-Q1"``. With a fiscal year starting
    in another month the quarters are fiscal and labelled ``"FY2025-Q1"``, the fiscal year
    named by the calendar year it ends in (see :func:`fiscal_years`).

    Raises:
        ArgumentError: ``fiscal_start_month`` is not 1-12.

    Example:
        >>> from datetime import date
        >>> quarters().period_of(date(2024, 2, 29)).label
        '2024-Q1'
        >>> quarters(fiscal_start_month=10).period_of(date(2024, 10, 1)).label
        'FY2025-Q1'
    """
    month = _check_int("fiscal_start_month", fiscal_start_month, 1, 12, "a month")
    return PeriodKind(unit="quarter", fiscal_start_month=month)


def weeks(*, week_start: int = 0) -> PeriodKind:
    """Seven-day weeks beginning on ``week_start`` (0 = Monday ... 6 = Sunday).

    Monday weeks are ISO weeks labelled by ISO year and week number, ``"2024-W05"`` (the
    ISO year may differ from the calendar year near New Year: 2021-01-03 is in
    ``"2020-W53"``). Weeks starting on another day have no standard numbering, so they are
    labelled by their first day: ``"week of 2024-01-28"``.

    Raises:
        ArgumentError: ``week_start`` is not 0-6.

    Example:
        >>> from datetime import date
        >>> weeks().period_of(date(2024, 2, 1)).label
        '2024-W05'
        >>> weeks(week_start=6).period_of(date(2024, 2, 1)).label
        'week of 2024-01-28'
    """
    day = _check_int("week_start", week_start, 0, 6, "a weekday (0 = Monday)")
    return PeriodKind(unit="week", week_start=day)


def fiscal_years(*, start_month: int = 1) -> PeriodKind:
    """Fiscal years starting on the first of ``start_month``.

    A fiscal year is named by the calendar year in which it **ends**: with
    ``start_month=4``, 2024-04-01 up to 2025-04-01 is ``"FY2025"``. A year starting in
    January is the calendar year, labelled plainly ``"2024"``.

    Raises:
        ArgumentError: ``start_month`` is not 1-12.

    Example:
        >>> from datetime import date
        >>> fy = fiscal_years(start_month=4).period_of(date(2025, 3, 31))
        >>> fy.label, fy.start, fy.end
        ('FY2025', datetime.date(2024, 4, 1), datetime.date(2025, 4, 1))
        >>> fiscal_years().period_of(date(2024, 6, 1)).label
        '2024'
    """
    month = _check_int("start_month", start_month, 1, 12, "a month")
    return PeriodKind(unit="fiscal_year", fiscal_start_month=month)


def period_kind(spec: str | PeriodKind) -> PeriodKind:
    """Parse a period spec such as ``"month"`` or ``"fiscal_year:4"``; a kind passes through.

    Valid specs: ``month``, ``quarter``, ``quarter:<fiscal start month 1-12>``, ``week``,
    ``week:<first weekday 0-6, 0 = Monday>``, ``fiscal_year``,
    ``fiscal_year:<start month 1-12>``. :attr:`PeriodKind.spec` gives a kind's spec back.

    Raises:
        ArgumentError: ``spec`` is not one of these (naming the argument ``period``).

    Example:
        >>> period_kind("quarter:4") == quarters(fiscal_start_month=4)
        True
        >>> period_kind("fortnight")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'period': unknown period spec 'fortnight'; ...
    """
    if isinstance(spec, PeriodKind):
        return spec
    if not isinstance(spec, str):
        raise ArgumentError(
            "period", f"expected a PeriodKind or a spec string ({_SPECS}), got {spec!r}"
        )
    unit, colon, setting = spec.partition(":")
    number: int | None = None
    if colon:
        # int() alone would accept " 4", "+4" and "4_0"; a spec has one canonical spelling.
        if not setting.isdigit() or not setting.isascii() or len(setting) > 2:
            raise ArgumentError("period", f"bad setting in period spec {spec!r}; valid: {_SPECS}")
        number = int(setting)
    if unit == "month" and number is None:
        return months()
    if unit == "quarter":
        if number is not None and not 1 <= number <= 12:
            raise ArgumentError("period", f"{spec!r}: the fiscal start month must be 1-12")
        return quarters(fiscal_start_month=1 if number is None else number)
    if unit == "week":
        if number is not None and not 0 <= number <= 6:
            raise ArgumentError("period", f"{spec!r}: the first weekday must be 0-6 (0 = Monday)")
        return weeks(week_start=0 if number is None else number)
    if unit == "fiscal_year":
        if number is not None and not 1 <= number <= 12:
            raise ArgumentError("period", f"{spec!r}: the start month must be 1-12")
        return fiscal_years(start_month=1 if number is None else number)
    raise ArgumentError("period", f"unknown period spec {spec!r}; valid: {_SPECS}")
