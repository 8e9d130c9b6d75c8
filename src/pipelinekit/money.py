"""Exact money: Decimal amounts, explicit currencies, user-supplied exchange rates.

pipelinekit never adds amounts in different currencies on its own. Give a reporting
currency and :class:`FxRates` (static, or dated: each rate valid from a date on) and amounts
are converted one by one before they are added; a mix without rates is a
:class:`~pipelinekit.errors.CurrencyError`, never a silent sum.

Example:
    >>> from decimal import Decimal
    >>> from pipelinekit.money import FxRates, ReportingCurrency
    >>> rates = FxRates.static("EUR", {"USD": "0.9", "PLN": "0.23"})
    >>> rates.convert(Decimal("100"), "USD", "EUR")
    Decimal('90.0')
    >>> to_eur = ReportingCurrency("EUR", rates)
    >>> to_eur(Decimal("1000"), "PLN") + to_eur(Decimal("10"), "EUR")
    Decimal('240.00')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import reduce
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from pipelinekit.errors import ArgumentError, CurrencyError

__all__ = ["EXACT", "FxRates", "Rate", "ReportingCurrency", "percent_of", "total"]

EXACT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""The decimal context of every sum of money: addition, subtraction and multiplication in
it never round (``EXACT.add(a, b)``, ``EXACT.multiply(a, b)``).

Python's default context keeps 28 significant digits, so ``999999999999999 +
7.1234567890123456789`` rounds, and how much depends on the order of the additions: a
report computed whole and one merged from partitions would differ in the last digit. Sums
made with this context are exact whatever the digits, so merging partitions gives exactly
the whole. Use it for ``+``, ``-``, ``*`` and division by powers of ten only: any other
division is inexact and would try to produce unboundedly many digits.

Example:
    >>> from decimal import Decimal
    >>> big, small = Decimal("999999999999999"), Decimal("7.1234567890123456789")
    >>> big + small == EXACT.add(big, small)
    False
    >>> EXACT.add(big, small)
    Decimal('1000000000000006.1234567890123456789')
"""

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CROSS = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow])
"""A cross rate divides by the target's rate: 28 significant digits, whatever the caller's
context says."""


def total(values: Iterable[Decimal]) -> Decimal:
    """The exact sum of ``values`` (``Decimal(0)`` for none), in the :data:`EXACT` context.

    Example:
        >>> from decimal import Decimal
        >>> parts = [Decimal("999999999999999"), Decimal("0.333333333333333333333")]
        >>> total(parts), total([])
        (Decimal('999999999999999.333333333333333333333'), Decimal('0'))
    """
    return reduce(EXACT.add, values, _ZERO)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """``amount × percent / 100``, exact (a weighted amount).

    Example:
        >>> from decimal import Decimal
        >>> percent_of(Decimal("1000"), Decimal("35")), percent_of(Decimal("0.01"), Decimal("1"))
        (Decimal('350'), Decimal('0.0001'))
    """
    return EXACT.divide(EXACT.multiply(amount, percent), _HUNDRED)


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Rate(BaseModel):
    """How many units of the base currency one unit of ``currency`` is worth.

    A dated rate holds from ``valid_from`` until the next dated rate of the same currency.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: Currency
    rate: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    valid_from: date | None = None


class FxRates(BaseModel):
    """Exchange rates into one ``base`` currency, static or dated.

    Attributes:
        base: the currency every rate is quoted in.
        rates: the rates; several per currency when dated.

    Example:
        >>> from datetime import date
        >>> from decimal import Decimal
        >>> fx = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.90", date(2024, 7, 1): "0.95"}})
        >>> fx.rate("USD", on=date(2024, 3, 1)), fx.rate("USD", on=date(2024, 8, 1))
        (Decimal('0.90'), Decimal('0.95'))
        >>> fx.rate("USD", on=date(2023, 12, 31))
        Traceback (most recent call last):
        ...
        pipelinekit.errors.CurrencyError: no USD->EUR rate valid on 2023-12-31 (first is 2024-01-01)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: Currency
    rates: tuple[Rate, ...] = ()

    @classmethod
    def static(cls, base: str, rates: Mapping[str, Decimal | str | int]) -> FxRates:
        """Rates that hold at every date: ``{"USD": "0.9"}`` means 1 USD = 0.9 ``base``."""
        return cls(base=base, rates=tuple(Rate(currency=c, rate=r) for c, r in rates.items()))

    @classmethod
    def dated(cls, base: str, rates: Mapping[str, Mapping[date, Decimal | str | int]]) -> FxRates:
        """Rates that change over time: ``{"USD": {date(2024, 1, 1): "0.9", ...}}``."""
        return cls(
            base=base,
            rates=tuple(
                Rate(currency=c, rate=r, valid_from=d)
                for c, by_date in rates.items()
                for d, r in sorted(by_date.items())
            ),
        )

    def rate(self, currency: str, *, on: date | None = None) -> Decimal:
        """Units of :attr:`base` per unit of ``currency`` on date ``on``.

        Static rates hold on every date. For dated rates, the latest one valid on ``on``
        applies; without ``on`` the latest rate applies.

        Raises:
            CurrencyError: no rate for ``currency`` (or none valid on ``on``).
        """
        if currency == self.base:
            return Decimal(1)
        candidates = [r for r in self.rates if r.currency == currency]
        if not candidates:
            known = sorted({r.currency for r in self.rates} | {self.base})
            raise CurrencyError(
                f"no {currency}->{self.base} rate; the rates know {known}: add a rate for "
                f"{currency}"
            )
        static = [r for r in candidates if r.valid_from is None]
        dated = sorted((r for r in candidates if r.valid_from is not None), key=_valid_from)
        if on is not None and dated:
            valid = [r for r in dated if _valid_from(r) <= on]
            if valid:
                return valid[-1].rate
            if not static:
                raise CurrencyError(
                    f"no {currency}->{self.base} rate valid on {on.isoformat()} "
                    f"(first is {_valid_from(dated[0]).isoformat()})"
                )
        if static:
            return static[-1].rate
        return dated[-1].rate

    def convert(
        self, amount: Decimal, currency: str, to: str, *, on: date | None = None
    ) -> Decimal:
        """Convert ``amount`` from ``currency`` to ``to`` through the base currency."""
        if currency == to:
            return amount
        value = EXACT.multiply(amount, self.rate(currency, on=on))
        return value if to == self.base else _CROSS.divide(value, self.rate(to, on=on))


def _valid_from(rate: Rate) -> date:
    assert rate.valid_from is not None  # only called on dated rates
    return rate.valid_from


class ReportingCurrency:
    """Brings amounts into one currency for adding, or refuses.

    With a ``currency`` (and ``rates`` for the others) every amount is converted to it.
    Without one, amounts must all share a single currency: the first one seen becomes
    the reporting currency and any other is a :class:`CurrencyError`. An amount with no
    currency only mixes with other amounts that have none.

    Example:
        >>> from decimal import Decimal
        >>> same = ReportingCurrency()
        >>> same(Decimal("5"), "EUR"), same.currency
        (Decimal('5'), 'EUR')
        >>> same(Decimal("5"), "USD")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.CurrencyError: amounts are in EUR and USD; pass a reporting currency ...
    """

    __slots__ = ("_seen", "currency", "rates")

    def __init__(self, currency: str | None = None, rates: FxRates | None = None) -> None:
        if currency is not None and not (
            len(currency) == 3 and currency.isascii() and currency.isupper()
        ):
            raise ArgumentError(
                "currency", f"expected an ISO 4217 code like 'EUR', got {currency!r}"
            )
        if rates is not None and not isinstance(rates, FxRates):
            raise ArgumentError("rates", f"expected FxRates, got {type(rates).__name__}")
        self.currency = currency
        self.rates = rates
        self._seen = currency is not None

    def __call__(self, amount: Decimal, currency: str | None, on: date | None = None) -> Decimal:
        """``amount`` (in ``currency``) in the reporting currency."""
        if not self._seen:
            self._seen = True
            self.currency = currency
            return amount
        if currency == self.currency:
            return amount
        if currency is None or self.currency is None:
            raise CurrencyError(
                "some amounts have a currency and some have none; give every opportunity "
                "a currency before adding amounts"
            )
        if self.rates is None:
            pair = " and ".join(sorted((self.currency, currency)))
            raise CurrencyError(
                f"amounts are in {pair}; pass a reporting currency and FxRates to add them"
            )
        return self.rates.convert(amount, currency, self.currency, on=on)
