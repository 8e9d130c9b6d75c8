"""PipelineByStage, WinLoss and the backtest on two real data sets, checked with pandas.

Maven CRM (``examples/data/maven_crm.py``) and Salesforce's developer-org sample
(``examples/data/sfdc_devorg.py``). The data sets are not in the repository: they are read
from ``shared/data`` beside the checkout (or ``$PIPELINEKIT_DATA``), found the way the
examples find them; each test skips with a clear message when its data set is absent.
Every expected figure below is computed here with plain pandas from the CSV files, never
copied from the library's output.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from _real_data import data as _data
from _real_data import example as _example
from _real_data import run_example

pytestmark = pytest.mark.usefixtures("examples_on_path")

MAVEN = ("maven-crm", ("sales_pipeline.csv", "products.csv"))
DEVORG = ("sfdc-devorg-sample", ("Opportunity.csv", "OpportunityHistory.csv"))


def _money(value: float) -> Decimal:
    return Decimal(str(value))


# --- Maven CRM ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maven(examples_on_path: None) -> dict[str, Any]:
    return run_example("maven_crm", MAVEN[0], MAVEN[1])


@pytest.fixture(scope="module")
def maven_df(examples_on_path: None) -> pd.DataFrame:
    """sales_pipeline.csv with each row's list price (products.csv; GTXPro is GTX Pro)."""
    folder = _data(MAVEN[0], *MAVEN[1])
    df = pd.read_csv(folder / "sales_pipeline.csv")
    prices = pd.read_csv(folder / "products.csv").set_index("product")["sales_price"]
    df["product"] = df["product"].replace({"GTXPro": "GTX Pro"})
    df["list_price"] = df["product"].map(prices)
    assert df["list_price"].notna().all()
    return df


def test_maven_pipeline_by_stage(maven: dict[str, Any], maven_df: pd.DataFrame) -> None:
    df = maven_df
    dated = df[df["engage_date"].notna()]  # undated (Prospecting) rows are set aside
    prospecting = dated[dated["deal_stage"] == "Prospecting"]
    engaging = dated[dated["deal_stage"] == "Engaging"]
    won = dated[dated["deal_stage"] == "Won"]
    lost = dated[dated["deal_stage"] == "Lost"]
    assert maven["by_stage"] == {
        "prospecting": (len(prospecting), _money(prospecting["list_price"].sum())),
        "engaging": (len(engaging), _money(engaging["list_price"].sum())),
        "won": (len(won), _money(won["close_value"].sum())),  # revenue once won
        "lost": (len(lost), _money(lost["list_price"].sum())),  # close_value is 0 when lost
    }
    # every Prospecting row lacks an engage date, so none is in the pipeline
    assert int((df["deal_stage"] == "Prospecting").sum()) == int(df["engage_date"].isna().sum())
    assert maven["weighted_available"] is False


def test_maven_win_loss_by_agent_and_product(maven: dict[str, Any], maven_df: pd.DataFrame) -> None:
    closed = maven_df[maven_df["deal_stage"].isin(["Won", "Lost"])]
    is_won = closed["deal_stage"] == "Won"
    per_agent = closed.assign(won=is_won, lost=~is_won).groupby("sales_agent")[["won", "lost"]]
    expected_agents = {
        agent: (int(r["won"]), int(r["lost"]), r["won"] / (r["won"] + r["lost"]))
        for agent, r in per_agent.sum().iterrows()
    }
    got_agents = maven["win_loss_by_agent"]
    assert set(got_agents) == set(expected_agents)
    for agent, (won, lost, rate) in expected_agents.items():
        assert got_agents[agent][:2] == (won, lost)
        assert got_agents[agent][2] == pytest.approx(rate)

    revenue = closed[is_won].groupby("product")["close_value"].sum()
    counts = closed.assign(won=is_won, lost=~is_won).groupby("product")[["won", "lost"]].sum()
    assert maven["win_loss_by_product"] == {
        product: (int(r["won"]), int(r["lost"]), _money(revenue.get(product, 0)))
        for product, r in counts.iterrows()
    }
    # the data has no loss reasons: every lost deal is counted without one
    assert maven["loss_reasons"] == {"(no reason)": int((~is_won).sum())}


def test_maven_backtest_actuals_and_points(maven: dict[str, Any], maven_df: pd.DataFrame) -> None:
    df = maven_df
    engaged = pd.to_datetime(df["engage_date"])
    closed_on = pd.to_datetime(df["close_date"])
    months = pd.period_range("2017-04", "2017-12", freq="M")
    points = maven["backtest"]
    assert len(points) == len(months)
    assert [p["as_of"] for p in points] == [m.start_time.date().isoformat() for m in months]
    assert [p["period"] for p in points] == [str(m) for m in months]

    # enough closed history before the first as_of: the deals closed by then
    first = months[0].start_time
    closed_by_then = int((closed_on <= first).sum())
    assert maven["closed_before_backtest"] == closed_by_then
    assert closed_by_then > 500
    assert closed_on.min() < first

    won = df[df["deal_stage"] == "Won"]
    revenue = won.groupby(pd.to_datetime(won["close_date"]).dt.to_period("M"))["close_value"]
    actual = revenue.sum()
    for point, month in zip(points, months, strict=True):
        assert point["actual"] == _money(actual[month])  # close_value won in the month
        at = month.start_time
        # open at as_of: engaged by then and not closed by then (bare date = 00:00)
        open_then = df[(engaged <= at) & ~(closed_on <= at)]
        assert point["open"] == len(open_then)  # every one scored, none left out
    # WAPE = sum |forecast - actual| / sum actual, with pandas' actuals
    errors = sum(
        abs(p["forecast"] - _money(actual[m])) for p, m in zip(points, months, strict=True)
    )
    total = _money(actual[months].sum())
    assert maven["backtest_wape"] == pytest.approx(float(errors / total))


# --- Salesforce developer-org sample ------------------------------------------------------


@pytest.fixture(scope="module")
def devorg(examples_on_path: None) -> dict[str, Any]:
    return run_example("sfdc_devorg", DEVORG[0], DEVORG[1])


@pytest.fixture(scope="module")
def devorg_opp(examples_on_path: None) -> pd.DataFrame:
    return pd.read_csv(_data(DEVORG[0], *DEVORG[1]) / "Opportunity.csv")


def test_sfdc_devorg_pipeline_by_stage(devorg: dict[str, Any], devorg_opp: pd.DataFrame) -> None:
    opp = devorg_opp
    scheme = _example("sfdc_devorg").PRESET
    expected = {}
    for stage in scheme.stages:
        rows = opp[opp["StageName"] == stage.label]
        priced = rows[rows["Amount"].notna()]
        weighted = (priced["Amount"] * priced["Probability"] / 100).sum()
        assert weighted == priced["ExpectedRevenue"].sum()  # Salesforce's own figure
        expected[stage.key] = (
            len(rows),
            int(rows["Amount"].isna().sum()),
            _money(priced["Amount"].sum()),
            _money(weighted),
        )
    assert devorg["by_stage"] == expected
    open_rows = opp[~opp["IsClosed"]]
    assert devorg["open_total"] == (
        len(open_rows),
        _money(open_rows["Amount"].sum()),
        _money(open_rows["ExpectedRevenue"].sum()),
    )


def test_sfdc_devorg_win_loss_by_source(devorg: dict[str, Any], devorg_opp: pd.DataFrame) -> None:
    closed = devorg_opp[devorg_opp["IsClosed"]]
    won, lost = closed[closed["IsWon"]], closed[~closed["IsWon"]]
    assert (devorg["won"], devorg["lost"]) == (len(won), len(lost))
    assert devorg["won_amount"] == _money(won["Amount"].sum())
    assert devorg["lost_amount"] == _money(lost["Amount"].sum())  # NaN amounts add nothing
    assert devorg["loss_reasons"] == {"(no reason)": len(lost)}
    expected = {}
    for source, rows in closed.groupby(closed["LeadSource"].fillna("(none)")):
        key = None if source == "(none)" else source
        w = rows[rows["IsWon"]]
        expected[key] = (len(w), len(rows) - len(w), _money(w["Amount"].sum()))
    assert devorg["win_loss_by_source"] == expected
