"""Built-in stage schemes (presets), looked up by name.

(Temporary minimal version; the full presets are being written.)
"""

from __future__ import annotations

from pipelinekit.errors import ArgumentError
from pipelinekit.stages import StageScheme

__all__ = ["get", "names"]

_PRESETS: dict[str, dict[str, object]] = {
    "salesforce": {
        "name": "salesforce",
        "stages": [
            {"key": "prospecting", "label": "Prospecting", "weight": "10"},
            {"key": "qualification", "label": "Qualification", "weight": "10"},
            {"key": "needs-analysis", "label": "Needs Analysis", "weight": "20"},
            {"key": "value-proposition", "label": "Value Proposition", "weight": "50"},
            {"key": "id-decision-makers", "label": "Id. Decision Makers", "weight": "60"},
            {"key": "perception-analysis", "label": "Perception Analysis", "weight": "70"},
            {"key": "proposal-price-quote", "label": "Proposal/Price Quote", "weight": "75"},
            {"key": "negotiation-review", "label": "Negotiation/Review", "weight": "90"},
            {"key": "closed-won", "label": "Closed Won", "weight": "100", "outcome": "won"},
            {"key": "closed-lost", "label": "Closed Lost", "weight": "0", "outcome": "lost"},
        ],
    },
    "seed-004": {
        "name": "seed-004",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "5"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    },
}


def names() -> tuple[str, ...]:
    """The names of the built-in schemes."""
    return tuple(_PRESETS)


def get(name: str) -> StageScheme:
    """The built-in scheme called ``name``."""
    try:
        return StageScheme.model_validate(_PRESETS[name])
    except KeyError:
        raise ArgumentError("name", f"no preset {name!r}; known: {list(_PRESETS)}") from None
