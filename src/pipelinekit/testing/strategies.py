"""Hypothesis strategies for stage schemes, events, records and legal histories.

Every strategy takes keyword-only arguments named in the domain's words and checks them
when it is called: a bad argument raises :class:`hypothesis.errors.InvalidArgument`.
Everything is built from small integer choices and never filtered, so a failing example
shrinks to few stages, few opportunities and few events.

Example:
    >>> from hypothesis import given, settings
    >>> from pipelinekit.testing import stage_schemes
    >>> @settings(max_examples=20)
    ... @given(stage_schemes(max_stages=5, policies=("adjacent",)))
    ... def test_the_first_stage_is_open(scheme):
    ...     assert scheme.stages[0].is_open and scheme.transitions == "adjacent"
    >>> test_the_first_stage_is_open()
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import DuplicateEventError, RecordError, SchemeError, TransitionError
from pipelinekit.events import Event, event_from_record
from pipelinekit.history import History
from pipelinekit.stages import Stage, StageScheme, TransitionPolicy

__all__ = [
    "INVALID_RECORD_RULES",
    "InvalidRecords",
    "events",
    "histories",
    "history_records",
    "invalid_records",
    "records",
    "stage_schemes",
    "stages",
]

Record = dict[str, Any]
Rate = bool | float
WeightMode = Literal["monotone", "any", "none"]

_POLICIES: tuple[TransitionPolicy, ...] = ("forward", "adjacent", "any", "graph")
_OUTCOMES = ("open", "won", "lost")
_EVENT_TYPES = (
    "stage_changed",
    "amount_changed",
    "close_date_changed",
    "probability_set",
    "owner_changed",
    "activity_logged",
    "next_action_scheduled",
)
"""Record types after ``opened``; the first is the one a shrunk story prefers."""

_OPEN_WORDS = ("lead", "qualified", "discovery", "demo", "proposal", "negotiation", "commit")
_WON_WORDS = ("won", "ordered", "delivered", "invoiced", "paid")
_LOST_WORDS = ("lost", "no-decision", "disqualified")
_PEOPLE = ("ann", "bob", "chen", "dorota")
_ACTIVITIES = ("call", "meeting", "email", "demo")
_LOSS_REASONS = ("price", "timing", "competitor")
_DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_DEFAULT_RATE = 0.25

_KEYS = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,15}", fullmatch=True)
_SHORT_TEXT = st.text(max_size=24)


# -- argument checks ---------------------------------------------------------------------


def _check_count(name: str, value: object, *, at_least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < at_least:
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {at_least}")
    return value


def _check_bounds(name: str, value: object, *, at_least: int = 0) -> tuple[int, int]:
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise InvalidArgument(f"{name}={value!r} must be a (min, max) pair of integers")
    lo = _check_count(f"{name}[0]", value[0], at_least=at_least)
    hi = _check_count(f"{name}[1]", value[1], at_least=at_least)
    if hi < lo:
        raise InvalidArgument(f"{name}={value!r}: max {hi} is less than min {lo}")
    return lo, hi


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool):
        return _DEFAULT_RATE if value else 0.0
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgument(f"{name}={value!r} must be a boolean or a rate between 0 and 1")
    return float(value)


def _check_choices(name: str, value: object, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Collection) or not value:
        raise InvalidArgument(f"{name}={value!r} must be a non-empty collection of {allowed}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name}={value!r}: unknown {unknown}; expected some of {allowed}")
    return tuple(v for v in allowed if v in value)


def _check_locales(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidArgument(f"locales={value!r} must be a sequence of locale names")
    if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
        raise InvalidArgument(f"locales={value!r} must be distinct non-empty strings")
    return tuple(value)


def _check_scheme(value: object) -> StageScheme:
    if not isinstance(value, StageScheme):
        raise InvalidArgument(f"scheme must be a StageScheme, got {type(value).__name__}")
    return value


def _check_start(value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"start={value!r} must be a timezone-aware datetime")
    return value


def _check_span(value: object) -> int:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidArgument(f"span={value!r} must be a non-negative timedelta")
    return int(value.total_seconds())


def _check_currencies(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidArgument(f"currencies={value!r} must be a non-empty sequence of ISO codes")
    for code in value:
        if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isupper()):
            raise InvalidArgument(f"currencies={value!r}: {code!r} is not an ISO 4217 code")
    return tuple(value)


def _percent(hundredths: int) -> Decimal:
    return Decimal(hundredths) / 100


def _chance(draw: st.DrawFn, rate: float) -> bool:
    """True with roughly ``rate``; shrinks to False (the plain path)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    return draw(st.integers(0, 99)) >= 100 - round(rate * 100)


# -- stages and schemes ------------------------------------------------------------------


def stages(
    *,
    outcomes: Collection[str] = _OUTCOMES,
    weighted: bool | None = None,
    locales: Sequence[str] = (),
    keys: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Stage]:
    """Single valid :class:`~pipelinekit.Stage` values.

    Args:
        outcomes: which kinds of stage to draw: some of ``"open"``, ``"won"``, ``"lost"``.
        weighted: ``True`` always gives a weight (0-100, in hundredths), ``False`` never,
            ``None`` either.
        locales: every stage gets a label in each of these locales.
        keys: a strategy for the stage key (default: valid slugs).

    Example:
        >>> from hypothesis import given, settings
        >>> @settings(max_examples=20)
        ... @given(stages(outcomes=("won",), weighted=True, locales=("pl",)))
        ... def test_won_stage(stage):
        ...     assert stage.is_won and stage.weight is not None
        ...     assert dict(stage.labels).keys() == {"pl"}
        >>> test_won_stage()
    """
    chosen = _check_choices("outcomes", outcomes, _OUTCOMES)
    if weighted is not None and not isinstance(weighted, bool):
        raise InvalidArgument(f"weighted={weighted!r} must be True, False or None")
    locs = _check_locales(locales)
    key_strategy = _KEYS if keys is None else keys
    if not isinstance(key_strategy, st.SearchStrategy):
        raise InvalidArgument(f"keys={keys!r} must be a strategy of stage keys")

    @st.composite
    def build(draw: st.DrawFn) -> Stage:
        outcome = draw(st.sampled_from(chosen))
        has_weight = draw(st.booleans()) if weighted is None else weighted
        weight = _percent(draw(st.integers(0, 10_000))) if has_weight else None
        return Stage(
            key=draw(key_strategy),
            label=draw(st.text(min_size=1, max_size=24)),
            labels={loc: draw(st.text(min_size=1, max_size=24)) for loc in locs},
            description=draw(_SHORT_TEXT),
            weight=weight,
            outcome=None if outcome == "open" else outcome,
        )

    return build()


def stage_schemes(
    *,
    min_stages: int = 2,
    max_stages: int = 8,
    weights: WeightMode = "monotone",
    policies: Collection[str] = _POLICIES,
    reopen: bool | None = None,
    won_stages: tuple[int, int] = (1, 2),
    lost_stages: tuple[int, int] = (0, 2),
    locales: Sequence[str] = (),
) -> st.SearchStrategy[StageScheme]:
    """Valid :class:`~pipelinekit.StageScheme` values (they pass the scheme's own checks).

    Args:
        min_stages, max_stages: how many stages in all (open, won and lost).
        weights: ``"monotone"``: open stages weighted non-decreasingly along the funnel,
            won stages 100, lost stages 0 (a scheme :func:`check_scheme` finds no weight
            problem in); ``"any"``: every stage an arbitrary weight 0-100; ``"none"``: no
            weights at all.
        policies: the transition policies to draw from (``forward``, ``adjacent``, ``any``,
            ``graph``; graph schemes get random edges that keep every stage reachable).
        reopen: whether closed deals may be reopened; ``None`` draws either.
        won_stages, lost_stages: (min, max) numbers of won and of lost stages.
        locales: every stage gets a label in each of these locales.

    Stages come in funnel order: open stages first; closed stages are sometimes mixed in
    among them when the policy still leaves every stage reachable.

    Example:
        >>> from hypothesis import given, settings
        >>> @settings(max_examples=20)
        ... @given(stage_schemes(max_stages=4, won_stages=(1, 1), lost_stages=(1, 1)))
        ... def test_shape(scheme):
        ...     assert len(scheme.won_stages) == 1 and len(scheme.lost_stages) == 1
        ...     assert 3 <= len(scheme.stages) <= 4
        >>> test_shape()
    """
    lo = _check_count("min_stages", min_stages, at_least=2)
    hi = _check_count("max_stages", max_stages, at_least=2)
    if hi < lo:
        raise InvalidArgument(f"max_stages={hi} is less than min_stages={lo}")
    won_lo, won_hi = _check_bounds("won_stages", won_stages, at_least=1)
    lost_lo, lost_hi = _check_bounds("lost_stages", lost_stages)
    if 1 + won_lo + lost_lo > hi:
        raise InvalidArgument(
            f"max_stages={hi} leaves no room for one open stage, {won_lo} won and "
            f"{lost_lo} lost stages"
        )
    if weights not in ("monotone", "any", "none"):
        raise InvalidArgument(f"weights={weights!r} must be 'monotone', 'any' or 'none'")
    _check_choices("policies", policies, _POLICIES)
    chosen: tuple[TransitionPolicy, ...] = tuple(p for p in _POLICIES if p in policies)
    if reopen is not None and not isinstance(reopen, bool):
        raise InvalidArgument(f"reopen={reopen!r} must be True, False or None")
    locs = _check_locales(locales)

    @st.composite
    def build(draw: st.DrawFn) -> StageScheme:
        n_won = draw(st.integers(won_lo, min(won_hi, hi - 1 - lost_lo)))
        n_lost = draw(st.integers(lost_lo, min(lost_hi, hi - 1 - n_won)))
        n_open = draw(st.integers(max(1, lo - n_won - n_lost), hi - n_won - n_lost))
        roles = ["open"] * n_open + ["won"] * n_won + ["lost"] * n_lost
        stage_list = _draw_stages(draw, roles, weights, locs)
        policy = draw(st.sampled_from(chosen))
        allow_reopen = draw(st.booleans()) if reopen is None else reopen
        name = draw(st.one_of(st.just("generated"), st.text(min_size=1, max_size=24)))
        n = len(stage_list)
        # The canonical layout (open, won, lost) with a chain of edges is valid under
        # every policy; richer drawn shapes fall back to it rather than being filtered.
        chain = [(i, i + 1) for i in range(n_open + n_won - 1)]
        order = list(range(n))
        if draw(st.booleans()):
            order = [0, *draw(st.permutations(range(1, n)))]
        extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n))
        extra = [(i, j) for i, j in extra if i != j]
        drop_chain = draw(st.booleans())
        attempts = [(order, extra if drop_chain else chain + extra), (order, chain + extra)]
        attempts.append((list(range(n)), chain + extra))
        for layout, edge_ids in attempts:
            try:
                return _scheme(name, stage_list, layout, edge_ids, policy, allow_reopen, weights)
            except SchemeError:
                continue
        return _scheme(name, stage_list, list(range(n)), chain, policy, allow_reopen, weights)

    return build()


def _draw_stages(
    draw: st.DrawFn, roles: list[str], weights: WeightMode, locales: tuple[str, ...]
) -> list[Stage]:
    words = {"open": _OPEN_WORDS, "won": _WON_WORDS, "lost": _LOST_WORDS}
    open_weights: list[int] = []
    if weights == "monotone":
        n_open = roles.count("open")
        open_weights = sorted(
            draw(st.lists(st.integers(0, 10_000), min_size=n_open, max_size=n_open))
        )
    used: set[str] = set()
    result: list[Stage] = []
    for i, role in enumerate(roles):
        key = draw(st.sampled_from(words[role]))
        if key in used:
            key = f"{key}-{i}"
        used.add(key)
        title = key.replace("-", " ").capitalize()
        label = draw(st.one_of(st.just(title), st.text(min_size=1, max_size=24)))
        labels = {
            loc: draw(st.one_of(st.just(f"{title} ({loc})"), st.text(min_size=1, max_size=24)))
            for loc in locales
        }
        weight: Decimal | None = None
        if weights == "any":
            weight = _percent(draw(st.integers(0, 10_000)))
        elif weights == "monotone":
            fixed = {"open": None, "won": Decimal(100), "lost": Decimal(0)}[role]
            weight = _percent(open_weights.pop(0)) if fixed is None else fixed
        outcome = None if role == "open" else role
        result.append(Stage(key=key, label=label, labels=labels, weight=weight, outcome=outcome))
    return result


def _scheme(
    name: str,
    stage_list: list[Stage],
    layout: list[int],
    edge_ids: list[tuple[int, int]],
    policy: TransitionPolicy,
    reopen: bool,
    weights: WeightMode,
) -> StageScheme:
    keys = [s.key for s in stage_list]
    edges = sorted({(keys[i], keys[j]) for i, j in edge_ids}) if policy == "graph" else []
    ordered = [stage_list[i] for i in layout]
    if weights == "monotone":
        # open stages may have been moved around: rising weights follow the final order
        rising = iter(sorted(s.weight or Decimal(0) for s in ordered if s.is_open))
        ordered = [
            s.model_copy(update={"weight": next(rising)}) if s.is_open else s for s in ordered
        ]
    return StageScheme(
        name=name,
        stages=tuple(ordered),
        transitions=policy,
        edges=tuple(edges),
        reopen=reopen,
    )


# -- events and records ------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """The checked arguments shared by the event, record and history strategies."""

    scheme: StageScheme
    start: datetime
    span: int
    currencies: tuple[str, ...]
    types: tuple[str, ...]
    event_ids: bool
    actors: bool

    def instant(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)


def _frame(
    scheme: object,
    start: object,
    span: object,
    currencies: object,
    types: object,
    event_ids: object,
    actors: object,
    *,
    allowed_types: Sequence[str],
) -> _Frame:
    for name, flag in (("event_ids", event_ids), ("actors", actors)):
        if not isinstance(flag, bool):
            raise InvalidArgument(f"{name}={flag!r} must be True or False")
    chosen = allowed_types if types is None else _check_choices("types", types, allowed_types)
    return _Frame(
        scheme=_check_scheme(scheme),
        start=_check_start(start),
        span=_check_span(span),
        currencies=_check_currencies(currencies),
        types=tuple(chosen),
        event_ids=bool(event_ids),
        actors=bool(actors),
    )


def _maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    """Draw from ``strategy`` or ``None``; shrinks to ``None``."""
    return draw(st.one_of(st.none(), strategy))


_AMOUNTS = st.integers(0, 10**9).map(lambda cents: str(_percent(cents)))
_PROBABILITIES = st.integers(0, 100).map(str)


def _days(frame: _Frame) -> st.SearchStrategy[str]:
    """ISO dates from ``start`` to a few months after the span (close dates, due dates)."""
    first = frame.start.date()
    return st.integers(0, frame.span // 86_400 + 120).map(
        lambda n: (first + timedelta(days=n)).isoformat()
    )


def _body(draw: st.DrawFn, frame: _Frame, kind: str, currency: str | None) -> Record:
    """The type-specific fields of a non-stage record (``None`` means "leave out")."""
    if kind == "amount_changed":
        return {"amount": draw(_AMOUNTS), "currency": currency}
    if kind == "close_date_changed":
        return {"expected_close": _maybe(draw, _days(frame))}
    if kind == "probability_set":
        return {"probability": _maybe(draw, _PROBABILITIES)}
    if kind == "owner_changed":
        return {"owner": draw(st.sampled_from(_PEOPLE))}
    if kind == "activity_logged":
        return {"kind": draw(st.sampled_from(_ACTIVITIES)), "note": _maybe(draw, _SHORT_TEXT)}
    due = _maybe(draw, _days(frame))
    return {"due": due, "note": _maybe(draw, _SHORT_TEXT)}


def _opened_body(draw: st.DrawFn, frame: _Frame, stage: str) -> Record:
    amount = _maybe(draw, _AMOUNTS)
    return {
        "stage": stage,
        "amount": amount,
        "currency": None if amount is None else draw(st.sampled_from(frame.currencies)),
        "owner": _maybe(draw, st.sampled_from(_PEOPLE)),
        "account": _maybe(draw, st.sampled_from(("acme", "globex", "initech"))),
        "product": _maybe(draw, st.sampled_from(("basic", "pro"))),
        "source": _maybe(draw, st.sampled_from(("web", "referral", "event"))),
        "expected_close": _maybe(draw, _days(frame)),
        "probability": _maybe(draw, _PROBABILITIES),
        "name": _maybe(draw, _SHORT_TEXT),
    }


_NULLABLE_REQUIRED = frozenset({"expected_close", "probability", "due"})


def _record(
    kind: str,
    opportunity_id: str,
    at: datetime,
    body: Record,
    *,
    event_id: str | None,
    actor: str | None,
    explicit_nulls: bool,
) -> Record:
    record: Record = {"type": kind, "opportunity_id": opportunity_id, "at": at.isoformat()}
    record.update(body)
    record["event_id"] = event_id
    record["actor"] = actor
    if not explicit_nulls:
        required = _NULLABLE_REQUIRED if kind != "opened" else frozenset()
        record = {k: v for k, v in record.items() if v is not None or k in required}
    return record


def records(
    scheme: StageScheme,
    *,
    types: Collection[str] | None = None,
    opportunity_ids: Sequence[str] = ("o-1", "o-2", "o-3"),
    start: datetime = _DEFAULT_START,
    span: timedelta = timedelta(days=365),
    currencies: Sequence[str] = ("EUR",),
    event_ids: bool = True,
    actors: bool = True,
) -> st.SearchStrategy[Record]:
    """Single well-formed plain-dict records, one at a time (not checked in context).

    Each record validates on its own (its stage is one of the scheme's, its fields have
    the right types); optional fields are sometimes left out and sometimes given as
    ``null``. A list of them is usually *not* a legal history: use :func:`histories`.

    Args:
        scheme: the scheme whose stage keys ``opened`` and ``stage_changed`` records use.
        types: record types to draw (default: all eight).
        opportunity_ids: the ids to draw from.
        start, span: timestamps fall in ``[start, start + span]``.
        currencies: ISO codes amounts are drawn in.
        event_ids, actors: whether records may carry an ``event_id`` / an ``actor``.

    Example:
        >>> from hypothesis import given, settings
        >>> from pipelinekit import schemes
        >>> from pipelinekit.events import event_from_record
        >>> @settings(max_examples=30)
        ... @given(records(schemes.get("vtiger-lead-funnel"), types=("opened", "amount_changed")))
        ... def test_records_validate(record):
        ...     assert event_from_record(record).type in ("opened", "amount_changed")
        >>> test_records_validate()
    """
    frame = _frame(
        scheme, start, span, currencies, types, event_ids, actors,
        allowed_types=("opened", *_EVENT_TYPES),
    )  # fmt: skip
    if isinstance(opportunity_ids, str) or not opportunity_ids:
        raise InvalidArgument(f"opportunity_ids={opportunity_ids!r} must be a non-empty sequence")
    ids = tuple(opportunity_ids)

    @st.composite
    def build(draw: st.DrawFn) -> Record:
        kind = draw(st.sampled_from(frame.types))
        if kind in ("opened", "stage_changed"):
            stage = draw(st.sampled_from(frame.scheme.keys))
            if kind == "opened":
                body = _opened_body(draw, frame, stage)
            else:
                body = {"stage": stage, "reason": _maybe(draw, _SHORT_TEXT)}
        else:
            currency = _maybe(draw, st.sampled_from(frame.currencies))
            body = _body(draw, frame, kind, currency)
        event_id = _maybe(draw, st.text(min_size=1, max_size=12)) if frame.event_ids else None
        return _record(
            kind,
            draw(st.sampled_from(ids)),
            frame.instant(draw(st.integers(0, frame.span))),
            body,
            event_id=event_id,
            actor=_maybe(draw, st.sampled_from(_PEOPLE)) if frame.actors else None,
            explicit_nulls=draw(st.booleans()),
        )

    return build()


def events(
    scheme: StageScheme,
    *,
    types: Collection[str] | None = None,
    opportunity_ids: Sequence[str] = ("o-1", "o-2", "o-3"),
    start: datetime = _DEFAULT_START,
    span: timedelta = timedelta(days=365),
    currencies: Sequence[str] = ("EUR",),
    event_ids: bool = True,
    actors: bool = True,
) -> st.SearchStrategy[Event]:
    """Single event objects: :func:`records` validated with ``event_from_record``.

    Takes the same arguments as :func:`records`.

    Example:
        >>> from hypothesis import given, settings
        >>> from pipelinekit import schemes
        >>> from pipelinekit.events import event_from_record
        >>> @settings(max_examples=30)
        ... @given(events(schemes.get("salesforce")))
        ... def test_record_round_trip(event):
        ...     assert event_from_record(event.model_dump(mode="json")) == event
        >>> test_record_round_trip()
    """
    return records(
        scheme,
        types=types,
        opportunity_ids=opportunity_ids,
        start=start,
        span=span,
        currencies=currencies,
        event_ids=event_ids,
        actors=actors,
    ).map(event_from_record)


# -- legal histories ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Story:
    """The checked arguments of :func:`history_records`."""

    frame: _Frame
    min_opportunities: int
    max_opportunities: int
    max_events: int
    skip: float
    stall: float
    regress: float
    reopen: float
    lose: float
    duplicates: float


def _moves(scheme: StageScheme, current: str) -> dict[str, list[str]]:
    """The legal targets from ``current``, by kind of move, in funnel order."""
    here = scheme.index(current)
    source = scheme.stage(current)
    kinds: dict[str, list[str]] = {"forward": [], "regress": [], "lose": [], "reopen": []}
    for stage in scheme.stages:
        if stage.key == current or not scheme.can_move(current, stage.key):
            continue
        later = scheme.index(stage.key) > here
        if source.is_open:
            kind = "lose" if stage.is_lost else ("forward" if later else "regress")
        elif source.is_won and stage.is_won:
            kind = "forward" if later else "regress"
        else:
            kind = "reopen"
        kinds[kind].append(stage.key)
    return kinds


def _next_stage(draw: st.DrawFn, story: _Story, current: str) -> tuple[str, bool] | None:
    """A legal move from ``current`` (target, is-a-loss), or ``None`` if none is drawn."""
    moves = _moves(story.frame.scheme, current)
    for kind, rate in (("lose", story.lose), ("regress", story.regress)):
        if moves[kind] and _chance(draw, rate):
            return draw(st.sampled_from(moves[kind])), kind == "lose"
    if moves["reopen"] and _chance(draw, story.reopen):
        return draw(st.sampled_from(moves["reopen"])), False
    forward = moves["forward"]
    if not forward:
        return None
    if len(forward) > 1 and _chance(draw, story.skip):
        return draw(st.sampled_from(forward[1:])), False
    return forward[0], False


def _opportunity(draw: st.DrawFn, story: _Story, number: int) -> list[Record]:
    frame = story.frame
    scheme = frame.scheme
    oid = f"o-{number}"
    seconds = draw(st.integers(0, frame.span))
    short = max(frame.span // (4 * story.max_events), 0)
    stage = scheme.stages[0].key
    if _chance(draw, story.skip):
        stage = draw(st.sampled_from([s.key for s in scheme.open_stages]))
    body = _opened_body(draw, frame, stage)
    currency = body["currency"] or draw(st.sampled_from(frame.currencies))
    result: list[Record] = []

    def emit(kind: str, fields: Record) -> None:
        actor = draw(st.sampled_from((None, *_PEOPLE))) if frame.actors else None
        event_id = f"{oid}/{len(result)}" if frame.event_ids else None
        at = frame.instant(seconds)
        result.append(
            _record(kind, oid, at, fields, event_id=event_id, actor=actor, explicit_nulls=False)
        )

    emit("opened", body)
    kinds = frame.types
    for _ in range(draw(st.integers(0, story.max_events - 1))):
        remaining = frame.span - seconds
        longest = remaining if _chance(draw, story.stall) else min(short, remaining)
        seconds += draw(st.integers(0, longest))
        kind = kinds[draw(st.integers(0, len(kinds) - 1))]
        if kind == "stage_changed":
            move = _next_stage(draw, story, stage)
            if move is not None:
                stage, lost = move
                reason = _maybe(draw, st.sampled_from(_LOSS_REASONS)) if lost else None
                emit(kind, {"stage": stage, "reason": reason})
                continue
            others = [k for k in kinds if k != "stage_changed"]
            if not others:
                break
            kind = others[0]
        emit(kind, _body(draw, frame, kind, currency if body["amount"] is None else None))
    return result


def history_records(
    scheme: StageScheme,
    *,
    min_opportunities: int = 0,
    max_opportunities: int = 5,
    max_events: int = 8,
    start: datetime = _DEFAULT_START,
    span: timedelta = timedelta(days=365),
    currencies: Sequence[str] = ("EUR",),
    types: Collection[str] | None = None,
    skip: Rate = True,
    stall: Rate = True,
    regress: Rate = True,
    reopen: Rate = True,
    lose: Rate = True,
    duplicates: Rate = False,
    event_ids: bool = True,
    actors: bool = True,
) -> st.SearchStrategy[list[Record]]:
    """Lists of plain-dict records that form a legal history under ``scheme``.

    Works for any valid scheme, yours included: every stage move is chosen among the
    moves ``scheme.can_move`` allows. Records come in time order (ties keep each
    opportunity's order); strict :meth:`History.from_records` accepts them.

    Args:
        scheme: the stage scheme the history must be legal under.
        min_opportunities, max_opportunities: how many opportunities (ids ``o-1``, ``o-2``...).
        max_events: the most events per opportunity, its ``opened`` record included.
        start, span: every timestamp falls in ``[start, start + span]``.
        currencies: ISO codes; each opportunity keeps one currency for life.
        types: record types after ``opened`` (default: all seven); ``stage_changed`` is the
            one a shrunk example prefers.
        skip: chance that a forward move jumps past the nearest legal stage (and that a deal
            is opened at a later open stage than the first).
        stall: chance that the wait before an event runs up to the rest of the span instead
            of a short gap (the deals a stalled-deals report should find).
        regress: chance of a move back to an earlier stage, where the scheme allows one.
        reopen: chance of leaving a closed stage, where the scheme allows reopening.
        lose: chance that a move goes to a lost stage.
        duplicates: chance that a record is delivered twice (same ``event_id`` and
            content; needs ``event_ids``); ingestion counts the copy as a duplicate.
        event_ids: give every record a unique ``event_id``.
        actors: let records carry an ``actor``.

    Each rate is a boolean (``True`` means 0.25) or a number between 0 and 1. Rates are
    approximate (Hypothesis favours edge cases) and shrink towards the plain path: the
    nearest forward move, short gaps, no losses.

    Example:
        >>> from hypothesis import given, settings
        >>> from pipelinekit import History, schemes
        >>> scheme = schemes.get("salesforce")
        >>> @settings(max_examples=20, deadline=None)
        ... @given(history_records(scheme, lose=False, regress=False))
        ... def test_nothing_is_lost(recs):
        ...     history = History.from_records(recs, scheme=scheme)
        ...     assert history.end is None or not history.as_of(history.end).lost()
        >>> test_nothing_is_lost()
    """
    frame = _frame(
        scheme, start, span, currencies, types, event_ids, actors, allowed_types=_EVENT_TYPES
    )
    story = _Story(
        frame=frame,
        min_opportunities=_check_count("min_opportunities", min_opportunities),
        max_opportunities=_check_count("max_opportunities", max_opportunities),
        max_events=_check_count("max_events", max_events, at_least=1),
        skip=_check_rate("skip", skip),
        stall=_check_rate("stall", stall),
        regress=_check_rate("regress", regress),
        reopen=_check_rate("reopen", reopen),
        lose=_check_rate("lose", lose),
        duplicates=_check_rate("duplicates", duplicates),
    )
    if story.max_opportunities < story.min_opportunities:
        raise InvalidArgument(
            f"max_opportunities={max_opportunities} is less than "
            f"min_opportunities={min_opportunities}"
        )
    if story.duplicates and not frame.event_ids:
        raise InvalidArgument("duplicates need event_ids=True to be recognised as duplicates")

    @st.composite
    def build(draw: st.DrawFn) -> list[Record]:
        count = draw(st.integers(story.min_opportunities, story.max_opportunities))
        stories = [_opportunity(draw, story, n) for n in range(1, count + 1)]
        merged = sorted((rec for recs in stories for rec in recs), key=_at)
        result: list[Record] = []
        for rec in merged:
            result.append(rec)
            if _chance(draw, story.duplicates):
                result.append(dict(rec))
        return result

    return build()


def _at(record: Record) -> datetime:
    return datetime.fromisoformat(record["at"])


def histories(
    scheme: StageScheme,
    *,
    min_opportunities: int = 0,
    max_opportunities: int = 5,
    max_events: int = 8,
    start: datetime = _DEFAULT_START,
    span: timedelta = timedelta(days=365),
    currencies: Sequence[str] = ("EUR",),
    types: Collection[str] | None = None,
    skip: Rate = True,
    stall: Rate = True,
    regress: Rate = True,
    reopen: Rate = True,
    lose: Rate = True,
    duplicates: Rate = False,
    event_ids: bool = True,
    actors: bool = True,
) -> st.SearchStrategy[History]:
    """Legal :class:`~pipelinekit.History` values under ``scheme`` (any valid scheme).

    :func:`history_records` ingested in strict mode; takes the same arguments.

    Example:
        >>> from hypothesis import given, settings
        >>> from pipelinekit import schemes
        >>> @settings(max_examples=20, deadline=None)
        ... @given(histories(schemes.get("vtiger-lead-funnel"), min_opportunities=1))
        ... def test_not_empty(history):
        ...     assert len(history.opportunity_ids) >= 1
        >>> test_not_empty()
    """
    return history_records(
        scheme,
        min_opportunities=min_opportunities,
        max_opportunities=max_opportunities,
        max_events=max_events,
        start=start,
        span=span,
        currencies=currencies,
        types=types,
        skip=skip,
        stall=stall,
        regress=regress,
        reopen=reopen,
        lose=lose,
        duplicates=duplicates,
        event_ids=event_ids,
        actors=actors,
    ).map(lambda recs: History.from_records(recs, scheme=scheme))


# -- invalid records ---------------------------------------------------------------------


class InvalidRecords(BaseModel):
    """Records that ingestion must reject because of one bad record.

    Attributes:
        rule: the rule the bad record breaks (one of :data:`INVALID_RECORD_RULES`).
        records: a legal history's records with the bad one (and, for rules that only
            show in context, what it needs, e.g. an ``opened`` record) inserted.
        index: the position of the bad record in ``records``. Strict ingestion raises
            an error naming this index; lenient ingestion rejects exactly this record.
        error: the :class:`~pipelinekit.errors.RecordError` class strict ingestion raises.
        field: the field the error names (``None`` when the whole record is to blame).
    """

    model_config = ConfigDict(frozen=True)

    rule: str
    records: tuple[Any, ...]
    index: int
    error: type[RecordError]
    field: str | None

    @property
    def record(self) -> Any:
        """The bad record itself."""
        return self.records[self.index]


INVALID_RECORD_RULES: tuple[str, ...] = (
    "not-a-mapping",
    "unknown-type",
    "missing-type",
    "missing-field",
    "unknown-field",
    "wrong-type",
    "naive-timestamp",
    "negative-amount",
    "nan-amount",
    "infinite-amount",
    "huge-amount",
    "probability-out-of-range",
    "bad-currency",
    "bad-date",
    "empty-id",
    "too-long-id",
    "unknown-stage",
    "numeric-timestamp",
    "out-of-range-timestamp",
    "huge-integer",
    "deep-nesting",
    "empty-field-name",
    "not-opened",
    "already-opened",
    "illegal-move",
    "conflicting-event-id",
)
"""Every rule :func:`invalid_records` can break; the last four only show in context.

``huge-integer`` puts an integer too long for ``str()`` (5001 digits) in a field,
``deep-nesting`` a list nested 2000 deep: an importer that prints or converts the bad
value naively crashes on them (``ValueError``, ``RecursionError``) instead of reporting it.
"""

_REQUIRED = {
    "opened": ("opportunity_id", "at", "stage"),
    "stage_changed": ("opportunity_id", "at", "stage"),
    "amount_changed": ("opportunity_id", "at", "amount"),
    "close_date_changed": ("opportunity_id", "at", "expected_close"),
    "owner_changed": ("opportunity_id", "at", "owner"),
    "activity_logged": ("opportunity_id", "at", "kind"),
}


def _illegal_moves(scheme: StageScheme) -> list[tuple[str, str]]:
    return [(a, b) for a in scheme.keys for b in scheme.keys if not scheme.can_move(a, b)]


def invalid_records(
    scheme: StageScheme, *, rules: Collection[str] | None = None, max_opportunities: int = 3
) -> st.SearchStrategy[InvalidRecords]:
    """Legal records with one bad record inserted, labelled with the rule it breaks.

    For testing your own import code: feed ``case.records`` to it and check that it
    reports ``case.index``. Rules that cannot be broken under ``scheme`` (an illegal move
    when every move is legal) are never drawn.

    Args:
        scheme: the scheme the records are meant for.
        rules: the rules to draw from (default: every one of :data:`INVALID_RECORD_RULES`).
        max_opportunities: the size of the legal history around the bad record.

    Example:
        >>> import pytest
        >>> from hypothesis import given, settings
        >>> from pipelinekit import History, schemes
        >>> scheme = schemes.get("salesforce")
        >>> @settings(max_examples=30, deadline=None)
        ... @given(invalid_records(scheme))
        ... def test_strict_ingestion_names_the_bad_record(case):
        ...     with pytest.raises(case.error) as info:
        ...         History.from_records(case.records, scheme=scheme)
        ...     assert info.value.index == case.index
        >>> test_strict_ingestion_names_the_bad_record()
    """
    checked = _check_scheme(scheme)
    chosen = (
        INVALID_RECORD_RULES
        if rules is None
        else _check_choices("rules", rules, INVALID_RECORD_RULES)
    )
    illegal = _illegal_moves(checked)
    possible = tuple(r for r in chosen if r != "illegal-move" or illegal)
    if not possible:
        raise InvalidArgument(f"rules={rules!r}: none can be broken under scheme {checked.name!r}")
    base = history_records(
        checked, min_opportunities=1, max_opportunities=max_opportunities, max_events=4
    )

    @st.composite
    def build(draw: st.DrawFn) -> InvalidRecords:
        rule = draw(st.sampled_from(possible))
        recs = draw(base)
        return _break(draw, checked, rule, recs, illegal)

    return build()


def _break(
    draw: st.DrawFn,
    scheme: StageScheme,
    rule: str,
    recs: list[Record],
    illegal: list[tuple[str, str]],
) -> InvalidRecords:
    first = recs[0]
    at = first["at"]
    oid = first["opportunity_id"]
    fresh = "x-new"
    stage = scheme.stages[0].key

    def insert(
        bad: Any, error: type[RecordError], field: str | None, *, after: int = 0
    ) -> InvalidRecords:
        """Put ``bad`` into ``recs`` (as it is when called) at a drawn position >= after."""
        pos = draw(st.integers(after, len(recs)))
        return InvalidRecords(
            rule=rule, records=(*recs[:pos], bad, *recs[pos:]), index=pos, error=error, field=field
        )

    activity: Record = {"type": "activity_logged", "opportunity_id": oid, "at": at, "kind": "call"}
    if rule == "not-a-mapping":
        return insert(draw(st.sampled_from(["opened", 42, None, ["opened"]])), RecordError, None)
    if rule == "unknown-type":
        kind = draw(st.sampled_from(["won", "deleted", "Opened", ""]))
        return insert({**activity, "type": kind}, RecordError, "type")
    if rule == "missing-type":
        return insert({k: v for k, v in activity.items() if k != "type"}, RecordError, "type")
    if rule == "missing-field":
        kind = draw(st.sampled_from(sorted(_REQUIRED)))
        full: Record = {
            "opportunity_id": oid, "at": at, "stage": stage, "amount": "1", "owner": "ann",
            "kind": "call", "expected_close": None,
        }  # fmt: skip
        field = draw(st.sampled_from(_REQUIRED[kind]))
        bad = {"type": kind, **{k: full[k] for k in _REQUIRED[kind] if k != field}}
        return insert(bad, RecordError, field)
    if rule == "unknown-field":
        return insert({**activity, "amout": "100"}, RecordError, "amout")
    if rule == "wrong-type":
        field = draw(st.sampled_from(["opportunity_id", "at", "kind", "note"]))
        value = draw(st.sampled_from([[], {"x": 1}, True]))
        return insert({**activity, field: value}, RecordError, field)
    if rule == "naive-timestamp":
        naive = datetime.fromisoformat(at).replace(tzinfo=None).isoformat()
        return insert({**activity, "at": naive}, RecordError, "at")
    amount_rules = {
        "negative-amount": st.sampled_from(["-1", -0.01, "-1000000"]),
        "nan-amount": st.sampled_from(["NaN", float("nan"), "sNaN"]),
        "infinite-amount": st.sampled_from(["Infinity", float("inf"), "-inf"]),
        "huge-amount": st.sampled_from(["1e16", 10**20, "1" + "0" * 40]),
    }
    if rule in amount_rules:
        bad = {"type": "amount_changed", "opportunity_id": oid, "at": at}
        return insert({**bad, "amount": draw(amount_rules[rule])}, RecordError, "amount")
    if rule == "probability-out-of-range":
        value = draw(st.sampled_from(["101", -1, "1000"]))
        bad = {"type": "probability_set", "opportunity_id": oid, "at": at, "probability": value}
        return insert(bad, RecordError, "probability")
    if rule == "bad-currency":
        code = draw(st.sampled_from(["eur", "EURO", "€", ""]))
        bad = {"type": "amount_changed", "opportunity_id": oid, "at": at, "amount": "1"}
        return insert({**bad, "currency": code}, RecordError, "currency")
    if rule == "bad-date":
        value = draw(st.sampled_from(["2024-13-01", "2024-02-30", "next week"]))
        bad = {"type": "close_date_changed", "opportunity_id": oid, "at": at}
        return insert({**bad, "expected_close": value}, RecordError, "expected_close")
    if rule == "empty-id":
        return insert({**activity, "opportunity_id": ""}, RecordError, "opportunity_id")
    if rule == "too-long-id":
        return insert({**activity, "opportunity_id": "o" * 257}, RecordError, "opportunity_id")
    if rule == "unknown-stage":
        unknown = "no-such-stage"
        while scheme.has_stage(unknown):
            unknown += "-x"
        kind = draw(st.sampled_from(["opened", "stage_changed"]))
        bad = {"type": kind, "opportunity_id": oid if kind != "opened" else fresh, "at": at}
        return insert({**bad, "stage": unknown}, RecordError, "stage", after=1)
    if rule == "numeric-timestamp":
        value = draw(st.sampled_from([0, 1704067200, 1704067200.5, "1704067200", "20240105"]))
        return insert({**activity, "at": value}, RecordError, "at")
    if rule == "out-of-range-timestamp":
        value = draw(
            st.sampled_from(
                ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
            )
        )
        return insert({**activity, "at": value}, RecordError, "at")
    if rule == "huge-integer":
        field = draw(st.sampled_from(["opportunity_id", "kind", "note", "actor", "amount"]))
        return insert({**activity, field: 10**5000}, RecordError, field)
    if rule == "deep-nesting":
        field = draw(st.sampled_from(["note", "colour"]))
        deep: list[Any] = []
        for _ in range(2000):
            deep = [deep]
        return insert({**activity, field: deep}, RecordError, field)
    if rule == "empty-field-name":
        return insert({**activity, "": "x"}, RecordError, "")
    if rule == "not-opened":
        bad = {"type": "stage_changed", "opportunity_id": fresh, "at": at, "stage": stage}
        return insert(bad, TransitionError, "opportunity_id")
    if rule == "already-opened":
        bad = {"type": "opened", "opportunity_id": oid, "at": at, "stage": stage}
        return insert(bad, TransitionError, "type", after=1)
    if rule == "conflicting-event-id":
        original = {**first, "event_id": "shared-id"}
        recs = [original, *recs[1:]]
        return insert(
            {**activity, "event_id": "shared-id"}, DuplicateEventError, "event_id", after=1
        )
    # illegal-move: a fresh deal opened at one stage, then moved where the scheme forbids.
    src, dst = draw(st.sampled_from(illegal))
    opened = {"type": "opened", "opportunity_id": fresh, "at": at, "stage": src}
    pos = draw(st.integers(0, len(recs)))
    recs = [*recs[:pos], opened, *recs[pos:]]
    bad = {"type": "stage_changed", "opportunity_id": fresh, "at": at, "stage": dst}
    return insert(bad, TransitionError, "stage", after=pos + 1)
