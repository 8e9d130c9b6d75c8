"""Built-in stage schemes (presets), looked up by name.

Each preset is plain data, checked by :class:`~pipelinekit.stages.StageScheme` like any
scheme an app would supply, and built once per name (schemes are frozen, so one instance is
shared). Every preset says where its stages and weights come from; where we had to add
something the source lacks (a lost stage, weights), the stage's description says so.

- ``polish-sales-cycle``: the eight-stage sales cycle of a Polish article on pipelines
  (portalCRM.pl, "Co to jest pipeline?", 28 August 2007), no weights, plus a lost stage of
  ours.
- ``polish-crm-funnel``: the 17-stage scheme of a Polish sales-process article ("Lejek
  sprzedaży w aplikacji crm") with its percentages, won stages order → delivery → invoice →
  payment → next action, plus a lost stage of ours.
- ``vtiger-lead-funnel``: the lead funnel of a Japanese Vtiger article
  ("セールスパイプラインとは何ですか?"), with weights of ours (the article gives none).
- ``salesforce``: Salesforce's standard opportunity stages and default probabilities.
- ``suitecrm``: SuiteCRM's default ``sales_stage_dom`` / ``sales_probability_dom``.
- ``hubspot``: HubSpot's default deal pipeline, keyed by its internal stage ids, with its
  default win probabilities.
- ``pipedrive``: Pipedrive's starting pipeline plus won and lost (no weights).
- ``odoo``: Odoo CRM's default stages plus lost (no weights).

All presets use the ``forward`` transition policy (stages may be skipped, as the Polish
sales-process article asks)
and do not allow reopening a closed deal. Stage keys are part of the public contract: events
and stored configurations name stages by key, so keys never change once published.

Example:
    >>> from pipelinekit import schemes
    >>> schemes.names()
    ('polish-sales-cycle', 'polish-crm-funnel', 'vtiger-lead-funnel', 'salesforce', 'suitecrm',
     'hubspot', 'pipedrive', 'odoo')
    >>> s = schemes.get("polish-crm-funnel")
    >>> [(st.label_for("pl"), st.weight) for st in s.won_stages][:4]
    [('Zamówienie', Decimal('80')), ('Dostawa', Decimal('85')), ('Faktura', Decimal('95')),
     ('Należność', Decimal('100'))]
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

from pipelinekit.errors import ArgumentError
from pipelinekit.stages import StageScheme

__all__ = ["describe", "get", "names"]


class _Preset(NamedTuple):
    summary: str
    data: dict[str, Any]


def _stage(
    key: str,
    label: str,
    description: str,
    *,
    weight: str | None = None,
    outcome: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One stage as plain data (the same shape an app's JSON configuration would have)."""
    return {
        "key": key,
        "label": label,
        "labels": labels,
        "description": description,
        "weight": weight,
        "outcome": outcome,
    }


# -- polish-sales-cycle --------------------------------------------------------------------
# Source: the Polish article "Co to jest pipeline?" (portalCRM.pl, 28 August 2007). The
# article lists eight stages and gives no percentages, so every weight
# is None (opportunities are still counted and summed per stage). It has no lost stage.

_POLISH_SALES_CYCLE = _Preset(
    summary=(
        "The eight-stage sales cycle of a Polish article on pipelines (portalCRM.pl, 2007): "
        "Potencjalny → Zrealizowany, no weights; won from Umowa on; lost stage added by "
        "pipelinekit."
    ),
    data={
        "name": "polish-sales-cycle",
        "description": (
            "The example sales cycle of the Polish article 'Co to jest pipeline?' "
            "(portalCRM.pl, 28 August 2007): from a potential contract to a realised one. "
            "The article gives no percentages, so no stage has a weight. Signing the "
            "contract (Umowa) is the win; delivery (Realizacja) and realised (Zrealizowany) "
            "follow as won stages. The article's cycle then 'starts again from needs "
            "analysis': a repeat sale is recorded as a new opportunity. The lost stage is "
            "not in the article; pipelinekit adds it so that deals can be lost."
        ),
        "stages": [
            _stage(
                "potential",
                "Potential",
                "A potential customer: the sales process starts here, from a phone number, "
                "e-mail or address we try to make contact with.",
                pl="Potencjalny",
            ),
            _stage(
                "first-contact",
                "First contact",
                "Contact with the customer has been established.",
                pl="Nawiązanie kontaktu",
            ),
            _stage(
                "needs-analysis",
                "Needs analysis",
                "The customer's needs are being analysed.",
                pl="Analiza potrzeb",
            ),
            _stage(
                "offer",
                "Offer",
                "An offer has been presented to the customer.",
                pl="Oferta",
            ),
            _stage(
                "negotiation",
                "Negotiation",
                "The offer is being negotiated.",
                pl="Negocjacje",
            ),
            _stage(
                "contract",
                "Contract",
                "The contract is signed: the deal is won.",
                outcome="won",
                pl="Umowa",
            ),
            _stage(
                "delivery",
                "Delivery",
                "The contract is being carried out (a won stage after the signature).",
                outcome="won",
                pl="Realizacja",
            ),
            _stage(
                "realised",
                "Realised",
                "The contract has been carried out in full (a won stage).",
                outcome="won",
                pl="Zrealizowany",
            ),
            _stage(
                "lost",
                "Lost",
                "The potential contract was lost. The article has no lost stage; pipelinekit "
                "added this one (and its Polish label) so that deals can be lost.",
                outcome="lost",
                pl="Utracony",
            ),
        ],
    },
)

# -- polish-crm-funnel ---------------------------------------------------------------------
# Source: the Polish sales-process article "Lejek sprzedaży w aplikacji crm".
# Its table has 18 rows: 17 stages with a "procentowy udział" (0 ... 100) and the after-sales
# "Następne działanie" whose percentage cell is empty (weight None). Polish labels and
# percentages are copied from the table; descriptions translate the table's "Opis" column.

_POLISH_CRM_FUNNEL = _Preset(
    summary=(
        "The 17-stage scheme of a Polish sales-process article (Lejek sprzedaży w aplikacji "
        "crm): weighted 0 % → 100 % plus after-sales Następne działanie; won from Zamówienie "
        "(80 %); lost stage added."
    ),
    data={
        "name": "polish-crm-funnel",
        "description": (
            "The detailed sales-stage table of the Polish article 'Lejek sprzedaży w "
            "aplikacji crm', with its percentages (the share of the contract value counted "
            "when forecasting sales for the coming periods). The prospect becomes a customer "
            "at Zamówienie (order, 80 %); delivery (85 %), invoice (95 %), payment (100 %) "
            "and the after-sales next action (no percentage in the article) follow as won "
            "stages. Not every sale passes through every stage: stages may be skipped. The "
            "lost stage is not in the article; pipelinekit adds it so that deals can be lost."
        ),
        "stages": [
            _stage(
                "new-prospect",
                "New prospect",
                "A future potential customer (prospect): we know the prospect will need a "
                "project of the kind the company offers.",
                weight="0",
                pl="Nowy Prospekt",
            ),
            _stage(
                "need-information",
                "Information about a need",
                "Enough data to recognise the prospect as an organisation whose needs the "
                "company can meet, without details of its budget or requirements.",
                weight="1",
                pl="Informacje o potrzebie",
            ),
            _stage(
                "company",
                "Company (first contact)",
                "First contact with the prospect (fax, e-mail, letter, brochure).",
                weight="2",
                pl="Firma",
            ),
            _stage(
                "meeting",
                "Meeting",
                "First meeting with the prospect.",
                weight="3",
                pl="Spotkanie",
            ),
            _stage(
                "opportunity-analysis",
                "Opportunity analysis",
                "The prospect's needs are gathered and understood and the company can meet "
                "them; budget and timing are still unknown.",
                weight="5",
                pl="Analiza możliwości",
            ),
            _stage(
                "project-development",
                "Project development",
                "A proposed project that meets the prospect's needs is being prepared.",
                weight="10",
                pl="Rozwój Projektu",
            ),
            _stage(
                "project-presentation",
                "Project presentation",
                "The project is presented to the prospect.",
                weight="15",
                pl="Prezentacja Projektu",
            ),
            _stage(
                "prospect-evaluation",
                "Prospect's evaluation",
                "The company receives the prospect's evaluation of the proposed project.",
                weight="20",
                pl="Ocena ze strony Prospektu",
            ),
            _stage(
                "project-2-preparation",
                "Preparing project 2",
                "Based on the prospect's feedback the company prepares solution number 2.",
                weight="25",
                pl="Przygotowanie Projektu 2",
            ),
            _stage(
                "project-2-presentation",
                "Presenting project 2",
                "Project 2 is presented to the prospect.",
                weight="30",
                pl="Prezentacja Projektu 2",
            ),
            _stage(
                "project-2-evaluation",
                "Prospect's evaluation of project 2",
                "The company receives the prospect's evaluation of project 2.",
                weight="35",
                pl="Ocena ze strony Prospektu Projektu 2",
            ),
            _stage(
                "negotiation",
                "Negotiation",
                "Negotiation of price, delivery terms, service, warranty and quality.",
                weight="40",
                pl="Negocjacje",
            ),
            _stage(
                "negotiation-2",
                "Negotiation 2",
                "Second round of negotiation, with no financial commitment yet.",
                weight="50",
                pl="Negocjacje 2",
            ),
            _stage(
                "order",
                "Order",
                "The prospect decided to become a customer and signed the order or contract: "
                "the deal is won.",
                weight="80",
                outcome="won",
                pl="Zamówienie",
            ),
            _stage(
                "delivery",
                "Delivery",
                "The prospect signed the project's acceptance protocol.",
                weight="85",
                outcome="won",
                pl="Dostawa",
            ),
            _stage(
                "invoice",
                "Invoice",
                "The invoice for the delivered solution has been issued.",
                weight="95",
                outcome="won",
                pl="Faktura",
            ),
            _stage(
                "payment",
                "Payment received",
                "100 % of the amount due has reached the company's account.",
                weight="100",
                outcome="won",
                pl="Należność",
            ),
            _stage(
                "next-action",
                "Next action",
                "After-sales: keep good relations with the customer and plan the next actions "
                "to sell more and keep the customer. The article gives no percentage "
                "for this stage, so it has no weight.",
                outcome="won",
                pl="Następne działanie",
            ),
            _stage(
                "lost",
                "Lost",
                "The sales opportunity was lost. The article has no lost stage; pipelinekit "
                "added this one (weight 0, and its Polish label) so that deals can be lost.",
                weight="0",
                outcome="lost",
                pl="Utracona",
            ),
        ],
    },
)

# -- vtiger-lead-funnel --------------------------------------------------------------------
# Source: the Japanese Vtiger article "セールスパイプラインとは何ですか?".
# The article's "販売パイプラインの段階" lists 1) 潜在顧客 2) リード資格 3) リード育成
# 4) リード変換 5) 見積もりと請求書の管理 6) 取引または機会管理 7) 連絡先管理 8) 付属プロセス.
# Steps 1-5 become open stages; closing the deal (取引の成立, the article's own words) is the
# win. Steps 6-8 are ongoing management processes, not stages a deal passes through. The
# article gives no percentages and no lost stage: the weights and the lost stage are ours.

_VTIGER_LEAD_FUNNEL = _Preset(
    summary=(
        "The lead funnel of a Japanese Vtiger article: lead generation → qualification → "
        "nurturing → conversion → quote → deal won; weights 5/10/20/40/60 and lost stage by "
        "pipelinekit."
    ),
    data={
        "name": "vtiger-lead-funnel",
        "description": (
            "The lead funnel of the Japanese Vtiger article 'セールスパイプラインとは何ですか?': "
            "lead generation, lead qualification, lead nurturing, lead conversion and quote "
            "management are open stages; closing the deal is the win. The article gives no "
            "percentages: the weights (5, 10, 20, 40, 60 %) are pipelinekit's own rough "
            "defaults, to be replaced by a company's historical win rates. The lost stage "
            "is not in the article; pipelinekit adds it so that deals can be lost."
        ),
        "stages": [
            _stage(
                "lead",
                "Lead generation",
                "Stimulating and attracting a customer's interest in the product or service "
                "(article step 1). Weight 5 % is ours; the article gives none.",
                weight="5",
                ja="潜在顧客",
            ),
            _stage(
                "qualification",
                "Lead qualification",
                "Deciding which prospects are most likely to buy and dropping uninterested "
                "ones (article step 2). Weight 10 % is ours.",
                weight="10",
                ja="リード資格",
            ),
            _stage(
                "nurturing",
                "Lead nurturing",
                "Building the relationship with the lead through the buying process "
                "(article step 3). Weight 20 % is ours.",
                weight="20",
                ja="リード育成",
            ),
            _stage(
                "conversion",
                "Lead conversion",
                "The nurtured lead is being converted into a paying customer (article "
                "step 4). Weight 40 % is ours.",
                weight="40",
                ja="リード変換",
            ),
            _stage(
                "quote",
                "Quote",
                "A sales quote listing the prices of goods and services has been sent "
                "(article step 5, 見積もりと請求書の管理 'quote and invoice management'; "
                "invoicing follows the win). Weight 60 % is ours.",
                weight="60",
                ja="見積もり",
            ),
            _stage(
                "won",
                "Deal won",
                "The deal is closed: the prospect became a customer.",
                weight="100",
                outcome="won",
                ja="取引の成立",
            ),
            _stage(
                "lost",
                "Deal lost",
                "The deal was lost. The article has no lost stage; pipelinekit added this one "
                "(and its Japanese label 失注, the usual term) so that deals can be lost.",
                weight="0",
                outcome="lost",
                ja="失注",
            ),
        ],
    },
)

# -- Salesforce ---------------------------------------------------------------------------
# Sources: Salesforce's standard Opportunity "Stage" picklist, whose values each carry a
# default probability and forecast category (Salesforce Help: Setup > Object Manager >
# Opportunity > Fields & Relationships > Stage; SOAP API Object Reference: OpportunityStage,
# field DefaultProbability). Verified against a public export of the Developer-Edition sample
# data (repo earthfink1982/salesforce-in-powerbi, commit
# 327dd14a5df0fc34d75ec77d5acbfab62a4ad458): every Opportunity.csv and
# OpportunityHistory.csv row carries StageName with the Probability Salesforce computed,
# and the pairs are exactly the ones below (forecast category Pipeline for the open stages,
# Closed for Closed Won, Omitted for Closed Lost).

_SALESFORCE_STAGES = [
    (
        "prospecting",
        "Prospecting",
        "10",
        None,
        "Identifying a possible buyer and first contact. Forecast category: Pipeline.",
    ),
    (
        "qualification",
        "Qualification",
        "10",
        None,
        "Checking that the prospect has a need, budget and authority. Forecast category: Pipeline.",
    ),
    (
        "needs-analysis",
        "Needs Analysis",
        "20",
        None,
        "Understanding the prospect's requirements. Forecast category: Pipeline.",
    ),
    (
        "value-proposition",
        "Value Proposition",
        "50",
        None,
        "Showing the value of the offer for the prospect's needs. Forecast category: Pipeline.",
    ),
    (
        "id-decision-makers",
        "Id. Decision Makers",
        "60",
        None,
        "Identifying who decides and who influences the purchase. Forecast category: Pipeline.",
    ),
    (
        "perception-analysis",
        "Perception Analysis",
        "70",
        None,
        "Checking how the decision makers perceive the offer. Forecast category: Pipeline.",
    ),
    (
        "proposal-price-quote",
        "Proposal/Price Quote",
        "75",
        None,
        "A proposal or price quote has been sent. Forecast category: Pipeline.",
    ),
    (
        "negotiation-review",
        "Negotiation/Review",
        "90",
        None,
        "Terms are being negotiated or the proposal reviewed. Forecast category: Pipeline.",
    ),
    (
        "closed-won",
        "Closed Won",
        "100",
        "won",
        "The opportunity is won (IsClosed and IsWon). Forecast category: Closed.",
    ),
    (
        "closed-lost",
        "Closed Lost",
        "0",
        "lost",
        "The opportunity is lost (IsClosed, not IsWon). Forecast category: Omitted.",
    ),
]

_SALESFORCE = _Preset(
    summary=(
        "Salesforce standard opportunity stages with their default probabilities "
        "(Prospecting 10 % ... Negotiation/Review 90 %, Closed Won, Closed Lost)."
    ),
    data={
        "name": "salesforce",
        "description": (
            "Salesforce's standard Opportunity Stage picklist values and their default "
            "probabilities, as shipped in a new org (Setup > Object Manager > Opportunity > "
            "Stage; API object OpportunityStage.DefaultProbability), verified against the "
            "probabilities Salesforce computed in its Developer-Edition sample data."
        ),
        "stages": [
            _stage(key, label, desc, weight=weight, outcome=outcome, en=label)
            for key, label, weight, outcome, desc in _SALESFORCE_STAGES
        ],
    },
)

# -- SuiteCRM -----------------------------------------------------------------------------
# Source: SuiteCRM's language file include/language/en_us.lang.php (repo
# salesagility/SuiteCRM, read at commit 28bee0a4b2a688122a477a7fbd7be12333a7d875):
# 'sales_stage_dom' (stage values and display labels; 'sales_stage_default_key' is
# 'Prospecting') and 'sales_probability_dom' ("keys must be the same as sales_stage_dom"),
# whose values are copied below. The stored value 'Id. Decision Makers' is displayed as
# 'Identifying Decision Makers'.

_SUITECRM_STAGES = [
    ("prospecting", "Prospecting", "Prospecting", "10", None),
    ("qualification", "Qualification", "Qualification", "20", None),
    ("needs-analysis", "Needs Analysis", "Needs Analysis", "25", None),
    ("value-proposition", "Value Proposition", "Value Proposition", "30", None),
    ("id-decision-makers", "Id. Decision Makers", "Identifying Decision Makers", "40", None),
    ("perception-analysis", "Perception Analysis", "Perception Analysis", "50", None),
    ("proposal-price-quote", "Proposal/Price Quote", "Proposal/Price Quote", "65", None),
    ("negotiation-review", "Negotiation/Review", "Negotiation/Review", "80", None),
    ("closed-won", "Closed Won", "Closed Won", "100", "won"),
    ("closed-lost", "Closed Lost", "Closed Lost", "0", "lost"),
]

_SUITECRM = _Preset(
    summary=(
        "SuiteCRM default sales stages and probabilities (sales_stage_dom / "
        "sales_probability_dom: Prospecting 10 % ... Negotiation/Review 80 %)."
    ),
    data={
        "name": "suitecrm",
        "description": (
            "SuiteCRM's default opportunity sales stages and probabilities, from "
            "'sales_stage_dom' and 'sales_probability_dom' in include/language/en_us.lang.php "
            "(salesagility/SuiteCRM). SuiteCRM inherited them from SugarCRM Community Edition."
        ),
        "stages": [
            _stage(
                key,
                label,
                f"SuiteCRM sales stage stored as {value!r}, default probability {weight} %.",
                weight=weight,
                outcome=outcome,
                en=label,
            )
            for key, value, label, weight, outcome in _SUITECRM_STAGES
        ],
    },
)

# -- HubSpot ------------------------------------------------------------------------------
# Source: HubSpot's default deal pipeline ("Sales Pipeline", internal id "default"): its stage
# internal ids (the values of the ``dealstage`` property, and the suffixes of the
# ``hs_date_entered_<stage id>`` properties) with their labels and default win
# probabilities (the ``hs_deal_stage_probability`` property, 0.2 for appointmentscheduled).
# The keys are HubSpot's internal ids, the labels its display names, so both an API export
# (ids) and a CSV export (labels) map to keys with StageScheme.key_for.

_HUBSPOT_STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "20", None),
    ("qualifiedtobuy", "Qualified To Buy", "40", None),
    ("presentationscheduled", "Presentation Scheduled", "60", None),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "80", None),
    ("contractsent", "Contract Sent", "90", None),
    ("closedwon", "Closed Won", "100", "won"),
    ("closedlost", "Closed Lost", "0", "lost"),
]

_HUBSPOT = _Preset(
    summary=(
        "HubSpot's default deal pipeline (Sales Pipeline) with its default win probabilities "
        "(Appointment Scheduled 20 % ... Contract Sent 90 %, Closed Won, Closed Lost)."
    ),
    data={
        "name": "hubspot",
        "description": (
            "The stages of HubSpot's default deal pipeline ('Sales Pipeline'), keyed by "
            "HubSpot's internal stage ids, with the default win probability of each stage."
        ),
        "stages": [
            _stage(
                key,
                label,
                f"HubSpot deal stage {key!r}, default win probability {weight} %.",
                weight=weight,
                outcome=outcome,
                en=label,
            )
            for key, label, weight, outcome in _HUBSPOT_STAGES
        ],
    },
)

# -- Pipedrive ----------------------------------------------------------------------------
# Source: the stages of the pipeline a new Pipedrive company starts with ("Lead In", "Contact
# Made", "Demo Scheduled", "Proposal Made", "Negotiations Started"). Pipedrive keeps won and
# lost as a deal's status, not as stages: the two closed stages are added by pipelinekit.
# Each company sets its own stage probabilities, so the preset has no weights; build a
# scheme with your probabilities with pipelinekit.adapters.pipedrive.scheme(stages).

_PIPEDRIVE_STAGES = [
    ("lead-in", "Lead In", None),
    ("contact-made", "Contact Made", None),
    ("demo-scheduled", "Demo Scheduled", None),
    ("proposal-made", "Proposal Made", None),
    ("negotiations-started", "Negotiations Started", None),
    ("won", "Won", "won"),
    ("lost", "Lost", "lost"),
]

_PIPEDRIVE = _Preset(
    summary=(
        "Pipedrive's starting pipeline (Lead In ... Negotiations Started) plus Won and Lost "
        "(Pipedrive's deal statuses); no weights."
    ),
    data={
        "name": "pipedrive",
        "description": (
            "The stages of the pipeline a new Pipedrive company starts with. Won and lost are "
            "a deal's status in Pipedrive, not stages; pipelinekit adds them as the closed "
            "stages 'won' and 'lost'. No weights: each company sets its own stage "
            "probabilities (pipelinekit.adapters.pipedrive.scheme builds a scheme from them)."
        ),
        "stages": [
            _stage(
                key,
                label,
                f"Pipedrive's {label!r}"
                + (" (a deal status, added as a stage by pipelinekit)." if outcome else " stage."),
                weight="100" if outcome == "won" else "0" if outcome == "lost" else None,
                outcome=outcome,
                en=label,
            )
            for key, label, outcome in _PIPEDRIVE_STAGES
        ],
    },
)

# -- Odoo ---------------------------------------------------------------------------------
# Source: Odoo CRM's default stages (crm/data/crm_stage_data.xml: New, Qualified, Proposition
# and Won, the last with is_won). Odoo marks a lost opportunity by archiving it with a lost
# reason, not by a stage: the lost stage is added by pipelinekit. Odoo's stages carry no
# probability (each lead has its own, from predictive lead scoring or typed in), so the preset
# has no weights; the odoo adapter carries each lead's probability as an override.

_ODOO = _Preset(
    summary=(
        "Odoo CRM's default stages New, Qualified, Proposition, Won, plus Lost (Odoo archives "
        "lost leads); no weights (each lead has its own probability)."
    ),
    data={
        "name": "odoo",
        "description": (
            "Odoo CRM's default opportunity stages. A lost opportunity is archived in Odoo, not "
            "moved to a stage; pipelinekit adds the lost stage. No weights: in Odoo each lead "
            "carries its own probability, which the odoo adapter sets as an override."
        ),
        "stages": [
            _stage("new", "New", "Odoo's first stage.", en="New"),
            _stage("qualified", "Qualified", "Odoo's 'Qualified' stage.", en="Qualified"),
            _stage("proposition", "Proposition", "Odoo's 'Proposition' stage.", en="Proposition"),
            _stage("won", "Won", "Odoo's won stage (is_won).", weight="100", outcome="won"),
            _stage(
                "lost",
                "Lost",
                "Archived with a lost reason in Odoo; added as a stage by pipelinekit.",
                weight="0",
                outcome="lost",
            ),
        ],
    },
)

_PRESETS: dict[str, _Preset] = {
    "polish-sales-cycle": _POLISH_SALES_CYCLE,
    "polish-crm-funnel": _POLISH_CRM_FUNNEL,
    "vtiger-lead-funnel": _VTIGER_LEAD_FUNNEL,
    "salesforce": _SALESFORCE,
    "suitecrm": _SUITECRM,
    "hubspot": _HUBSPOT,
    "pipedrive": _PIPEDRIVE,
    "odoo": _ODOO,
}


_ALIASES: dict[str, str] = {
    "seed-000": "polish-sales-cycle",
    "seed-001": "polish-crm-funnel",
    "seed-004": "vtiger-lead-funnel",
}
"""Names three presets had before they were named after what they are; :func:`get` still
accepts them (and returns the scheme under its present name)."""


def names() -> tuple[str, ...]:
    """The names of the built-in schemes, in a stable order.

    Returns:
        The preset names; each one is accepted by :func:`get`.

    Example:
        >>> from pipelinekit import schemes
        >>> "salesforce" in schemes.names()
        True
    """
    return tuple(_PRESETS)


def describe() -> dict[str, str]:
    """A one-line description of each built-in scheme, keyed by name.

    Returns:
        A new dict ``{name: description}`` in the order of :func:`names`.

    Example:
        >>> from pipelinekit import schemes
        >>> print(schemes.describe()["polish-sales-cycle"])
        The eight-stage sales cycle of a Polish article on pipelines (portalCRM.pl, 2007):
        Potencjalny → Zrealizowany, no weights; won from Umowa on; lost stage added by
        pipelinekit.
    """
    return {name: preset.summary for name, preset in _PRESETS.items()}


def get(name: str) -> StageScheme:
    """The built-in scheme called ``name``.

    Each scheme is built and validated once; later calls return the same frozen instance.

    Args:
        name: one of :func:`names` (or a name a preset had before, see :data:`_ALIASES`).

    Returns:
        The validated :class:`~pipelinekit.stages.StageScheme`.

    Raises:
        ArgumentError: ``name`` is not a built-in scheme (the message lists the known ones).

    Example:
        >>> from pipelinekit import schemes
        >>> s = schemes.get("suitecrm")
        >>> s.stage("proposal-price-quote").weight, s.won_stages[0].key
        (Decimal('65'), 'closed-won')
        >>> schemes.get("polish-sales-cycle").has_weights
        False
        >>> schemes.get("zoho")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'name': no preset 'zoho'; known: [...]
    """
    if isinstance(name, str):
        name = _ALIASES.get(name, name)
    if not isinstance(name, str) or name not in _PRESETS:
        raise ArgumentError("name", f"no preset {name!r}; known: {list(_PRESETS)}")
    return _build(name)


@cache
def _build(name: str) -> StageScheme:
    return StageScheme.model_validate(_PRESETS[name].data)
