"""Opportunities and the state machine that applies events to them.

An :class:`Opportunity` is one potential contract's state at an instant (every new potential
contract with the same customer is a new opportunity). :func:`apply` is the
state machine: a pure function of (state, event, scheme) that returns the next state or
raises :class:`~pipelinekit.errors.TransitionError` for a move the scheme forbids.

Example:
    >>> from pipelinekit import apply, schemes
    >>> from pipelinekit.events import Opened, StageChanged
    >>> scheme = schemes.get("salesforce")
    >>> opp = apply(None, Opened(opportunity_id="o-1", at="2024-01-05T10:00:00Z",
    ...     stage="prospecting", amount="1000", currency="USD"), scheme)
    >>> opp = apply(opp, StageChanged(opportunity_id="o-1", at="2024-02-01T10:00:00Z",
    ...     stage="negotiation-review"), scheme)
    >>> opp.stage, opp.probability, opp.weighted_amount
    ('negotiation-review', Decimal('90'), Decimal('900'))
    >>> [v.stage for v in opp.path]
    ['prospecting', 'negotiation-review']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

from pydantic import BaseModel, ConfigDict

from pipelinekit._rows import ROW_CLASSES
from pipelinekit._rows import trusted as _trusted
from pipelinekit.errors import RecordError, TransitionError
from pipelinekit.events import (
    ActivityLogged,
    AmountChanged,
    CloseDateChanged,
    Event,
    NextActionScheduled,
    Opened,
    OwnerChanged,
    ProbabilitySet,
    StageChanged,
)
from pipelinekit.money import percent_of
from pipelinekit.stages import Outcome, Stage, StageScheme

__all__ = ["Activity", "NextAction", "Opportunity", "StageVisit", "apply", "reached_stages"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _all_fields(cls: type[BaseModel]) -> set[str]:
    if cls.__pydantic_post_init__ is not None or cls.__private_attributes__:
        # _trusted skips model_post_init and private attributes; it must not be used then
        raise TypeError(f"{cls.__name__} cannot be built by _trusted")
    return set(cls.__pydantic_fields__)


class StageVisit(BaseModel):
    """One stay in a stage: when it was entered and, once left, when it was left."""

    model_config = _FROZEN

    stage: str
    entered_at: datetime
    exited_at: datetime | None = None


class Activity(BaseModel):
    """An activity done on the opportunity (the parts of a sales process)."""

    model_config = _FROZEN

    at: datetime
    kind: str
    note: str | None = None
    actor: str | None = None


class NextAction(BaseModel):
    """The next thing to do and when (its "action date")."""

    model_config = _FROZEN

    due: date
    note: str | None = None
    scheduled_at: datetime
    actor: str | None = None


class Opportunity(BaseModel):
    """The state of one opportunity at an instant.

    Attributes:
        id: the opportunity's id.
        stage: the current stage key; ``stage_entered_at`` is when it was entered.
        stage_weight: the current stage's weight (``None`` if the scheme has none).
        outcome: ``None`` while open, else ``"won"`` or ``"lost"``.
        stage_reason: the reason given with the latest stage change (e.g. a loss reason).
        amount, currency: the contract's value (``Decimal``) and ISO currency.
        expected_close: the expected close date, if known.
        probability_override: a per-deal probability that replaces the stage weight.
        owner, account, product, source, name: descriptive fields.
        next_action: the next scheduled action, if any.
        activities: activities logged, oldest first.
        path: every stage visit, oldest first (re-entries included).
        opened_at, opened_by: when and by whom the opportunity was opened.
        closed_at, closed_by: when and by whom it was closed (``None`` while open).
        last_event_at: when the latest event about it happened.

    Example:
        >>> from pipelinekit import History, schemes
        >>> h = History.from_records([{"type": "opened", "opportunity_id": "o-1",
        ...     "at": "2024-01-05T10:00:00Z", "stage": "qualification", "amount": "5000",
        ...     "currency": "USD", "probability": "25"}], scheme=schemes.get("salesforce"))
        >>> opp = h.as_of("2024-02-01T00:00:00Z")["o-1"]
        >>> opp.stage_weight, opp.probability, opp.weighted_amount, opp.is_open
        (Decimal('10'), Decimal('25'), Decimal('1250'), True)
    """

    model_config = _FROZEN

    id: str
    stage: str
    stage_entered_at: datetime
    stage_weight: Decimal | None = None
    outcome: Outcome | None = None
    stage_reason: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    expected_close: date | None = None
    probability_override: Decimal | None = None
    owner: str | None = None
    account: str | None = None
    product: str | None = None
    source: str | None = None
    name: str | None = None
    next_action: NextAction | None = None
    activities: tuple[Activity, ...] = ()
    path: tuple[StageVisit, ...] = ()
    opened_at: datetime
    opened_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    last_event_at: datetime

    @property
    def probability(self) -> Decimal | None:
        """The override if set, else the stage's weight (a percentage, or ``None``)."""
        if self.probability_override is not None:
            return self.probability_override
        return self.stage_weight

    @property
    def weighted_amount(self) -> Decimal | None:
        """amount x probability / 100 (exact), or ``None`` when either is unknown."""
        probability = self.probability
        if self.amount is None or probability is None:
            return None
        return percent_of(self.amount, probability)

    @property
    def is_open(self) -> bool:
        """True while neither won nor lost."""
        return self.outcome is None

    @property
    def is_won(self) -> bool:
        """True when the current stage is a won stage."""
        return self.outcome is Outcome.WON

    @property
    def is_lost(self) -> bool:
        """True when the current stage is a lost stage."""
        return self.outcome is Outcome.LOST


_VISIT_FIELDS = _all_fields(StageVisit)
_ACTIVITY_FIELDS = _all_fields(Activity)
_NEXT_ACTION_FIELDS = _all_fields(NextAction)
_OPPORTUNITY_FIELDS = _all_fields(Opportunity)
_OPPORTUNITY_ORDER = tuple(Opportunity.__pydantic_fields__)
_opportunity_values = attrgetter(*_OPPORTUNITY_ORDER)


class _Draft:
    """Mutable working state used while folding events; frozen into an Opportunity."""

    __slots__ = (
        "account",
        "activities",
        "amount",
        "closed_at",
        "closed_by",
        "currency",
        "expected_close",
        "id",
        "last_event_at",
        "name",
        "next_action",
        "opened_at",
        "opened_by",
        "outcome",
        "owner",
        "path",
        "probability_override",
        "product",
        "source",
        "stage",
        "stage_entered_at",
        "stage_reason",
        "stage_weight",
    )

    id: str
    stage: str
    stage_entered_at: datetime
    stage_weight: Decimal | None
    outcome: Outcome | None
    stage_reason: str | None
    amount: Decimal | None
    currency: str | None
    expected_close: date | None
    probability_override: Decimal | None
    owner: str | None
    account: str | None
    product: str | None
    source: str | None
    name: str | None
    next_action: NextAction | None
    activities: list[tuple[datetime, str, str | None, str | None]]  # at, kind, note, actor
    path: list[tuple[str, datetime, datetime | None]]
    opened_at: datetime
    opened_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    last_event_at: datetime

    @classmethod
    def opened(cls, event: Opened, scheme: StageScheme) -> _Draft:
        stage = _known_stage(scheme, event)
        d = cls()
        d.id = event.opportunity_id
        d.stage = event.stage
        d.stage_entered_at = event.at
        d.stage_weight = stage.weight
        d.outcome = stage.outcome
        d.stage_reason = None
        d.amount = event.amount
        d.currency = event.currency
        d.expected_close = event.expected_close
        d.probability_override = event.probability
        d.owner = event.owner
        d.account = event.account
        d.product = event.product
        d.source = event.source
        d.name = event.name
        d.next_action = None
        d.activities = []
        d.path = [(event.stage, event.at, None)]
        d.opened_at = event.at
        d.opened_by = event.actor
        d.closed_at = None if stage.outcome is None else event.at
        d.closed_by = None if stage.outcome is None else event.actor
        d.last_event_at = event.at
        return d

    @classmethod
    def thaw(cls, opp: Opportunity) -> _Draft:
        d = cls()
        for name in cls.__slots__:
            setattr(d, name, getattr(opp, name))
        d.activities = [(a.at, a.kind, a.note, a.actor) for a in opp.activities]
        d.path = [(v.stage, v.entered_at, v.exited_at) for v in opp.path]
        return d

    def freeze(self) -> Opportunity:
        values = dict(zip(_OPPORTUNITY_ORDER, _opportunity_values(self), strict=True))
        values["activities"] = tuple(
            _trusted(Activity, {"at": t, "kind": k, "note": n, "actor": a}, _ACTIVITY_FIELDS)
            for t, k, n, a in self.activities
        )
        values["path"] = tuple(
            _trusted(StageVisit, {"stage": s, "entered_at": e, "exited_at": x}, _VISIT_FIELDS)
            for s, e, x in self.path
        )
        return _trusted(Opportunity, values, _OPPORTUNITY_FIELDS)

    def apply(self, event: Event, scheme: StageScheme) -> None:
        if event.at < self.last_event_at:
            raise RecordError(
                f"event at {event.at.isoformat()} is earlier than the opportunity's latest "
                f"event at {self.last_event_at.isoformat()}; apply events in time order",
                event_id=event.event_id,
                opportunity_id=event.opportunity_id,
                field="at",
            )
        _APPLY[type(event)](self, event, scheme)
        self.last_event_at = event.at

    def _reopened(self, event: Event, scheme: StageScheme) -> None:
        raise TransitionError(
            f"opportunity {self.id!r} was already opened at {self.opened_at.isoformat()}; "
            "a second 'opened' record is not allowed (a new contract is a new opportunity)",
            rule="already-opened",
            from_stage=self.stage,
            to_stage=getattr(event, "stage", None),
            event_id=event.event_id,
            opportunity_id=event.opportunity_id,
            field="type",
        )

    def _stage_changed(self, event: StageChanged, scheme: StageScheme) -> None:
        target = _known_stage(scheme, event)
        if event.stage == self.stage:
            if event.reason is not None:
                self.stage_reason = event.reason
            return
        rule = scheme.move_rule(self.stage, event.stage)
        if rule is not None:
            raise TransitionError(
                _move_message(self.stage, event.stage, rule, scheme),
                rule=rule,
                from_stage=self.stage,
                to_stage=event.stage,
                event_id=event.event_id,
                opportunity_id=event.opportunity_id,
            )
        left, entered, _ = self.path[-1]
        self.path[-1] = (left, entered, event.at)
        self.path.append((event.stage, event.at, None))
        was = self.outcome
        self.stage = event.stage
        self.stage_entered_at = event.at
        self.stage_weight = target.weight
        self.stage_reason = event.reason
        self.outcome = target.outcome
        if target.outcome is None:
            self.closed_at = self.closed_by = None
        elif target.outcome is not was:
            self.closed_at = event.at
            self.closed_by = event.actor

    def _amount_changed(self, event: AmountChanged, scheme: StageScheme) -> None:
        self.amount = event.amount
        if event.currency is not None:
            self.currency = event.currency

    def _close_date_changed(self, event: CloseDateChanged, scheme: StageScheme) -> None:
        self.expected_close = event.expected_close

    def _probability_set(self, event: ProbabilitySet, scheme: StageScheme) -> None:
        self.probability_override = event.probability

    def _owner_changed(self, event: OwnerChanged, scheme: StageScheme) -> None:
        self.owner = event.owner

    def _activity_logged(self, event: ActivityLogged, scheme: StageScheme) -> None:
        # kept as a tuple (a quarter of an Activity model's memory) until frozen
        self.activities.append((event.at, event.kind, event.note, event.actor))

    def _next_action_scheduled(self, event: NextActionScheduled, scheme: StageScheme) -> None:
        if event.due is None:
            self.next_action = None
        else:
            self.next_action = _trusted(
                NextAction,
                {
                    "due": event.due,
                    "note": event.note,
                    "scheduled_at": event.at,
                    "actor": event.actor,
                },
                _NEXT_ACTION_FIELDS,
            )


_APPLY: dict[type, Callable[..., None]] = {
    Opened: _Draft._reopened,
    StageChanged: _Draft._stage_changed,
    AmountChanged: _Draft._amount_changed,
    CloseDateChanged: _Draft._close_date_changed,
    ProbabilitySet: _Draft._probability_set,
    OwnerChanged: _Draft._owner_changed,
    ActivityLogged: _Draft._activity_logged,
    NextActionScheduled: _Draft._next_action_scheduled,
}
# a History's rows (pipelinekit._rows) have their events' attributes: same methods
_APPLY.update({ROW_CLASSES[cls]: method for cls, method in list(_APPLY.items())})
_OPENS = (Opened, ROW_CLASSES[Opened])


def _known_stage(scheme: StageScheme, event: Opened | StageChanged) -> Stage:
    if not scheme.has_stage(event.stage):
        raise RecordError(
            scheme.unknown_stage(event.stage),
            event_id=event.event_id,
            opportunity_id=event.opportunity_id,
            field="stage",
        )
    return scheme.stage(event.stage)


def _move_message(src: str, dst: str, rule: str, scheme: StageScheme) -> str:
    why = {
        "reopen": f"{src!r} is closed and scheme {scheme.name!r} does not allow reopening",
        "forward": "the 'forward' policy only moves to later stages (or to a lost stage)",
        "adjacent": "the 'adjacent' policy only moves to the next stage (or to a lost stage)",
        "graph": "the scheme's graph has no such edge",
    }[rule]
    return f"illegal move {src!r} -> {dst!r}: {why}"


def _not_opened(event: Event) -> TransitionError:
    return TransitionError(
        f"opportunity {event.opportunity_id!r} has no 'opened' record at or before "
        f"{event.at.isoformat()}; open it before recording {event.type!r}",
        rule="not-opened",
        to_stage=getattr(event, "stage", None),
        event_id=event.event_id,
        opportunity_id=event.opportunity_id,
        field="opportunity_id",
    )


def apply(opportunity: Opportunity | None, event: Event, scheme: StageScheme) -> Opportunity:
    """Apply one event to an opportunity's state and return the new state.

    A pure function: ``opportunity`` is not changed. Pass ``None`` for an opportunity that
    does not exist yet (the event must then be ``opened``).

    Raises:
        TransitionError: the move is illegal under ``scheme`` (the error names the
            opportunity, the from- and to-stage and the rule), the opportunity was never
            opened, or it is opened twice.
        RecordError: the event names an unknown stage or is older than the state.
    """
    if opportunity is None:
        if not isinstance(event, Opened):
            raise _not_opened(event)
        return _Draft.opened(event, scheme).freeze()
    if event.opportunity_id != opportunity.id:
        raise RecordError(
            f"event is about {event.opportunity_id!r}, not {opportunity.id!r}",
            event_id=event.event_id,
            opportunity_id=event.opportunity_id,
            field="opportunity_id",
        )
    draft = _Draft.thaw(opportunity)
    draft.apply(event, scheme)
    return draft.freeze()


def step(states: dict[str, _Draft], event: Event, scheme: StageScheme) -> None:
    """Apply ``event`` to the working state of its opportunity in ``states``, in place.

    The one replay step that :class:`~pipelinekit.History` folds over its events, which
    it keeps as rows (:mod:`pipelinekit._rows`): a row has its event's attributes, so the
    state machine reads both alike (History passes its rows typed as events).
    """
    oid = event.opportunity_id
    draft = states.get(oid)
    if draft is None:
        states[oid] = begin(event, scheme)
    else:
        draft.apply(event, scheme)


def begin(event: Event, scheme: StageScheme) -> _Draft:
    """The working state an opportunity's first event creates (it must be ``opened``)."""
    if not isinstance(event, _OPENS):
        raise _not_opened(event)
    return _Draft.opened(event, scheme)


def fold(events: Iterable[Event], scheme: StageScheme) -> dict[str, _Draft]:
    """Replay ``events`` (ordered and known to be legal) into working states."""
    states: dict[str, _Draft] = {}
    for event in events:
        step(states, event, scheme)
    return states


def reached_stages(opportunity: Opportunity, scheme: StageScheme) -> tuple[str, ...]:
    """The open stages ``opportunity`` reached, in funnel order (the shared *reached*).

    It reached an open stage if it entered it or any later open stage in funnel order
    (skipping counts as passing through); a deal that is won, or ever entered a won stage,
    reached every open stage. Lost stages never count as "later". Reports and forecasts
    that speak of reaching a stage all use this one definition.

    Example:
        >>> import pipelinekit as pk
        >>> recs = [{"type": "opened", "opportunity_id": "a", "at": "2024-01-02T00:00:00Z",
        ...          "stage": "prospecting"},
        ...         {"type": "stage_changed", "opportunity_id": "a",
        ...          "at": "2024-01-03T00:00:00Z", "stage": "needs-analysis"},
        ...         {"type": "stage_changed", "opportunity_id": "a",
        ...          "at": "2024-01-04T00:00:00Z", "stage": "closed-lost"}]
        >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
        >>> reached_stages(h.as_of("2024-02-01T00:00:00Z")["a"], h.scheme)
        ('prospecting', 'qualification', 'needs-analysis')
    """
    open_keys = tuple(s.key for s in scheme.open_stages)
    if opportunity.is_won or any(scheme.stage(v.stage).is_won for v in opportunity.path):
        return open_keys
    entered = {v.stage for v in opportunity.path}
    furthest = -1
    for i, key in enumerate(open_keys):
        if key in entered:
            furthest = i
    return open_keys[: furthest + 1]
