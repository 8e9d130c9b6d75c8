"""The Salesforce adapter on the public Salesforce samples, checked against plain pandas.

The data sets are not in the repository: they are read from ``shared/data`` beside the
checkout (or ``$PIPELINEKIT_DATA``); each test skips with a message when its data is absent.
Every expected figure is computed here with pandas from the CSV files.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from _real_data import data

from pipelinekit import schemes
from pipelinekit.adapters import salesforce

pytestmark = pytest.mark.usefixtures("examples_on_path")
PRESET = schemes.get("salesforce")


def test_preppin_export_contradictions_are_the_ones_pandas_finds() -> None:
    folder = data("preppin-sf-opps", "Opportunity.csv", "Opportunity History.csv")
    opp = pd.read_csv(folder / "Opportunity.csv", encoding="utf-8-sig")
    closed_stage = opp["StageName"].isin(["Closed Won", "Closed Lost"])
    won_stage = opp["StageName"] == "Closed Won"
    disagree = (closed_stage != opp["IsClosed"]) | (won_stage != opp["IsWon"])
    found = salesforce.contradictions(opportunities=opp)
    assert found.checked == len(opp) == 219
    assert [r.opportunity_id for r in found.rows] == list(opp.loc[disagree, "Id"])
    assert len(found.rows) == 137


def test_preppin_export_loads_in_a_few_lines_and_every_row_is_accounted_for() -> None:
    folder = data("preppin-sf-opps", "Opportunity.csv", "Opportunity History.csv")
    opp = pd.read_csv(folder / "Opportunity.csv")
    hist = pd.read_csv(folder / "Opportunity History.csv", encoding="utf-8-sig")
    with pytest.warns(salesforce.ContradictionWarning, match="137 of 219"):
        history = salesforce.to_history(
            opportunities=opp, history=hist, date_order="dmy", mode="lenient"
        )
    report = history.ingest
    assert report.total == len(opp) + len(hist) and report.accounted
    # the history rows dated before their opportunity was created: set aside as not-opened
    created = pd.to_datetime(opp.set_index("Id")["CreatedDate"], format="%d/%m/%Y")
    early = pd.to_datetime(hist["CreatedDate"], format="%d/%m/%Y") < hist["OppID"].map(created)
    by_rule = {row["rule"]: row["records"] for row in report.summary()}
    assert by_rule["not-opened"] == int(early.sum())
    assert len(history.opportunity_ids) == len(opp)


def test_devorg_probabilities_as_overrides_are_salesforces_own() -> None:
    folder = data("sfdc-devorg-sample", "Opportunity.csv", "OpportunityHistory.csv")
    opp = pd.read_csv(folder / "Opportunity.csv")
    hist = pd.read_csv(folder / "OpportunityHistory.csv")
    reopenable = PRESET.replace(reopen=True)  # Salesforce lets Closed Won become Closed Lost
    history = salesforce.to_history(
        opportunities=opp,
        history=hist,
        scheme=reopenable,
        date_order="mdy",
        overrides="probability",
    )
    assert history.ingest.rejected == ()
    assert history.end is not None
    pipe = history.as_of(history.end)
    assert {i: pipe[i].probability for i in opp["Id"]} == {
        i: Decimal(int(p)) for i, p in zip(opp["Id"], opp["Probability"], strict=True)
    }
    assert {i: reopenable.stage(pipe[i].stage).label for i in opp["Id"]} == dict(
        zip(opp["Id"], opp["StageName"], strict=True)
    )
    open_rows = opp[opp["Amount"].notna() & ~opp["IsClosed"]]
    assert pipe.weighted_total() == Decimal(str(int(open_rows["ExpectedRevenue"].sum())))
    assert salesforce.contradictions(opportunities=opp).rows == ()
