"""CRM adapters: each round-trips a fixture the test writes in the vendor's export format.

A demo History under the vendor's preset is written out as that vendor's export (column
names and date formats as the vendor documents them), as CSV text read back with
``csv.DictReader`` (strings, empty cells), with pandas (NaN, numpy scalars) and with polars;
the adapter must rebuild every fact the export carries: each deal's stage path with its
dates, its close, amount, currency, expected close date, owner, name. Bad input gets a
located error.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pandas as pd
import polars as pl
import pytest

from pipelinekit import ArgumentError, History, Opportunity, RecordError, demo, schemes
from pipelinekit.adapters import hubspot, odoo, pipedrive, salesforce

Rows = list[dict[str, Any]]


def final(history: History) -> dict[str, Opportunity]:
    assert history.end is not None
    return dict(history.as_of(history.end))


def as_csv(rows: Rows) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows({c: "" if row.get(c) is None else row[c] for c in columns} for row in rows)
    return out.getvalue()


def readers(rows: Rows) -> dict[str, Any]:
    """The same export as csv.DictReader rows, a pandas and a polars DataFrame."""
    text = as_csv(rows)
    return {
        "csv": list(csv.DictReader(io.StringIO(text))),
        "pandas": pd.read_csv(io.StringIO(text), dtype=str),
        "pandas-typed": pd.read_csv(io.StringIO(text)),
        "polars": pl.read_csv(io.StringIO(text), infer_schema_length=0),
    }


ROUTES = ["csv", "pandas", "pandas-typed", "polars"]


def dmy(at: datetime) -> str:
    return at.strftime("%d/%m/%Y %H:%M")


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def same_facts(
    got: dict[str, Opportunity], want: dict[str, Opportunity], *, owner: bool = True
) -> None:
    assert set(got) == set(want)
    for oid, w in want.items():
        g = got[oid]
        assert [(v.stage, v.entered_at) for v in g.path] == [
            (v.stage, v.entered_at) for v in w.path
        ], oid
        assert (g.stage, g.outcome, g.closed_at, g.opened_at) == (
            w.stage,
            w.outcome,
            w.closed_at,
            w.opened_at,
        ), oid
        assert (g.amount, g.currency, g.expected_close, g.name) == (
            w.amount,
            w.currency,
            w.expected_close,
            w.name,
        ), oid
        if owner:
            assert g.owner == w.owner, oid


# -- Salesforce ------------------------------------------------------------------------------

SF = schemes.get("salesforce")
SF_HISTORY = demo.demo_history(scheme=SF, opportunities=25, seed=3, currency="USD")


def salesforce_export(history: History) -> tuple[Rows, Rows]:
    """Opportunity and OpportunityHistory rows (Data Loader columns, UK dates)."""
    opportunities, stage_rows = [], []
    for o in final(history).values():
        stage = SF.stage(o.stage)
        opportunities.append(
            {
                "Id": o.id, "Name": o.name, "StageName": stage.label, "Amount": o.amount,
                "CloseDate": o.expected_close.strftime("%d/%m/%Y") if o.expected_close else None,
                "CreatedDate": dmy(o.opened_at), "OwnerId": o.owner, "AccountId": o.account,
                "Probability": stage.weight, "IsClosed": str(not o.is_open).upper(),
                "IsWon": str(o.is_won).upper(), "CurrencyIsoCode": o.currency,
            }
        )  # fmt: skip
        for n, visit in enumerate(o.path):
            stage_rows.append(
                {"Id": f"008{o.id}{n}", "OpportunityId": o.id, "CreatedDate": dmy(visit.entered_at),
                 "StageName": SF.stage(visit.stage).label, "SortOrder": n}
            )  # fmt: skip
    return opportunities, stage_rows


@pytest.mark.parametrize("route", ROUTES)
def test_salesforce_round_trips_its_export(route: str) -> None:
    opportunities, stage_rows = salesforce_export(SF_HISTORY)
    got = salesforce.to_history(
        opportunities=readers(opportunities)[route],
        history=readers(stage_rows)[route],
        date_order="dmy",
    )
    assert got.ingest.rejected == ()
    same_facts(final(got), final(SF_HISTORY))


def test_salesforce_field_history_alone_gives_the_same_stage_paths() -> None:
    opportunities, stage_rows = salesforce_export(SF_HISTORY)
    fields: Rows = []
    for row in stage_rows:
        previous = [r for r in stage_rows if r["OpportunityId"] == row["OpportunityId"]]
        n = previous.index(row)
        if n:
            fields.append({"Id": row["Id"], "OpportunityId": row["OpportunityId"],
                           "CreatedDate": row["CreatedDate"], "Field": "StageName",
                           "OldValue": previous[n - 1]["StageName"],
                           "NewValue": row["StageName"]})  # fmt: skip
    fields.append({"OpportunityId": opportunities[0]["Id"], "CreatedDate": "01/01/2025 00:00",
                   "Field": "Description", "OldValue": "a", "NewValue": "b"})  # fmt: skip
    got = salesforce.to_history(opportunities=opportunities, field_history=fields,
                                date_order="dmy")  # fmt: skip
    same_facts(final(got), final(SF_HISTORY))


def test_salesforce_probability_overrides_carry_the_exported_probability() -> None:
    opportunities, _ = salesforce_export(SF_HISTORY)
    opportunities[0]["Probability"] = "35"
    got = final(
        salesforce.to_history(
            opportunities=opportunities, date_order="dmy", overrides="probability"
        )
    )
    assert got[opportunities[0]["Id"]].probability_override == Decimal(35)
    revenue = [{**opportunities[1], "Amount": "200", "ExpectedRevenue": "50"}]
    by_revenue = salesforce.to_records(
        opportunities=revenue, date_order="dmy", overrides="expected_revenue"
    )
    assert by_revenue[0]["probability"] == Decimal(25)
    assert "probability" not in salesforce.to_records(opportunities=revenue, date_order="dmy")[0]


def test_salesforce_contradictions_are_reported_per_deal_never_resolved() -> None:
    opportunities, _ = salesforce_export(SF_HISTORY)
    closed = next(i for i, o in enumerate(opportunities) if o["IsClosed"] == "TRUE")
    opportunities[closed]["IsClosed"] = "FALSE"
    found = salesforce.contradictions(opportunities=opportunities)
    assert [(r.index, r.field) for r in found.rows] == [(closed, "IsClosed")]
    assert found.checked == len(opportunities)
    with pytest.raises(RecordError, match="1 of 25 opportunities disagree") as info:
        salesforce.to_history(opportunities=opportunities, date_order="dmy")
    assert (info.value.index, info.value.field) == (closed, "IsClosed")
    with pytest.warns(salesforce.ContradictionWarning, match="1 of 25"):
        lenient = salesforce.to_history(
            opportunities=opportunities, date_order="dmy", mode="lenient"
        )
    trusted = salesforce.to_history(
        opportunities=opportunities, date_order="dmy", closed_flags="ignore"
    )
    # the stage follows StageName either way: the flag changes nothing
    oid = opportunities[closed]["Id"]
    assert (
        final(lenient)[oid].stage
        == final(trusted)[oid].stage
        == SF.key_for(opportunities[closed]["StageName"])
    )


# -- HubSpot --------------------------------------------------------------------------------

HS = schemes.get("hubspot")
HS_HISTORY = demo.demo_history(scheme=HS, opportunities=25, seed=4, currency="EUR")


def hubspot_export(history: History, *, api: bool = False) -> Rows:
    """The deals export: labels and "Date entered" columns (or the API's property names,
    stage ids and epoch milliseconds)."""
    rows = []
    for o in final(history).values():
        entered = {v.stage: v.entered_at for v in o.path}
        if api:
            row = {"hs_object_id": o.id, "dealname": o.name, "dealstage": o.stage,
                   "amount": o.amount, "deal_currency_code": o.currency,
                   "closedate": o.expected_close.isoformat() if o.expected_close else None,
                   "createdate": int(o.opened_at.timestamp() * 1000),
                   "hubspot_owner_id": o.owner, "closed_lost_reason": o.stage_reason}  # fmt: skip
            for s in HS.stages:
                at = entered.get(s.key)
                row[f"hs_date_entered_{s.key}"] = int(at.timestamp() * 1000) if at else None
        else:
            row = {"Record ID": o.id, "Deal Name": o.name, "Deal Stage": HS.stage(o.stage).label,
                   "Amount": o.amount, "Currency": o.currency,
                   "Close Date": o.expected_close.isoformat() if o.expected_close else None,
                   "Create Date": iso(o.opened_at), "Deal owner": o.owner,
                   "Pipeline": "Sales Pipeline", "Closed Lost Reason": o.stage_reason}  # fmt: skip
            for s in HS.stages:
                row[f'Date entered "{s.label} (Sales Pipeline)"'] = iso(entered.get(s.key))
                row[f'Date exited "{s.label} (Sales Pipeline)"'] = None
        rows.append(row)
    return rows


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("api", [False, True], ids=["labels", "api"])
def test_hubspot_round_trips_its_export(route: str, api: bool) -> None:
    got = hubspot.to_history(deals=readers(hubspot_export(HS_HISTORY, api=api))[route])
    assert got.ingest.rejected == ()
    want = final(HS_HISTORY)
    same_facts(final(got), want)
    lost = [o for o in want.values() if o.is_lost and o.stage_reason]
    assert all(final(got)[o.id].stage_reason == o.stage_reason for o in lost)


def test_hubspot_stage_history_replaces_the_date_columns() -> None:
    deals = hubspot_export(HS_HISTORY)
    for row in deals:  # the date columns say nothing now
        for column in list(row):
            if column.startswith("Date entered"):
                row[column] = None
    stage_history = [
        {"hs_object_id": o.id, "value": v.stage, "timestamp": v.entered_at.isoformat()}
        for o in final(HS_HISTORY).values()
        for v in o.path
    ]
    got = hubspot.to_history(deals=deals, stage_history=pd.DataFrame(stage_history))
    same_facts(final(got), final(HS_HISTORY))


# -- Pipedrive ------------------------------------------------------------------------------

PD = schemes.get("pipedrive")
PD_HISTORY = demo.demo_history(scheme=PD, opportunities=25, seed=5, currency="PLN")
PD_STAGES = [
    {"id": 10 + n, "name": s.label, "order_nr": n + 1, "deal_probability": 100, "pipeline_id": 1}
    for n, s in enumerate(PD.open_stages)
]
STAGE_ID = {s["name"]: s["id"] for s in PD_STAGES}


def pipedrive_export(history: History) -> tuple[Rows, Rows]:
    """The deals export ("Deal - ..." columns) and the deal flow's dealChange entries."""
    deals, changes = [], []
    for o in final(history).values():
        open_visits = [v for v in o.path if PD.stage(v.stage).is_open]
        status = "Won" if o.is_won else "Lost" if o.is_lost else "Open"
        closed = iso(o.closed_at)
        deals.append(
            {"Deal - ID": o.id, "Deal - Title": o.name, "Deal - Value": o.amount,
             "Deal - Currency": o.currency, "Deal - Stage": PD.stage(open_visits[-1].stage).label,
             "Deal - Status": status, "Deal - Deal created": iso(o.opened_at),
             "Deal - Won time": closed if o.is_won else None,
             "Deal - Lost time": closed if o.is_lost else None,
             "Deal - Lost reason": o.stage_reason if o.is_lost else None,
             "Deal - Expected close date": o.expected_close, "Deal - Owner": o.owner}
        )  # fmt: skip
        for before, visit in pairwise(open_visits):
            changes.append(
                {"item_id": o.id, "field_key": "stage_id", "log_time": iso(visit.entered_at),
                 "old_value": STAGE_ID[PD.stage(before.stage).label],
                 "new_value": STAGE_ID[PD.stage(visit.stage).label]}
            )  # fmt: skip
        if o.closed_at is not None:
            changes.append({"item_id": o.id, "field_key": "status", "log_time": closed,
                            "old_value": "open", "new_value": status.lower()})  # fmt: skip
    return deals, changes


@pytest.mark.parametrize("route", ROUTES)
def test_pipedrive_round_trips_its_export(route: str) -> None:
    deals, changes = pipedrive_export(PD_HISTORY)
    got = pipedrive.to_history(
        deals=readers(deals)[route], changes=readers(changes)[route], stages=PD_STAGES
    )
    assert got.ingest.rejected == ()
    same_facts(final(got), final(PD_HISTORY))


def test_pipedrive_deals_alone_give_every_close() -> None:
    deals, _ = pipedrive_export(PD_HISTORY)
    got, want = final(pipedrive.to_history(deals=deals)), final(PD_HISTORY)
    for oid, w in want.items():
        assert (got[oid].outcome, got[oid].closed_at, got[oid].amount) == (
            w.outcome,
            w.closed_at,
            w.amount,
        )


def test_pipedrive_scheme_from_its_stages_and_a_reopened_deal() -> None:
    plan = pipedrive.scheme(PD_STAGES, pipeline=1).replace(reopen=True)
    assert [s.weight for s in plan.open_stages] == [Decimal(100)] * len(PD.open_stages)
    deals = [{"id": 1, "title": "x", "stage_id": 11, "status": "open",
              "add_time": "2024-01-01 00:00:00"}]  # fmt: skip
    changes = [
        {"item_id": 1, "field_key": "stage_id", "old_value": 10, "new_value": 11,
         "log_time": "2024-01-02 00:00:00"},
        {"item_id": 1, "field_key": "status", "old_value": "open", "new_value": "lost",
         "log_time": "2024-01-03 00:00:00"},
        {"item_id": 1, "field_key": "status", "old_value": "lost", "new_value": "open",
         "log_time": "2024-01-04 00:00:00"},
    ]  # fmt: skip
    deal = final(pipedrive.to_history(deals=deals, changes=changes, stages=PD_STAGES,
                                      scheme=plan))["1"]  # fmt: skip
    assert [v.stage for v in deal.path] == ["lead-in", "contact-made", "lost", "contact-made"]
    with pytest.raises(ArgumentError, match="no stage of pipeline 9"):
        pipedrive.scheme(PD_STAGES, pipeline=9)


# -- Odoo -----------------------------------------------------------------------------------

OD = schemes.get("odoo")
OD_HISTORY = demo.demo_history(scheme=OD, opportunities=25, seed=6, currency="EUR")


def odoo_export(history: History) -> tuple[Rows, Rows]:
    """crm.lead rows (technical names) and mail.tracking.value rows with their message."""
    leads, tracking = [], []
    for o in final(history).values():
        kept = [v for v in o.path if not OD.stage(v.stage).is_lost]
        leads.append(
            {"id": o.id, "name": o.name, "stage_id": OD.stage(kept[-1].stage).label,
             "expected_revenue": o.amount, "company_currency": o.currency,
             "probability": None, "date_deadline": o.expected_close,
             "create_date": iso(o.opened_at), "date_closed": iso(o.closed_at),
             "user_id": o.owner, "active": not o.is_lost,
             "lost_reason_id": o.stage_reason if o.is_lost else None}
        )  # fmt: skip
        for before, visit in pairwise(kept):
            tracking.append(
                {"mail_message_id/res_id": o.id, "mail_message_id/model": "crm.lead",
                 "mail_message_id/date": iso(visit.entered_at), "field_id": "Stage",
                 "old_value_char": OD.stage(before.stage).label,
                 "new_value_char": OD.stage(visit.stage).label}
            )  # fmt: skip
        if o.is_lost:
            tracking.append(
                {"mail_message_id/res_id": o.id, "mail_message_id/model": "crm.lead",
                 "mail_message_id/date": iso(o.closed_at), "field_id": "active",
                 "old_value_integer": 1, "new_value_integer": 0}
            )  # fmt: skip
    tracking.append({"mail_message_id/res_id": 1, "mail_message_id/model": "res.partner",
                     "mail_message_id/date": "2024-01-01 00:00:00", "field_id": "Stage",
                     "new_value_char": "whatever"})  # fmt: skip
    return leads, tracking


@pytest.mark.parametrize("route", ROUTES)
def test_odoo_round_trips_its_export(route: str) -> None:
    leads, tracking = odoo_export(OD_HISTORY)
    got = odoo.to_history(leads=readers(leads)[route], tracking=readers(tracking)[route])
    assert got.ingest.rejected == ()
    same_facts(final(got), final(OD_HISTORY))


def test_odoo_leads_alone_give_every_close_and_the_probability() -> None:
    leads, _ = odoo_export(OD_HISTORY)
    leads[0]["probability"] = 35.0
    got, want = final(odoo.to_history(leads=leads)), final(OD_HISTORY)
    for oid, w in want.items():
        assert (got[oid].outcome, got[oid].closed_at) == (w.outcome, w.closed_at), oid
    assert got[leads[0]["id"]].probability == Decimal(35)
    unweighted = final(odoo.to_history(leads=leads, probabilities=False))
    assert unweighted[leads[0]["id"]].probability_override is None


# -- bad input ------------------------------------------------------------------------------

ADAPTERS: dict[str, Callable[..., History]] = {
    "salesforce": lambda rows, **kw: salesforce.to_history(opportunities=rows, **kw),
    "hubspot": lambda rows, **kw: hubspot.to_history(deals=rows, **kw),
    "pipedrive": lambda rows, **kw: pipedrive.to_history(deals=rows, **kw),
    "odoo": lambda rows, **kw: odoo.to_history(leads=rows, **kw),
}
GOOD_ROW = {
    "salesforce": {"Id": "1", "CreatedDate": "2024-01-05", "StageName": "Prospecting"},
    "hubspot": {"Record ID": "1", "Create Date": "2024-01-05", "Deal Stage": "Contract Sent"},
    "pipedrive": {
        "Deal - ID": "1",
        "Deal - Deal created": "2024-01-05",
        "Deal - Stage": "Lead In",
        "Deal - Status": "open",
    },
    "odoo": {"id": "1", "create_date": "2024-01-05", "stage_id": "New", "active": "True"},
}
CREATED = {"salesforce": "CreatedDate", "hubspot": "Create Date",
           "pipedrive": "Deal - Deal created", "odoo": "create_date"}  # fmt: skip
STAGE = {"salesforce": "StageName", "hubspot": "Deal Stage", "pipedrive": "Deal - Stage",
         "odoo": "stage_id"}  # fmt: skip


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_a_good_row_loads(vendor: str) -> None:
    assert len(ADAPTERS[vendor]([GOOD_ROW[vendor]])) == 1


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_an_unreadable_date_is_a_located_error_and_lenient_accounts_for_it(vendor: str) -> None:
    rows = [GOOD_ROW[vendor], {**GOOD_ROW[vendor], "_": 1, CREATED[vendor]: "31/31/2024"}]
    rows[1] = {**rows[1], next(iter(rows[1])): "2"}
    with pytest.raises(RecordError) as info:
        ADAPTERS[vendor](rows)
    assert (info.value.field, info.value.opportunity_id, info.value.event_id) == (
        "at",
        "2",
        "2/opened",
    )
    lenient = ADAPTERS[vendor](rows, mode="lenient")
    assert lenient.ingest.accounted and len(lenient.ingest.rejected) == 1


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_an_unknown_stage_name_says_which_stage_was_meant(vendor: str) -> None:
    name = GOOD_ROW[vendor][STAGE[vendor]]
    row = {**GOOD_ROW[vendor], STAGE[vendor]: name[:-1] + "x"}
    with pytest.raises(RecordError, match="did you mean") as info:
        ADAPTERS[vendor]([row])
    assert info.value.field == "stage"


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_a_missing_required_column_names_it_and_the_columns_there_are(vendor: str) -> None:
    row = {k: v for k, v in GOOD_ROW[vendor].items() if k != CREATED[vendor]}
    with pytest.raises(ArgumentError, match="no column for 'created'") as info:
        ADAPTERS[vendor]([row])
    assert all(column in str(info.value) for column in row)


@pytest.mark.parametrize("vendor", ADAPTERS)
@pytest.mark.parametrize("bad", ["a string", {"a": 1}, 42, None])
def test_rows_that_are_not_rows_are_an_argument_error(vendor: str, bad: Any) -> None:
    with pytest.raises(ArgumentError, match="expected rows"):
        ADAPTERS[vendor](bad)
    with pytest.raises(ArgumentError, match="row 1 is a list"):
        ADAPTERS[vendor]([GOOD_ROW[vendor], ["not", "a", "mapping"]])


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_columns_can_be_renamed_and_bad_renames_are_refused(vendor: str) -> None:
    renamed = {
        ("My created" if k == CREATED[vendor] else k): v for k, v in GOOD_ROW[vendor].items()
    }
    table = {"salesforce": "opportunities", "hubspot": "deals", "pipedrive": "deals",
             "odoo": "leads"}[vendor]  # fmt: skip
    assert len(ADAPTERS[vendor]([renamed], columns={table: {"created": "My created"}})) == 1
    with pytest.raises(ArgumentError, match="has no column 'Nope'"):
        ADAPTERS[vendor]([renamed], columns={table: {"created": "Nope"}})
    with pytest.raises(ArgumentError, match="unknown field"):
        ADAPTERS[vendor]([renamed], columns={table: {"colour": "x"}})
    with pytest.raises(ArgumentError, match="unknown input"):
        ADAPTERS[vendor]([renamed], columns={"tables": {}})


@pytest.mark.parametrize("vendor", ADAPTERS)
def test_missing_values_of_every_kind_are_missing(vendor: str) -> None:
    for marker in (None, "", "  ", math.nan, pd.NaT, pd.NA):
        row = {**GOOD_ROW[vendor], "Amount": marker, "amount": marker, "Deal - Value": marker}
        deal = final(ADAPTERS[vendor]([row]))["1"]
        assert deal.amount is None


def test_a_change_of_an_opportunity_the_export_does_not_hold_is_accounted_for() -> None:
    history = salesforce.to_history(
        opportunities=[GOOD_ROW["salesforce"]],
        history=[
            {"OpportunityId": "ghost", "CreatedDate": "2024-01-06", "StageName": "Closed Won"}
        ],
        mode="lenient",
    )
    assert [(r.error.opportunity_id, r.error.rule) for r in history.ingest.rejected] == [  # type: ignore[attr-defined]
        ("ghost", "not-opened")
    ]


def test_whole_float_ids_lose_their_point_zero() -> None:
    frame = pd.DataFrame([{**GOOD_ROW["odoo"], "id": 1.0}, {**GOOD_ROW["odoo"], "id": math.nan}])
    with pytest.raises(RecordError) as info:  # the second has no id: located, not 'nan'
        odoo.to_history(leads=frame)
    assert (info.value.index, info.value.field) == (1, "opportunity_id")
    assert list(final(odoo.to_history(leads=frame.iloc[:1]))) == ["1"]


def test_naive_times_take_tz_and_aware_ones_keep_theirs() -> None:
    from zoneinfo import ZoneInfo

    warsaw = ZoneInfo("Europe/Warsaw")
    naive = hubspot.to_records(deals=[GOOD_ROW["hubspot"] | {"Create Date": "2024-01-05 10:00"}],
                               tz=warsaw)  # fmt: skip
    assert naive[0]["at"] == datetime(2024, 1, 5, 10, tzinfo=warsaw)
    aware = hubspot.to_records(deals=[GOOD_ROW["hubspot"] | {"Create Date": "2024-01-05T10:00Z"}],
                               tz=warsaw)  # fmt: skip
    assert aware[0]["at"] == datetime(2024, 1, 5, 10, tzinfo=UTC)


def test_odoo_amount_changes_tracked_as_monetary_values_count_too() -> None:
    leads = [GOOD_ROW["odoo"] | {"expected_revenue": "100"}]
    tracking = [{"mail_message_id/res_id": "1", "mail_message_id/date": "2024-02-01 00:00:00",
                 "field_id": "Expected Revenue", "new_value_monetary": 250.0}]  # fmt: skip
    assert final(odoo.to_history(leads=leads, tracking=tracking))["1"].amount == Decimal(250)


@pytest.mark.parametrize("stamp", ["1709251200", 1709251200, 45000.0, "45000"])
def test_numbers_that_are_not_epoch_milliseconds_are_not_guessed_at(stamp: Any) -> None:
    row = GOOD_ROW["hubspot"] | {"Create Date": stamp}
    with pytest.raises(RecordError) as info:
        hubspot.to_history(deals=[row])
    assert (info.value.field, info.value.event_id) == ("at", "1/opened")
