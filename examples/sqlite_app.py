"""A small app that keeps stage-history events in SQLite and serves reports over HTTP.

pipelinekit does no I/O; this file is the app around it: the standard library's ``sqlite3``
holds the stage schemes and the events, and ``http.server`` answers on loopback::

    python examples/sqlite_app.py --db pipeline.db --port 0 --demo

prints the URL it listens on (``--port 0`` picks a free port; ``--demo`` stores the
``salesforce`` preset and a demo history into an empty database), then serves

- ``GET  /pipeline?scheme=...&as_of=...``: the pipeline by stage (``PipelineByStage`` rows);
- ``GET  /forecast?scheme=...&as_of=...&period=month&horizon=3``: ``WeightedForecast`` rows;
- ``POST /events?scheme=...&mode=lenient``: a JSON list of records; answers one outcome per
  record (applied, duplicate, or rejected with reason and field);
- ``POST /schemes``: a stage scheme as JSON config.

Money travels as decimal strings in JSON. Bad input is an HTTP 400 whose JSON body carries the
typed error's message and its structured fields (``argument``; ``index``, ``field``,
``event_id``, ``opportunity_id``; a scheme's ``problems``). Ctrl-C (or SIGTERM) stops it.

The schema (see :data:`SCHEMA`), and why it looks like this:

- ``schemes(name, config)``: each scheme as the JSON config it round-trips through
  (``StageScheme.model_dump_json``), keyed by its name.
- ``events``: real columns only for what every record has and SQL needs: ``event_id``
  (unique per scheme, so a retried upload cannot store a fact twice), ``opportunity_id``
  (indexed: an append loads only the stored history of the opportunities it touches),
  ``type``, ``at`` (the ISO text the event serialises to, offset kept) and ``actor``. The
  type-specific fields (stage, amount, currency, owner, expected close, probability...) live
  in one JSON ``data`` column, not fifteen nullable columns, because (1) SQLite has no
  decimal type: a column declared NUMERIC/DECIMAL converts ``"12000.10"`` to a binary float,
  while a JSON string keeps the ``Decimal`` exact; (2) the app never filters on those fields
  in SQL: the library is the validator and every read goes through ``History``, so the columns
  would only duplicate the record format, and a new field needs no migration; (3)
  ``json_extract(data, '$.amount')`` still reaches them for ad-hoc SQL. ``seq`` is the arrival
  order: ``History`` keeps input order for events at the same instant, so loading by ``seq``
  rebuilds exactly the history that was validated.

Only legal events are ever stored: :func:`append_records` replays the new records together
with the stored history of the opportunities they touch (``History.from_records`` in lenient
mode) before inserting, inside one write transaction.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict

import pipelinekit as pk
from pipelinekit.errors import (
    ArgumentError,
    DuplicateEventError,
    PipelineError,
    RecordError,
    SchemeError,
    TransitionError,
)
from pipelinekit.events import Event, event_from_record
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.pipeline_by_stage import PipelineByStage

__all__ = [
    "SCHEMA",
    "AppServer",
    "AppendReport",
    "RecordOutcome",
    "append_records",
    "connect",
    "create_schema",
    "forecast",
    "load_history",
    "load_scheme",
    "main",
    "pipeline_report",
    "save_scheme",
    "to_json",
]

log = logging.getLogger("pipelinekit.sqlite_app")

SCHEMA = """
CREATE TABLE IF NOT EXISTS schemes (
    name    TEXT PRIMARY KEY,
    config  TEXT NOT NULL CHECK (json_valid(config))      -- StageScheme JSON
);
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY,                  -- arrival order (ties in `at`)
    scheme          TEXT NOT NULL REFERENCES schemes (name),
    event_id        TEXT,                                 -- optional; NULLs never collide
    opportunity_id  TEXT NOT NULL,
    type            TEXT NOT NULL,
    at              TEXT NOT NULL,                        -- ISO 8601, offset kept
    actor           TEXT,
    data            TEXT NOT NULL CHECK (json_valid(data)), -- the type's fields; money as text
    UNIQUE (scheme, event_id)
);
CREATE INDEX IF NOT EXISTS events_by_opportunity ON events (scheme, opportunity_id);
"""

_COLUMNS = ("type", "opportunity_id", "at", "event_id", "actor")
Mode = Literal["strict", "lenient"]
Status = Literal["applied", "duplicate", "rejected"]


# -- the database --------------------------------------------------------------------------


def connect(path: str = ":memory:") -> sqlite3.Connection:
    """Open (and if needed create) the database at ``path`` (a file or ``":memory:"``).

    The connection is in autocommit mode (writes take explicit transactions) and may be used
    from the server's threads; :class:`AppServer` serialises access with a lock.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    create_schema(conn)
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if they do not exist (idempotent)."""
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(SCHEMA)


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken before reading, so validate-then-insert is atomic."""
    if conn.in_transaction:
        raise ArgumentError("conn", "is inside an open transaction; commit or roll back first")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _stored_names(conn: sqlite3.Connection) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM schemes ORDER BY name")]


def load_scheme(conn: sqlite3.Connection, name: str | None = None) -> pk.StageScheme:
    """The stored scheme ``name``; ``None`` means the only one stored.

    Raises:
        ArgumentError: (``scheme``) no such scheme, or ``None`` with several or none stored.
    """
    if name is None:
        names = _stored_names(conn)
        if len(names) != 1:
            raise ArgumentError(
                "scheme", f"name the scheme: {len(names)} are stored ({', '.join(names)})"
            )
        name = names[0]
    row = conn.execute("SELECT config FROM schemes WHERE name = ?", (name,)).fetchone()
    if row is None:
        stored = ", ".join(map(repr, _stored_names(conn))) or "none"
        raise ArgumentError("scheme", f"no stored scheme named {name!r} (stored: {stored})")
    return pk.StageScheme.model_validate_json(row[0])


def save_scheme(conn: sqlite3.Connection, scheme_json: str | bytes) -> pk.StageScheme:
    """Validate a stage scheme given as JSON config and store it under its name.

    Replacing a stored scheme is allowed only if every event already stored under that name
    is still legal under the new one.

    Raises:
        SchemeError: the config is not a valid scheme. ``str(err)`` is a message to show a
            person: one line per problem, all of them at once (``err.problems``).
    """
    scheme = pk.StageScheme.model_validate_json(scheme_json)
    with _write(conn):
        exists = conn.execute("SELECT 1 FROM schemes WHERE name = ?", (scheme.name,)).fetchone()
        if exists:
            stored = _records(conn, scheme.name)
            check = pk.History.from_records(stored, scheme=scheme, mode="lenient")
            if check.ingest.rejected:
                problems = [
                    f"stored event {r.index} is illegal under the new scheme: {r.error}"
                    for r in check.ingest.rejected[:10]
                ]
                if len(check.ingest.rejected) > 10:
                    problems.append(f"... and {len(check.ingest.rejected) - 10} more")
                raise SchemeError(problems, scheme=scheme.name)
        conn.execute(
            "INSERT INTO schemes (name, config) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET config = excluded.config",
            (scheme.name, scheme.model_dump_json()),
        )
    return scheme


def _row_record(row: Sequence[Any]) -> dict[str, Any]:
    """A stored row back to its record (the wire format ``History.from_records`` takes)."""
    type_, opportunity_id, at, event_id, actor, data = row
    record: dict[str, Any] = {"type": type_, "opportunity_id": opportunity_id, "at": at}
    if event_id is not None:
        record["event_id"] = event_id
    if actor is not None:
        record["actor"] = actor
    record.update(json.loads(data))
    return record


def _event_row(event: Event) -> tuple[Any, ...]:
    """An event as its column values; ``data`` keeps the type's fields (nulls only if required)."""
    dumped = event.model_dump(mode="json")
    fields = type(event).model_fields
    data = {
        k: v
        for k, v in dumped.items()
        if k not in _COLUMNS and (v is not None or fields[k].is_required())
    }
    return (
        dumped["event_id"],
        dumped["opportunity_id"],
        dumped["type"],
        dumped["at"],
        dumped["actor"],
        json.dumps(data, separators=(",", ":")),
    )


_SELECT = "SELECT type, opportunity_id, at, event_id, actor, data FROM events"


def _records(conn: sqlite3.Connection, scheme: str) -> list[dict[str, Any]]:
    rows = conn.execute(f"{_SELECT} WHERE scheme = ? ORDER BY seq", (scheme,))
    return [_row_record(r) for r in rows]


def _ids(records: Iterable[object], key: str) -> str:
    """The distinct ``key`` values of the records, as a JSON array for ``json_each``."""
    found = {
        str(r[key]) for r in records if isinstance(r, Mapping) and r.get(key) not in (None, "")
    }
    return json.dumps(sorted(found))


def _scope(conn: sqlite3.Connection, scheme: str, batch: list[Any]) -> list[dict[str, Any]]:
    """The stored history a batch is judged with: every stored event of the opportunities it
    names, and of those whose stored events reuse one of its ``event_id``s.

    Replay is per opportunity, so the rest of the database cannot change any outcome.
    """
    rows = conn.execute(
        f"""{_SELECT} WHERE scheme = :scheme AND (
               opportunity_id IN (SELECT value FROM json_each(:opps))
               OR opportunity_id IN (
                   SELECT opportunity_id FROM events
                   WHERE scheme = :scheme AND event_id IN (SELECT value FROM json_each(:eids))))
            ORDER BY seq""",
        {"scheme": scheme, "opps": _ids(batch, "opportunity_id"), "eids": _ids(batch, "event_id")},
    )
    return [_row_record(r) for r in rows]


def load_history(conn: sqlite3.Connection, scheme_name: str | None = None) -> pk.History:
    """Every stored event of a scheme as a :class:`~pipelinekit.History` (checked strictly)."""
    scheme = load_scheme(conn, scheme_name)
    return pk.History.from_records(_records(conn, scheme.name), scheme=scheme)


# -- appending records ---------------------------------------------------------------------


class RecordOutcome(BaseModel):
    """What happened to one record of a batch (``index`` is its position in the batch)."""

    model_config = ConfigDict(frozen=True)

    index: int
    status: Status
    event_id: str | None = None
    opportunity_id: str | None = None
    field: str | None = None
    reason: str | None = None


class AppendReport(BaseModel):
    """One outcome per record, in input order: every record is accounted for."""

    model_config = ConfigDict(frozen=True)

    scheme: str
    outcomes: tuple[RecordOutcome, ...]

    def count(self, status: Status) -> int:
        """How many records ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    def summary(self) -> dict[str, int]:
        """Counts per status and the total."""
        counts = {s: self.count(s) for s in ("applied", "duplicate", "rejected")}
        return {"total": len(self.outcomes), **counts}


def _id(record: object, key: str) -> str | None:
    value = record.get(key) if isinstance(record, Mapping) else None
    return None if value is None or isinstance(value, bool) else str(value)


def _rejected(index: int, record: object, error: RecordError) -> RecordOutcome:
    return RecordOutcome(
        index=index,
        status="rejected",
        event_id=error.event_id or _id(record, "event_id"),
        opportunity_id=error.opportunity_id or _id(record, "opportunity_id"),
        field=error.field,
        reason=error.reason,
    )


def _in_batch_terms(
    error: RecordError, index: int, stored: list[dict[str, Any]], batch: list[Any]
) -> RecordError:
    """The error located at the record's batch ``index``; a reused ``event_id`` is explained
    by what first used it (a stored event or an earlier record of the batch), since the
    library's message counts positions in the combined input, which the caller never saw."""
    if not isinstance(error, DuplicateEventError):
        return error.located(index=index)
    eid = error.event_id
    holder = next((r for r in stored if r.get("event_id") == eid), None)
    if holder is not None:
        where = f"a stored event of opportunity {holder['opportunity_id']!r}"
    else:
        first = next(j for j, r in enumerate(batch) if _id(r, "event_id") == eid)
        where = f"record {first} of this batch"
    return DuplicateEventError(
        f"event_id {eid!r} is already used by {where} with different content; an event_id "
        "must identify one fact",
        index=index,
        event_id=eid,
        opportunity_id=error.opportunity_id,
        field="event_id",
    )


def _duplicate(index: int, record: object, first: int | None) -> RecordOutcome:
    where = "a stored event" if first is None else f"record {first} of this batch"
    return RecordOutcome(
        index=index,
        status="duplicate",
        event_id=_id(record, "event_id"),
        opportunity_id=_id(record, "opportunity_id"),
        field="event_id",
        reason=f"repeats {where} with the same event_id and content; not stored again",
    )


def _applied(index: int, event: Event) -> RecordOutcome:
    return RecordOutcome(
        index=index,
        status="applied",
        event_id=event.event_id,
        opportunity_id=event.opportunity_id,
    )


def _judge(
    scheme: pk.StageScheme, stored: list[dict[str, Any]], batch: list[Any]
) -> tuple[list[RecordOutcome], dict[int, Event]]:
    """Decide every record of ``batch`` against the ``stored`` history; return the outcomes
    and the events to insert (by batch index).

    One lenient replay of stored + batch decides everything, unless a new record dated before
    stored events makes one of them illegal (a late ``closed-won`` before a stored move, say).
    Then the opportunities concerned are re-judged record by record in time order, and a
    record that would invalidate events already kept is rejected instead: stored events are
    never dropped.
    """
    n = len(stored)
    combined = pk.History.from_records([*stored, *batch], scheme=scheme, mode="lenient")
    ingest = combined.ingest
    outcomes: dict[int, RecordOutcome] = {}
    for rej in ingest.rejected:
        if rej.index >= n:
            i = rej.index - n
            outcomes[i] = _rejected(i, batch[i], _in_batch_terms(rej.error, i, stored, batch))
    for dup in ingest.duplicates:
        i = dup.index - n
        outcomes[i] = _duplicate(i, batch[i], None if dup.first_index < n else dup.first_index - n)
    events: dict[int, Event] = {}
    for i, record in enumerate(batch):
        if i not in outcomes:
            events[i] = event_from_record(record)
            outcomes[i] = _applied(i, events[i])

    conflicted = {str(r.record["opportunity_id"]) for r in ingest.rejected if r.index < n}
    if conflicted:
        _rejudge(scheme, stored, batch, conflicted, outcomes, events)
    return [outcomes[i] for i in range(len(batch))], events


def _rejudge(
    scheme: pk.StageScheme,
    stored: list[dict[str, Any]],
    batch: list[Any],
    conflicted: set[str],
    outcomes: dict[int, RecordOutcome],
    events: dict[int, Event],
) -> None:
    """Re-decide, one at a time, the records of opportunities whose stored events the batch
    would have invalidated (in time order, so a batch's own opened-then-moved still works)."""
    suspects: list[tuple[datetime, int]] = []
    for i, record in enumerate(batch):
        try:
            event = events.get(i) or event_from_record(record)
        except RecordError:
            continue  # malformed: rejected whatever the state, the outcome stands
        if event.opportunity_id in conflicted:
            suspects.append((event.at, i))
            events.pop(i, None)
    kept = [*stored, *(batch[i] for i in sorted(events))]
    origin: list[int | None] = [None] * len(stored) + sorted(events)
    for _, i in sorted(suspects):
        m = len(kept)
        trial = pk.History.from_records([*kept, batch[i]], scheme=scheme, mode="lenient").ingest
        broken = [r for r in trial.rejected if r.index < m]
        if broken:
            victim = broken[0]
            outcomes[i] = _rejected(
                i,
                batch[i],
                RecordError(
                    "it is dated before events already kept for this opportunity and would "
                    f"make one illegal ({victim.error.reason}); send it in time order or fix "
                    "the later events",
                    index=i,
                    event_id=_id(batch[i], "event_id"),
                    opportunity_id=_id(batch[i], "opportunity_id"),
                    field="at",
                ),
            )
        elif trial.rejected:
            error = _in_batch_terms(trial.rejected[0].error, i, stored, batch)
            outcomes[i] = _rejected(i, batch[i], error)
        elif trial.duplicates:
            outcomes[i] = _duplicate(i, batch[i], origin[trial.duplicates[0].first_index])
        else:
            events[i] = event_from_record(batch[i])
            outcomes[i] = _applied(i, events[i])
            kept.append(batch[i])
            origin.append(i)


def append_records(
    conn: sqlite3.Connection,
    records: Iterable[Mapping[str, Any]],
    *,
    scheme: str | None = None,
    mode: Mode = "lenient",
) -> AppendReport:
    """Validate ``records`` against the stored scheme and history, then store the legal ones.

    Args:
        conn: the database.
        records: plain-dict records (the record format).
        scheme: the stored scheme's name (``None``: the only one stored).
        mode: ``"lenient"`` stores the legal records and reports the rest; ``"strict"``
            stores all or nothing and raises the first bad record's error.

    Returns:
        One outcome per record, in input order: applied, duplicate (same ``event_id`` and
        content as a stored or earlier record: nothing stored) or rejected (reason, field).

    Raises:
        ArgumentError: bad ``records``, ``scheme`` or ``mode``.
        RecordError: (strict mode) the first rejected record, with its batch ``index``.
    """
    if mode not in ("strict", "lenient"):
        raise ArgumentError("mode", f"expected 'strict' or 'lenient', got {mode!r}")
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise ArgumentError("records", f"expected a list of records, got {type(records).__name__}")
    batch = list(records)
    with _write(conn):
        stored_scheme = load_scheme(conn, scheme)
        outcomes, events = _judge(stored_scheme, _scope(conn, stored_scheme.name, batch), batch)
        if mode == "strict":
            for o in outcomes:
                if o.status == "rejected":
                    raise RecordError(
                        o.reason or "rejected",
                        index=o.index,
                        event_id=o.event_id,
                        opportunity_id=o.opportunity_id,
                        field=o.field,
                    )
        conn.executemany(
            "INSERT INTO events (scheme, event_id, opportunity_id, type, at, actor, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(stored_scheme.name, *_event_row(events[i])) for i in sorted(events)],
        )
    return AppendReport(scheme=stored_scheme.name, outcomes=tuple(outcomes))


# -- reports -------------------------------------------------------------------------------


def pipeline_report(
    conn: sqlite3.Connection, scheme_name: str | None, as_of: str | datetime
) -> list[dict[str, Any]]:
    """The rows of :class:`PipelineByStage` on the stored history (money as ``Decimal``)."""
    history = load_history(conn, scheme_name)
    return PipelineByStage().compute(history, as_of=as_of).to_records()


def forecast(
    conn: sqlite3.Connection,
    scheme_name: str | None,
    as_of: str | datetime,
    period: str = "month",
    horizon: int = 3,
) -> list[dict[str, Any]]:
    """The rows of :class:`WeightedForecast` on the stored history (money as ``Decimal``)."""
    forecaster = WeightedForecast(period=period, horizon=horizon)
    history = load_history(conn, scheme_name)
    return forecaster.compute(history, as_of=as_of).to_records()


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # money stays exact: a decimal string, never a float
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: object) -> str:
    """JSON text with ``Decimal`` as strings and dates in ISO format."""
    return json.dumps(value, default=_plain)


def error_body(err: PipelineError) -> dict[str, Any]:
    """A typed error as a JSON-ready dict: its message plus its structured fields."""
    body: dict[str, Any] = {"error": type(err).__name__, "message": str(err)}
    if isinstance(err, ArgumentError):
        body |= {"argument": err.argument, "reason": err.reason}
    if isinstance(err, SchemeError):
        body |= {"scheme": err.scheme, "problems": list(err.problems)}
    if isinstance(err, RecordError):
        body |= {
            "index": err.index,
            "event_id": err.event_id,
            "opportunity_id": err.opportunity_id,
            "field": err.field,
            "reason": err.reason,
        }
    if isinstance(err, TransitionError):
        body |= {"rule": err.rule, "from_stage": err.from_stage, "to_stage": err.to_stage}
    return body


# -- HTTP ----------------------------------------------------------------------------------

MAX_BODY = 10 * 1024 * 1024
_PARAMS = {
    ("GET", "/pipeline"): {"scheme", "as_of"},
    ("GET", "/forecast"): {"scheme", "as_of", "period", "horizon"},
    ("POST", "/events"): {"scheme", "mode"},
    ("POST", "/schemes"): set(),
}


class _HTTPError(Exception):
    def __init__(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def _params(query: str, allowed: set[str]) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    out: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ArgumentError(name, f"unknown parameter (known: {known})")
        if len(values) != 1:
            raise ArgumentError(name, "given more than once")
        out[name] = values[0]
    return out


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ArgumentError(name, "is required")
    return value


def _horizon(params: Mapping[str, str]) -> int:
    text = params.get("horizon", "3")
    try:
        return int(text)
    except ValueError:
        raise ArgumentError("horizon", f"expected a whole number, got {text!r}") from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s - %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            allowed = _PARAMS.get((method, url.path))
            if allowed is None:
                if any(path == url.path for _, path in _PARAMS):
                    raise _HTTPError(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        {"error": "MethodNotAllowed", "message": f"{method} {url.path}"},
                    )
                raise _HTTPError(
                    HTTPStatus.NOT_FOUND, {"error": "NotFound", "message": f"no {url.path}"}
                )
            params = _params(url.query, allowed)
            status, body = self._route(method, url.path, params)
        except _HTTPError as err:
            status, body = err.status, err.body
        except PipelineError as err:  # every typed error is the caller's input: a 400
            status, body = HTTPStatus.BAD_REQUEST, error_body(err)
        except Exception:
            log.exception("internal error on %s %s", method, self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body = {"error": "InternalError", "message": "internal error; see the server log"}
        self._send(status, body)

    def _route(
        self, method: str, path: str, params: Mapping[str, str]
    ) -> tuple[HTTPStatus, object]:
        app = self.server
        if path == "/pipeline":
            as_of = _required(params, "as_of")
            with app.lock:
                rows = pipeline_report(app.conn, params.get("scheme"), as_of)
            return HTTPStatus.OK, {"as_of": as_of, "rows": rows}
        if path == "/forecast":
            as_of = _required(params, "as_of")
            period, horizon = params.get("period", "month"), _horizon(params)
            with app.lock:
                rows = forecast(app.conn, params.get("scheme"), as_of, period, horizon)
            return HTTPStatus.OK, {"as_of": as_of, "rows": rows}
        body = self._body()
        if path == "/schemes":
            with app.lock:
                scheme = save_scheme(app.conn, body)
            return HTTPStatus.CREATED, {"name": scheme.name, "stages": list(scheme.keys)}
        try:
            records = json.loads(body)
        except ValueError as exc:
            raise ArgumentError("body", f"not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise ArgumentError("body", "expected a JSON list of records")
        mode = params.get("mode", "lenient")
        if mode not in ("strict", "lenient"):
            raise ArgumentError("mode", f"expected 'strict' or 'lenient', got {mode!r}")
        with app.lock:
            report = append_records(
                app.conn,
                records,
                scheme=params.get("scheme"),
                mode="strict" if mode == "strict" else "lenient",
            )
        return HTTPStatus.OK, {**report.summary(), "outcomes": list(report.outcomes)}

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise _HTTPError(
                HTTPStatus.LENGTH_REQUIRED,
                {"error": "LengthRequired", "message": "send a Content-Length header"},
            )
        if int(length) > MAX_BODY:
            raise _HTTPError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": "TooLarge", "message": f"the body is over {MAX_BODY} bytes"},
            )
        return self.rfile.read(int(length))

    def _send(self, status: HTTPStatus, body: object) -> None:
        data = to_json(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "GET, POST")
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, conn: sqlite3.Connection, port: int) -> None:
        self.conn = conn
        self.lock = threading.Lock()  # one sqlite3 connection, many request threads
        super().__init__(("127.0.0.1", port), _Handler)


class AppServer:
    """The HTTP endpoint on 127.0.0.1, served from a background thread.

    Use it as a context manager (or call :meth:`close`): leaving stops the loop, closes the
    socket and joins the thread. ``port=0`` picks a free port; :attr:`url` says which.
    """

    def __init__(self, conn: sqlite3.Connection, *, port: int = 0) -> None:
        self.httpd = _Server(conn, port)
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AppServer:
        """Start serving in the background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the socket and join the thread."""
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_demo(conn: sqlite3.Connection) -> None:
    if _stored_names(conn):
        return
    save_scheme(conn, pk.schemes.get("salesforce").model_dump_json())
    append_records(conn, pk.demo.demo_records(opportunities=40, seed=1), mode="strict")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the app on 127.0.0.1 until Ctrl-C or SIGTERM; print the URL first."""
    parser = argparse.ArgumentParser(description="Serve pipelinekit reports from SQLite.")
    parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--demo", action="store_true", help="store a demo scheme and history")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    conn = connect(args.db)
    if args.demo:
        _load_demo(conn)
    httpd = _Server(conn, args.port)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    host, port = httpd.server_address[:2]
    print(f"serving on http://{host!s}:{port}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        conn.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
