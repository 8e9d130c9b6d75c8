"""Money: exchange rates, conversion, and refusing to add mixed currencies."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pipelinekit import ArgumentError, CurrencyError, FxRates, ReportingCurrency


def test_static_rate_converts_through_the_base() -> None:
    fx = FxRates.static("EUR", {"USD": "0.9", "PLN": "0.25"})
    assert fx.convert(Decimal("100"), "USD", "EUR") == Decimal("90.0")
    assert fx.convert(Decimal("90"), "EUR", "USD") == Decimal("100")
    assert fx.convert(Decimal("100"), "PLN", "USD") == Decimal("25") / Decimal("0.9")
    assert fx.convert(Decimal("7"), "USD", "USD") == Decimal("7")


def test_dated_rates_hold_from_their_date_until_the_next() -> None:
    fx = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.90", date(2024, 7, 1): "0.95"}})
    assert fx.rate("USD", on=date(2024, 6, 30)) == Decimal("0.90")
    assert fx.rate("USD", on=date(2024, 7, 1)) == Decimal("0.95")
    assert fx.rate("USD") == Decimal("0.95")  # no date: the latest


def test_a_date_before_every_dated_rate_is_a_currency_error() -> None:
    fx = FxRates.dated("EUR", {"USD": {date(2024, 1, 1): "0.90"}})
    with pytest.raises(CurrencyError, match="valid on 2023-12-31"):
        fx.rate("USD", on=date(2023, 12, 31))


def test_missing_rate_is_a_currency_error_naming_the_currency() -> None:
    fx = FxRates.static("EUR", {"USD": "0.9"})
    with pytest.raises(CurrencyError, match="no GBP->EUR rate"):
        fx.convert(Decimal("1"), "GBP", "EUR")


@pytest.mark.parametrize("rate", ["0", "-1", "NaN"])
def test_rates_must_be_positive_numbers(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        FxRates.static("EUR", {"USD": rate})


def test_reporting_currency_without_rates_refuses_a_second_currency() -> None:
    to = ReportingCurrency()
    assert to(Decimal("5"), "EUR") == Decimal("5")
    assert to.currency == "EUR"
    with pytest.raises(CurrencyError, match="EUR and USD"):
        to(Decimal("5"), "USD")


def test_reporting_currency_with_rates_converts_each_amount() -> None:
    to = ReportingCurrency("EUR", FxRates.static("EUR", {"USD": "0.5"}))
    assert to(Decimal("10"), "USD") + to(Decimal("1"), "EUR") == Decimal("6.0")


def test_amounts_without_currency_do_not_mix_with_priced_ones() -> None:
    to = ReportingCurrency()
    assert to(Decimal("1"), None) == Decimal("1")
    assert to(Decimal("1"), None) == Decimal("1")
    with pytest.raises(CurrencyError, match="have none"):
        to(Decimal("1"), "EUR")


def test_reporting_currency_arguments_are_checked() -> None:
    with pytest.raises(ArgumentError) as info:
        ReportingCurrency("euro")
    assert info.value.argument == "currency"
    with pytest.raises(ArgumentError) as info:
        ReportingCurrency("EUR", {"USD": 1})  # type: ignore[arg-type]
    assert info.value.argument == "rates"
