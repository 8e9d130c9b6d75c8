"""Stages and stage schemes: the steps of a sales process and the moves between them.

A :class:`Stage` carries a weight (the percentage of an opportunity's amount counted in a
weighted forecast) and an outcome (none for an open stage, ``won`` or ``lost`` for a
closed one). A :class:`StageScheme` orders stages in funnel order and says which moves are
legal. Schemes are validated once, when they are built: every problem is reported in one
:class:`~pipelinekit.errors.SchemeError` before any event arrives.

Example:
    >>> from pipelinekit import StageScheme
    >>> scheme = StageScheme.model_validate({
    ...     "name": "simple",
    ...     "stages": [
    ...         {"key": "lead", "label": "Lead", "weight": "10"},
    ...         {"key": "offer", "label": "Offer", "weight": "50"},
    ...         {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
    ...         {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
    ...     ],
    ... })
    >>> scheme.keys
    ('lead', 'offer', 'won', 'lost')
    >>> scheme.can_move("offer", "lead")   # forward policy: no going back
    False
    >>> scheme.can_move("lead", "won")     # skipping stages is allowed
    True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from difflib import get_close_matches
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipelinekit.errors import ArgumentError, SchemeError

__all__ = ["Outcome", "Stage", "StageScheme", "TransitionPolicy"]


class Outcome(StrEnum):
    """The result a closed stage stands for."""

    WON = "won"
    LOST = "lost"


TransitionPolicy = Literal["forward", "adjacent", "any", "graph"]
"""Which moves between stages are legal.

- ``forward``: to any later stage in funnel order (stages may be skipped).
- ``adjacent``: only to the next stage in funnel order.
- ``any``: to any stage.
- ``graph``: only along the scheme's explicit ``edges``.

Under every policy an open opportunity may move to a lost stage, and a closed one moves on
only through later won stages unless the scheme allows ``reopen``.
"""


def _labels_in(value: object) -> object:
    """Labels as sorted ``(locale, label)`` pairs, from a mapping or a list of pairs; a
    locale given twice, or anything but text, is an error (never silently dropped)."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 for p in value
    ):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise PydanticCustomError(
            "labels",
            "expected a mapping of locale to label (e.g. 'pl' to 'Oferta') or a "
            "list of [locale, label] pairs, got {given}",
            {"given": _brief(value)},
        )
    seen: set[str] = set()
    for locale, text in pairs:
        if not isinstance(locale, str) or not isinstance(text, str):
            raise PydanticCustomError(
                "labels",
                "a locale and its label must both be text, got {locale} and {text}",
                {"locale": _brief(locale), "text": _brief(text)},
            )
        if locale in seen:
            raise PydanticCustomError(
                "labels", "locale {locale} is given more than once", {"locale": repr(locale)}
            )
        seen.add(locale)
    return tuple(sorted(pairs))


def _labels_out(value: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(value)


def _brief(value: object) -> str:
    text = repr(value) if isinstance(value, str | int | float | None) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


Labels = Annotated[
    tuple[tuple[str, str], ...],
    BeforeValidator(_labels_in),
    PlainSerializer(_labels_out),
    WithJsonSchema(
        {"type": "object", "additionalProperties": {"type": "string"}, "title": "Labels"}
    ),
]
"""Per-locale labels: a ``{"pl": "Oferta", "en": "Offer"}`` mapping in JSON (a list of
``["pl", "Oferta"]`` pairs is accepted too), frozen inside as pairs sorted by locale."""


def _edges_in(value: object) -> object:
    """A ``{"from": ["to", ...]}`` mapping as ``(from, to)`` pairs; other shapes are left to
    the field's own validation."""
    if not isinstance(value, Mapping):
        return value
    edges: list[tuple[str, str]] = []
    for src, targets in value.items():
        if not isinstance(src, str):
            raise PydanticCustomError(
                "edges", "a stage key must be text, got {src}", {"src": _brief(src)}
            )
        if not isinstance(targets, list | tuple) or not all(isinstance(t, str) for t in targets):
            raise PydanticCustomError(
                "edges",
                "the moves from {src} must be a list of stage keys, got {targets}",
                {"src": repr(src), "targets": _brief(targets)},
            )
        edges.extend((src, dst) for dst in targets)
    return tuple(edges)


Edges = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_edges_in)]
"""Explicit moves ``(from, to)``; a ``{"from": ["to", ...]}`` mapping is accepted too."""

Weight = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]


@contextmanager
def _as_scheme_error(data: object) -> Iterator[None]:
    """Turn pydantic's ValidationError of a scheme or stage into one SchemeError."""
    try:
        yield
    except ValidationError as exc:
        raise _scheme_error(exc, data) from None


class _SchemeModel(BaseModel):
    """Base of Stage and StageScheme: any validation failure becomes a SchemeError."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        with _as_scheme_error(data):
            super().__init__(**data)

    # Tell pydantic this __init__ only wraps its own: validation (model_validate, nested
    # models) then never routes through it, so options such as ``strict`` and ``context``
    # passed to model_validate are honoured instead of being dropped.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: Literal["allow", "ignore", "forbid"] | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        with _as_scheme_error(obj):
            return super().model_validate(
                obj,
                strict=strict,
                extra=extra,
                from_attributes=from_attributes,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: Literal["allow", "ignore", "forbid"] | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        with _as_scheme_error(None):
            return super().model_validate_json(
                json_data,
                strict=strict,
                extra=extra,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )


def _describe_loc(loc: tuple[int | str, ...], data: object) -> str:
    """Name a location like ``stage 'offer' (stages[3]), field 'weight'``."""
    if len(loc) >= 2 and loc[0] == "stages" and isinstance(loc[1], int):
        key = None
        if isinstance(data, Mapping):
            stages = data.get("stages")
            if isinstance(stages, list | tuple) and loc[1] < len(stages):
                raw = stages[loc[1]]
                key = raw.get("key") if isinstance(raw, Mapping) else getattr(raw, "key", None)
        head = f"stages[{loc[1]}]" if key is None else f"stage {key!r} (stages[{loc[1]}])"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{head}, field {rest!r}" if rest else head
    return "field " + repr(".".join(str(p) for p in loc)) if loc else ""


def _scheme_error(exc: ValidationError, data: object) -> SchemeError:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        if err["type"] == "scheme_invalid":
            problems.extend(ctx["problems"])
            continue
        where = _describe_loc(tuple(err["loc"]), data)
        problems.append(f"{where}: {err['msg']}" if where else err["msg"])
    name = data.get("name") if isinstance(data, Mapping) else None
    return SchemeError(problems, scheme=name if isinstance(name, str) else None)


class Stage(_SchemeModel):
    """One step of the sales process.

    Attributes:
        key: a slug that names the stage in events and reports (``"negotiation"``).
        label: the name people read.
        labels: optional labels per locale, e.g. ``{"pl": "Negocjacje"}``.
        description: what happens at this stage.
        weight: the percentage (0-100) of an opportunity's amount counted in a weighted
            forecast ("procentowy udział" in Polish); ``None`` when the scheme has no
            percentages — opportunities are still counted per stage.
        outcome: ``None`` for an open stage, ``"won"`` or ``"lost"`` for a closed one.

    Example:
        >>> s = Stage(key="offer", label="Offer", labels={"pl": "Oferta"}, weight="15")
        >>> s.weight, s.is_open, s.label_for("pl"), s.label_for("de")
        (Decimal('15'), True, 'Oferta', 'Offer')
    """

    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    label: str = Field(min_length=1)
    labels: Labels = ()
    description: str = ""
    weight: Weight | None = None
    outcome: Outcome | None = None

    @property
    def is_open(self) -> bool:
        """True for a stage that is neither won nor lost."""
        return self.outcome is None

    @property
    def is_won(self) -> bool:
        """True for a won stage."""
        return self.outcome is Outcome.WON

    @property
    def is_lost(self) -> bool:
        """True for a lost stage."""
        return self.outcome is Outcome.LOST

    def label_for(self, locale: str) -> str:
        """The label in ``locale``, falling back to :attr:`label`."""
        for loc, text in self.labels:
            if loc == locale:
                return text
        return self.label


class StageScheme(_SchemeModel):
    """Stages in funnel order plus the rules for moving between them.

    Attributes:
        name: the scheme's name.
        stages: the stages in funnel order; the first one is where the funnel starts.
        transitions: the :data:`TransitionPolicy` (``forward`` by default).
        edges: the legal moves when ``transitions == "graph"``.
        reopen: whether a closed (won or lost) opportunity may move back to another stage.
        description: free text.

    A scheme is checked when built; these are errors (all reported at once): no stages,
    duplicate keys, a weight outside 0-100, no open stage, no won stage, a first stage that
    is closed, edges naming unknown stages or given without the ``graph`` policy, stages
    unreachable from the first stage, and open stages from which no won stage can be
    reached.

    Example:
        >>> from pipelinekit import schemes
        >>> scheme = schemes.get("salesforce")
        >>> [s.key for s in scheme.open_stages][:3]
        ['prospecting', 'qualification', 'needs-analysis']
        >>> scheme.stage("closed-won").weight
        Decimal('100')
    """

    name: str = Field(min_length=1)
    stages: tuple[Stage, ...]
    transitions: TransitionPolicy = "forward"
    edges: Edges = ()
    reopen: bool = False
    description: str = ""

    _index: dict[str, int] = PrivateAttr(default_factory=dict)
    _moves: frozenset[tuple[str, str]] = PrivateAttr(default_factory=frozenset)
    _names: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[str] = []
        index: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            if stage.key in index:
                problems.append(
                    f"duplicate stage key {stage.key!r} at stages[{index[stage.key]}] "
                    f"and stages[{i}]"
                )
            else:
                index[stage.key] = i
        if not self.stages:
            problems.append("the scheme has no stages; give at least one open and one won stage")
        elif not any(s.is_open for s in self.stages):
            problems.append("no open stage: at least one stage must have no outcome")
        elif not self.stages[0].is_open:
            problems.append(
                f"the first stage {self.stages[0].key!r} is closed; the funnel must start "
                "at an open stage"
            )
        if self.stages and not any(s.is_won for s in self.stages):
            problems.append("no won stage: at least one stage must have outcome 'won'")
        if self.edges and self.transitions != "graph":
            problems.append(
                f"edges are given but transitions is {self.transitions!r}; "
                "edges are only used with transitions='graph'"
            )
        for src, dst in self.edges:
            for end in (src, dst):
                if end not in index:
                    problems.append(f"edge {src!r} -> {dst!r} names unknown stage {end!r}")
        if problems:
            raise PydanticCustomError("scheme_invalid", "invalid scheme", {"problems": problems})

        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_names", _names_of(self.stages))
        moves = frozenset(_legal_moves(self.stages, self.transitions, self.edges, self.reopen))
        object.__setattr__(self, "_moves", moves)
        problems.extend(self._check_graph())
        if problems:
            raise PydanticCustomError("scheme_invalid", "invalid scheme", {"problems": problems})
        return self

    def _check_graph(self) -> list[str]:
        problems: list[str] = []
        first = self.stages[0].key
        reachable = _reachable(first, self._moves)
        for stage in self.stages:
            if stage.key not in reachable:
                problems.append(
                    f"stage {stage.key!r} is unreachable from the first stage {first!r} "
                    f"under the {self.transitions!r} policy"
                )
        won = {s.key for s in self.stages if s.is_won}
        for stage in self.stages:
            if stage.is_open and not (_reachable(stage.key, self._moves) & won):
                problems.append(
                    f"open stage {stage.key!r} is a dead end: no won stage can be reached "
                    f"from it under the {self.transitions!r} policy"
                )
        return problems

    def replace(self, **changes: Any) -> StageScheme:
        """A validated copy with some fields changed (``model_copy`` would skip the checks).

        Example:
            >>> from pipelinekit import schemes
            >>> loose = schemes.get("salesforce").replace(transitions="any", reopen=True)
            >>> loose.can_move("closed-lost", "prospecting"), loose.name
            (True, 'salesforce')

        Raises:
            SchemeError: the changed scheme is invalid.
        """
        return StageScheme.model_validate({**self.model_dump(), **changes})

    def to_records(self) -> list[dict[str, Any]]:
        """One row per stage in funnel order: key, label, weight, outcome, description.

        Example:
            >>> from pipelinekit import schemes
            >>> schemes.get("salesforce").to_records()[0]["key"]
            'prospecting'
        """
        return [
            {
                "key": s.key,
                "label": s.label,
                "weight": s.weight,
                "outcome": None if s.outcome is None else s.outcome.value,
                "description": s.description,
                **{f"label_{loc}": text for loc, text in s.labels},
            }
            for s in self.stages
        ]

    def _repr_html_(self) -> str:
        from pipelinekit.results import html_table

        moves = f"transitions={self.transitions}, reopen={self.reopen}"
        return html_table(self.to_records(), title=f"Stage scheme {self.name!r} ({moves})")

    # -- lookups -------------------------------------------------------------------------

    @property
    def keys(self) -> tuple[str, ...]:
        """Stage keys in funnel order."""
        return tuple(s.key for s in self.stages)

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """Open stages in funnel order."""
        return tuple(s for s in self.stages if s.is_open)

    @property
    def won_stages(self) -> tuple[Stage, ...]:
        """Won stages in funnel order."""
        return tuple(s for s in self.stages if s.is_won)

    @property
    def lost_stages(self) -> tuple[Stage, ...]:
        """Lost stages in funnel order."""
        return tuple(s for s in self.stages if s.is_lost)

    @property
    def has_weights(self) -> bool:
        """True when every open stage has a weight, so weighted figures can be computed."""
        return all(s.weight is not None for s in self.stages if s.is_open)

    def has_stage(self, key: str) -> bool:
        """True if ``key`` names a stage of this scheme."""
        return key in self._index

    def index(self, key: str) -> int:
        """Position of stage ``key`` in funnel order.

        Raises:
            ArgumentError: ``key`` is not a stage of this scheme.
        """
        try:
            return self._index[key]
        except KeyError:
            raise self._unknown(key) from None

    def stage(self, key: str) -> Stage:
        """The stage named ``key``.

        Raises:
            ArgumentError: ``key`` is not a stage of this scheme.
        """
        return self.stages[self.index(key)]

    def key_for(self, label: str) -> str:
        """The key of the stage called ``label``: its key, its label or its label in any
        locale, compared case-insensitively and with runs of spaces as one.

        This is how a CRM's stage names (``"Negotiation/Review"``, ``"Negocjacje"``) become
        keys.

        Raises:
            ArgumentError: no stage is called ``label`` (the message suggests the closest
                one), or two stages are.

        Example:
            >>> from pipelinekit import schemes
            >>> s = schemes.get("salesforce")
            >>> s.key_for("Negotiation/Review"), s.key_for("closed  WON"), s.key_for("prospecting")
            ('negotiation-review', 'closed-won', 'prospecting')
            >>> try:
            ...     s.key_for("Negotiation")
            ... except ArgumentError as err:
            ...     print(err)
            argument 'label': no stage of scheme 'salesforce' is called 'Negotiation';
            did you mean 'negotiation-review'?
        """
        if not isinstance(label, str):
            raise ArgumentError("label", f"expected a stage label, got {type(label).__name__}")
        if label in self._index:
            return label
        keys = self._names.get(_name(label), frozenset())
        if len(keys) == 1:
            return next(iter(keys))
        if keys:
            raise ArgumentError(
                "label", f"{label!r} names several stages of scheme {self.name!r}: {sorted(keys)}"
            )
        hint = self.suggest(label)
        raise ArgumentError(
            "label",
            f"no stage of scheme {self.name!r} is called {label!r}"
            + (f"; did you mean {hint!r}?" if hint else f"; its stages are {list(self.keys)}"),
        )

    def suggest(self, text: str) -> str | None:
        """The stage key ``text`` most likely means, or ``None``: the stage whose key or
        label (in any locale) it is, ignoring case, else the closest key or label by
        spelling.

        Example:
            >>> from pipelinekit import schemes
            >>> s = schemes.get("salesforce")
            >>> s.suggest("Negotiation/Review"), s.suggest("negotation-review"), s.suggest("xyz")
            ('negotiation-review', 'negotiation-review', None)
        """
        if not isinstance(text, str):
            return None
        keys = self._names.get(_name(text))
        if keys is not None:
            return min(keys, key=self._index.__getitem__)
        close = get_close_matches(_name(text), self._names, n=1, cutoff=0.6)
        if not close:
            return None
        return min(self._names[close[0]], key=self._index.__getitem__)

    def _unknown(self, key: str) -> ArgumentError:
        return ArgumentError("stage", self.unknown_stage(key))

    def unknown_stage(self, key: str) -> str:
        """The message for a stage key this scheme does not have: which key was meant,
        when one is likely (:meth:`suggest`), and the keys it has.

        Example:
            >>> from pipelinekit import schemes
            >>> print(schemes.get("suitecrm").unknown_stage("Closed Won"))  # doctest: +ELLIPSIS
            unknown stage key 'Closed Won' (did you mean 'closed-won'?); scheme 'suitecrm' has [...]
        """
        hint = self.suggest(key)
        meant = f" (did you mean {hint!r}?)" if hint is not None else ""
        return f"unknown stage key {key!r}{meant}; scheme {self.name!r} has {list(self.keys)}"

    def can_move(self, from_stage: str, to_stage: str) -> bool:
        """True if an opportunity at ``from_stage`` may move to ``to_stage``.

        Staying at the same stage is always allowed (it changes nothing).

        Raises:
            ArgumentError: either key is not a stage of this scheme.
        """
        self.index(from_stage)
        self.index(to_stage)
        return from_stage == to_stage or (from_stage, to_stage) in self._moves

    def move_rule(self, from_stage: str, to_stage: str) -> str | None:
        """The name of the rule a move breaks, or ``None`` if the move is legal.

        Rules: ``"reopen"`` (leaving a closed stage while the scheme forbids reopening),
        or the policy's name (``"forward"``, ``"adjacent"``, ``"graph"``).

        Example:
            >>> from pipelinekit import schemes
            >>> s = schemes.get("salesforce")
            >>> s.move_rule("negotiation-review", "prospecting")
            'forward'
            >>> s.move_rule("closed-lost", "prospecting")
            'reopen'
            >>> s.move_rule("prospecting", "closed-lost") is None
            True
        """
        if from_stage == to_stage or (from_stage, to_stage) in self._moves:
            return None
        if not self.stage(from_stage).is_open:
            target = self.stage(to_stage)
            if not (self.stage(from_stage).is_won and target.is_won) and not self.reopen:
                return "reopen"
        self.index(to_stage)
        return self.transitions


def _name(text: str) -> str:
    """A stage name as :meth:`StageScheme.key_for` compares it."""
    return " ".join(text.casefold().split())


def _names_of(stages: tuple[Stage, ...]) -> dict[str, frozenset[str]]:
    """Every stage's key and labels (:func:`_name`), each with the keys it names."""
    names: dict[str, set[str]] = {}
    for stage in stages:
        for text in (stage.key, stage.label, *(label for _, label in stage.labels)):
            names.setdefault(_name(text), set()).add(stage.key)
    return {name: frozenset(keys) for name, keys in names.items()}


def _policy_allows(
    i: int, j: int, keys: tuple[str, ...], policy: TransitionPolicy, edges: frozenset[Any]
) -> bool:
    if policy == "forward":
        return j > i
    if policy == "adjacent":
        return j == i + 1
    if policy == "any":
        return True
    return (keys[i], keys[j]) in edges


def _legal_moves(
    stages: tuple[Stage, ...],
    policy: TransitionPolicy,
    edges: tuple[tuple[str, str], ...],
    reopen: bool,
) -> Iterable[tuple[str, str]]:
    keys = tuple(s.key for s in stages)
    edge_set = frozenset(edges)
    for i, src in enumerate(stages):
        for j, dst in enumerate(stages):
            if i == j:
                continue
            if src.is_open:
                ok = dst.is_lost or _policy_allows(i, j, keys, policy, edge_set)
            elif reopen:
                ok = True
            else:
                ok = src.is_won and dst.is_won and _policy_allows(i, j, keys, policy, edge_set)
            if ok:
                yield src.key, dst.key


def _reachable(start: str, moves: frozenset[tuple[str, str]]) -> set[str]:
    successors: dict[str, list[str]] = {}
    for src, dst in moves:
        successors.setdefault(src, []).append(dst)
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in successors.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
