"""Rows: the compact form in which a :class:`~pipelinekit.History` keeps its events.

A pydantic event model costs about 1 KB (its instance ``__dict__`` above all); a million of
them were most of a History's memory. A row is a tuple of the same field values in the
event class's field order, followed by the set of fields its record gave (one set object
shared by every row with the same fields): about 150 bytes plus the values. Row classes are
named tuples with the event's attribute names, so the state machine reads a row exactly
as it reads the event; :func:`event_of` builds the event model when one is asked for
(``History.events``), equal to the one validated, ``model_fields_set`` included.

Example:
    >>> from pipelinekit.events import Opened
    >>> e = Opened(opportunity_id="o-1", at="2024-01-05T10:00:00Z", stage="lead")
    >>> row = row_of(e)
    >>> row.stage, row.opportunity_id, type(row).__name__
    ('lead', 'o-1', 'OpenedRow')
    >>> back = event_of(row)
    >>> back == e, back.model_fields_set == e.model_fields_set
    (True, True)
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from pydantic_core import CoreConfig, CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

from pipelinekit.events import EVENT_CLASSES, RECORD_TYPE_ERROR, Event

__all__ = [
    "AT",
    "EVENT_ID",
    "OPPORTUNITY_ID",
    "ROW_CLASSES",
    "Row",
    "RowMaker",
    "event_of",
    "row_of",
    "same_event",
    "trusted",
]

Row = tuple[Any, ...]
"""A row (typed loosely: its class is made at import time from the event class)."""

# positions of the fields every event has (EventBase's, first in every event class)
OPPORTUNITY_ID, AT, EVENT_ID = 1, 2, 3
_set = object.__setattr__
# BaseModel's slot descriptors: setting through them skips object.__setattr__'s lookup
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__
_new = tuple.__new__
_M = TypeVar("_M", bound=BaseModel)


def trusted(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """What ``cls.model_construct(**values)`` gives, without its per-call Python loop.

    For values validated already (a row's, the replay's own output): ``values`` holds
    every field of ``cls``, in field order (``__dict__`` order is the repr order).
    ``model_construct`` walks every field and its aliases on each call, which dominated
    freezing 200k opportunities. ``fields_set`` may be shared between instances: the
    models are frozen, so pydantic never adds to it in place (``model_copy`` copies it
    first), and one set per class instead of one per instance saves ~700 bytes each.
    """
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def _row_class(cls: type[BaseModel]) -> type[Row]:
    names = (*cls.__pydantic_fields__, "fields_set")
    row_cls: type[Row] = namedtuple(f"{cls.__name__}Row", names, module=__name__)  # type: ignore[misc]
    globals()[row_cls.__name__] = row_cls  # importable by name, so rows pickle
    return row_cls


ROW_CLASSES: dict[type[BaseModel], type[Row]] = {cls: _row_class(cls) for cls in EVENT_CLASSES}
"""The row class of each event class."""

_EVENT_OF_ROW: dict[type[Row], tuple[type[BaseModel], tuple[str, ...]]] = {
    row_cls: (cls, tuple(cls.__pydantic_fields__)) for cls, row_cls in ROW_CLASSES.items()
}
_VALUES: dict[type[BaseModel], Callable[[BaseModel], tuple[Any, ...]]] = {
    cls: attrgetter(*cls.__pydantic_fields__) for cls in EVENT_CLASSES
}


def _record_schema(cls: type[BaseModel], config: CoreConfig) -> CoreSchema:
    """The schema of a record of ``cls`` as a typed dict: the model's own field validators
    and config (so the same values, errors and error locations), but a field the record
    does not give stays absent, so the keys of the result are the model's fields-set.

    A key the model does not have passes only with the value ``None`` (a missing value,
    ignored: see :mod:`pipelinekit.records`); any other value is an error of type
    ``none_required`` at that key, which :func:`~pipelinekit.events.record_error` reports
    as an unknown field."""
    model = cls.__pydantic_core_schema__
    if model["type"] != "model" or model["schema"]["type"] != "model-fields":
        raise TypeError(f"{cls.__name__}: unexpected core schema {model['type']!r}")
    fields: dict[str, cs.TypedDictField] = {}
    for name, field in model["schema"]["fields"].items():
        inner = field["schema"]
        if inner["type"] == "default":
            if "default_factory" in inner:
                raise TypeError(f"{cls.__name__}.{name}: default factories are not supported")
            fields[name] = cs.typed_dict_field(inner["schema"], required=False)
        else:
            fields[name] = cs.typed_dict_field(inner, required=True)
    return cs.typed_dict_schema(
        fields, extra_behavior="allow", extras_schema=cs.none_schema(), config=config
    )


def _records_validator() -> SchemaValidator:
    """A list of records of any event type, under the event models' shared config."""
    configs = {
        tuple(
            sorted(
                (k, v)
                for k, v in (c.__pydantic_core_schema__.get("config") or {}).items()
                if k != "title"
            )
        )
        for c in EVENT_CLASSES
    }
    if len(configs) != 1:
        raise TypeError("the event classes must share one model config")
    config = CoreConfig(**dict(configs.pop()))  # type: ignore[typeddict-item]
    union = cs.tagged_union_schema(
        {cls.model_fields["type"].default: _record_schema(cls, config) for cls in EVENT_CLASSES},
        discriminator="type",
        custom_error_type=RECORD_TYPE_ERROR,
        custom_error_message="bad type",
    )
    # a typed dict's fields follow its own config, not the validator's
    return SchemaValidator(cs.list_schema(union), config)


_RECORDS = _records_validator()
_ROW_OF_TAG: dict[str, tuple[type[Row], tuple[str, ...], tuple[Any, ...]]] = {
    cls.model_fields["type"].default: (
        ROW_CLASSES[cls],
        tuple(cls.model_fields),
        tuple(f.default for f in cls.model_fields.values()),
    )
    for cls in EVENT_CLASSES
}


class RowMaker:
    """Turns event models into rows, sharing one fields-set per distinct set of fields.

    One maker per History build: the shared sets are never changed in place (pydantic
    copies a model's fields-set before adding to it), so sharing is unobservable.
    """

    __slots__ = ("_by_keys", "_shared")

    def __init__(self) -> None:
        self._shared: dict[frozenset[str], set[str]] = {}
        # a record's type and keys -> its fields-set (the keys its type has)
        self._by_keys: dict[tuple[str, frozenset[str]], set[str]] = {}

    def from_records(self, records: list[Any], context: dict[str, Any]) -> list[Row]:
        """Validate plain-dict records straight into rows (no event models on the way).

        Raises:
            pydantic.ValidationError: as validating them into events would, with the same
                errors at the same locations.
        """
        shared = self._shared
        by_keys = self._by_keys
        rows: list[Row] = []
        append = rows.append
        for fields in _RECORDS.validate_python(records, context=context):
            tag = fields["type"]
            row_cls, names, defaults = _ROW_OF_TAG[tag]
            key = (tag, frozenset(fields))
            common = by_keys.get(key)
            if common is None:  # (keys outside the model held a missing value: not given)
                named = key[1].intersection(names)
                common = by_keys[key] = shared.setdefault(named, set(named))
            append(_new(row_cls, (*map(fields.get, names, defaults), common)))
        return rows

    def __call__(self, event: BaseModel) -> Row:
        cls = type(event)
        try:
            row_cls = ROW_CLASSES[cls]
        except KeyError:
            raise TypeError(f"{cls.__name__} is not one of pipelinekit's event classes") from None
        own = event.__pydantic_fields_set__
        common = self._shared.setdefault(frozenset(own), own)
        return _new(row_cls, (*_VALUES[cls](event), common))


def row_of(event: BaseModel) -> Row:
    """The row of one event (its fields-set is the very set of the event)."""
    return RowMaker()(event)


def event_of(row: Row) -> Event:
    """The event model a row stands for (built without validating again: the values were
    validated when the row was made)."""
    cls, names = _EVENT_OF_ROW[type(row)]
    return cast(Event, trusted(cls, dict(zip(names, row, strict=False)), row[-1]))


def same_event(a: Row, b: Row) -> bool:
    """Whether two rows hold the same event (as ``==`` on the models: the fields-sets are
    not compared)."""
    return type(a) is type(b) and a[:-1] == b[:-1]
