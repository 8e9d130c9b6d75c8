"""Grouping opportunities by a descriptive field, and checks shared by mergeable reports.

Private helpers of the pipeline-by-stage, win/loss, stalled-deals and activity reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pipelinekit.errors import ArgumentError
from pipelinekit.pipeline import Deal

Field = Literal["owner", "product", "source", "account"]
FIELDS: tuple[Field, ...] = ("owner", "product", "source", "account")


def field_arg(value: object, *, argument: str, allowed: Iterable[str | None]) -> Any:
    """Check that ``value`` is one of ``allowed``, naming ``argument`` otherwise."""
    choices = tuple(allowed)
    if value not in choices:
        raise ArgumentError(argument, f"expected one of {list(choices)}, got {value!r}")
    return value


def group_of(opportunity: Deal, field: Field | None) -> str | None:
    """The opportunity's value of ``field`` (``None`` when ungrouped or the field is unset)."""
    if field is None:
        return None
    value: str | None = getattr(opportunity, field)
    return value


def group_order(group: str | None) -> tuple[bool, str]:
    """Sort key putting groups in name order and the ``None`` group last."""
    return (group is None, group or "")


def same_config(kind: str, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Refuse to merge two results computed with different settings.

    Raises:
        ArgumentError: (argument ``other``) naming the first setting that differs.
    """
    for name, value in mine.items():
        if theirs.get(name) != value:
            raise ArgumentError(
                "other",
                f"cannot merge {kind} results with different {name}: "
                f"{value!r} vs {theirs.get(name)!r}",
            )
