"""From a CRM export to pipelinekit records or a History, in one call.

One module per CRM, each with ``to_records(...)`` and ``to_history(..., scheme=None,
mode="strict")``: pure functions, no file or network access. Give them the export's rows (an
iterable of mappings, such as ``csv.DictReader`` gives, or a pandas or polars DataFrame),
with the export's own column names (any can be renamed with ``columns=``) and dates as
strings or datetimes. Each module's docstring has its mapping table; ``docs/from-your-crm.md``
walks through each from export to first report.

- :mod:`~pipelinekit.adapters.salesforce`: Opportunity, OpportunityHistory,
  OpportunityFieldHistory.
- :mod:`~pipelinekit.adapters.hubspot`: the deals export (with its "Date entered" stage
  columns) and the deal stage history.
- :mod:`~pipelinekit.adapters.pipedrive`: deals and their change log (deal flow).
- :mod:`~pipelinekit.adapters.odoo`: ``crm.lead`` rows and their tracked changes
  (``mail.tracking.value``).

Missing values follow :mod:`pipelinekit.records` (an empty CSV cell is missing too). A
value an adapter cannot read is passed on unchanged, so validation rejects that record by
its field and ``event_id`` (built from the export row) instead of a guess.
"""

from pipelinekit.adapters import hubspot, odoo, pipedrive, salesforce

__all__ = ["hubspot", "odoo", "pipedrive", "salesforce"]
