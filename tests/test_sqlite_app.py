"""End to end: examples/sqlite_app.py stores schemes and events in SQLite and serves reports.

Everything the app answers is checked against the library computed directly on the good
records; the HTTP server runs on 127.0.0.1 with an ephemeral port and is shut down.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pipelinekit as pk
from pipelinekit.errors import ArgumentError, RecordError, SchemeError
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.pipeline_by_stage import PipelineByStage

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sqlite_app.py"
AS_OF = "2024-09-30T00:00:00+00:00"
SALESFORCE = pk.schemes.get("salesforce")
BAD_SCHEME = json.dumps(
    {
        "name": "broken",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": 150},
            {"key": "won", "weight": 100, "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": 0, "outcome": "maybe"},
        ],
    }
)
"""Three problems at once: a weight over 100, a missing label, an unknown outcome."""
TIMEOUT = 5


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sqlite_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sqlite_app"] = module  # pydantic resolves the models' annotations there
    spec.loader.exec_module(module)
    return module


app = _load_app()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = app.connect(str(tmp_path / "pipeline.db"))
    yield connection
    connection.close()


def _records() -> list[dict[str, Any]]:
    """The demo records, each with an event_id so duplicates can be recognised."""
    records = pk.demo.demo_records(opportunities=40, seed=1)
    return [{**r, "event_id": f"e{i:04d}"} for i, r in enumerate(records)]


def _stored_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def _batches() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Two batches (split in time) with bad and duplicate records mixed in.

    Returns the batches, the good records (what should end up stored) and, per batch, the
    expected (index -> (status, field)) for every record that is not applied.
    """
    records = _records()
    first = [r for r in records if r["at"] < "2024-07-01"]
    second = [r for r in records if r["at"] >= "2024-07-01"]
    # an opportunity opened in the first batch that moves again later in the first batch
    opened = next(
        r
        for r in first
        if r["type"] == "opened"
        and sum(1 for s in first if s["opportunity_id"] == r["opportunity_id"]) >= 3
    )
    oid = opened["opportunity_id"]
    moves = [s for s in first if s["opportunity_id"] == oid and s["type"] == "stage_changed"]
    assert moves and moves[0]["at"] > opened["at"]
    late_loss = {
        "type": "stage_changed",
        "opportunity_id": oid,
        "event_id": "late-loss",
        # a loss dated between the stored opening and the stored moves: it would make them
        # illegal (a closed deal cannot move on), so it is the one rejected
        "at": opened["at"].replace(":00+00:00", ":30+00:00"),
        "stage": "closed-lost",
    }
    bad1 = [
        {**first[0], "event_id": "neg", "opportunity_id": "neg-1", "amount": "-5"},
        {"type": "opportunity_won", "opportunity_id": "x", "at": "2024-02-01T00:00:00Z"},
        {"type": "stage_changed", "opportunity_id": "ghost", "at": "2024-02-01T00:00:00Z",
         "stage": "closed-won"},
        dict(first[1]),  # same event_id, same content: a duplicate
        {**first[2], "note": "changed"} if "note" in first[2] else {**first[2], "actor": "eve"},
    ]  # fmt: skip
    batch1 = first + bad1
    n1 = len(first)
    expected1 = {
        n1: ("rejected", "amount"),
        n1 + 1: ("rejected", "type"),
        n1 + 2: ("rejected", None),
        n1 + 3: ("duplicate", "event_id"),
        n1 + 4: ("rejected", "event_id"),
    }
    bad2 = [
        dict(first[5]),  # repeats a stored event
        {"type": "stage_changed", "opportunity_id": first[0]["opportunity_id"],
         "at": "2024-07-02T00:00:00Z", "stage": "nowhere", "event_id": "bad-stage"},
        {"type": "opened", "opportunity_id": "naive", "at": "2024-08-01T10:00:00",
         "stage": "prospecting"},
        late_loss,
    ]  # fmt: skip
    batch2 = bad2 + second
    expected2 = {
        0: ("duplicate", "event_id"),
        1: ("rejected", "stage"),
        2: ("rejected", "at"),
        3: ("rejected", "at"),
    }
    return batch1, batch2, {"1": expected1, "2": expected2, "good": first + second}


def _check(report: Any, batch: list[dict[str, Any]], expected: dict[int, Any]) -> None:
    assert len(report.outcomes) == len(batch)
    assert [o.index for o in report.outcomes] == list(range(len(batch)))
    for o in report.outcomes:
        status, field = expected.get(o.index, ("applied", None))
        assert o.status == status, o
        if status != "applied":
            assert o.reason, o
            if field is not None:
                assert o.field == field, o
    summary = report.summary()
    assert summary["applied"] + summary["duplicate"] + summary["rejected"] == len(batch)


def _store_everything(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    app.save_scheme(conn, SALESFORCE.model_dump_json())
    batch1, batch2, expected = _batches()
    report1 = app.append_records(conn, batch1)
    _check(report1, batch1, expected["1"])
    assert _stored_count(conn) == report1.count("applied")
    report2 = app.append_records(conn, batch2, scheme="salesforce")
    _check(report2, batch2, expected["2"])
    reused = report1.outcomes[len(batch1) - 1]
    assert reused.reason is not None and "record 2 of this batch" in reused.reason
    late = report2.outcomes[3]
    assert late.event_id == "late-loss" and "would make one illegal" in (late.reason or "")
    assert _stored_count(conn) == report1.count("applied") + report2.count("applied")
    return list(expected["good"])


def test_schemes_are_validated_and_problems_listed(conn: sqlite3.Connection) -> None:
    scheme = app.save_scheme(conn, SALESFORCE.model_dump_json())
    assert app.load_scheme(conn, "salesforce") == scheme == SALESFORCE
    with pytest.raises(SchemeError) as info:
        app.save_scheme(conn, BAD_SCHEME)
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "stages[0], field 'weight'",
        "stages[1], field 'label'",
        "stages[2], field 'outcome'",
    ]
    assert all(p in str(info.value) for p in problems)  # the message lists every one
    # problems of the scheme as a whole are listed together too
    twice = {"name": "twice", "stages": [{"key": "a", "label": "A"}, {"key": "a", "label": "A"}]}
    with pytest.raises(SchemeError) as whole:
        app.save_scheme(conn, json.dumps(twice))
    assert len(whole.value.problems) == 2  # the duplicate key and no won stage
    with pytest.raises(SchemeError):
        app.save_scheme(conn, "{not json")
    with pytest.raises(ArgumentError) as unknown:
        app.load_scheme(conn, "nope")
    assert unknown.value.argument == "scheme"


def test_append_accounts_for_every_record_and_reload_equals_the_good_records(
    conn: sqlite3.Connection,
) -> None:
    good = _store_everything(conn)
    loaded = app.load_history(conn, "salesforce")
    direct = pk.History.from_records(good, scheme=SALESFORCE)
    assert loaded.events == direct.events
    assert app.load_history(conn).events == direct.events  # the only scheme stored
    # appending the same good records again stores nothing: all duplicates
    again = app.append_records(conn, good[:50])
    assert again.summary() == {"total": 50, "applied": 0, "duplicate": 50, "rejected": 0}
    # the figures come from the stored history
    rows = app.pipeline_report(conn, "salesforce", AS_OF)
    assert rows == PipelineByStage().compute(direct, as_of=AS_OF).to_records()
    fc = app.forecast(conn, "salesforce", AS_OF, period="quarter", horizon=2)
    assert (
        fc
        == WeightedForecast(period="quarter", horizon=2).compute(direct, as_of=AS_OF).to_records()
    )


def test_strict_append_stores_nothing_and_names_the_record(conn: sqlite3.Connection) -> None:
    app.save_scheme(conn, SALESFORCE.model_dump_json())
    records = _records()[:20]
    bad = {**records[3], "event_id": "x", "amount": "lots"}
    with pytest.raises(RecordError) as info:
        app.append_records(conn, [*records, bad], mode="strict")
    assert (info.value.index, info.value.field) == (20, "amount")
    assert _stored_count(conn) == 0
    with pytest.raises(ArgumentError) as mode:
        app.append_records(conn, records, mode="sloppy")
    assert mode.value.argument == "mode"


def test_replacing_a_scheme_must_keep_the_stored_history_legal(conn: sqlite3.Connection) -> None:
    app.save_scheme(conn, SALESFORCE.model_dump_json())
    app.append_records(conn, _records(), mode="strict")
    config = json.loads(SALESFORCE.model_dump_json())
    config["stages"] = [s for s in config["stages"] if s["key"] != "needs-analysis"]
    with pytest.raises(SchemeError) as info:
        app.save_scheme(conn, json.dumps(config))
    assert "illegal under the new scheme" in info.value.problems[0]
    assert app.load_scheme(conn, "salesforce") == SALESFORCE  # unchanged


def _call(url: str, *, body: bytes | None = None, method: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def _jsonable(rows: list[dict[str, Any]]) -> Any:
    return json.loads(app.to_json(rows))


def test_http_endpoints_answer_json_and_400_for_bad_input(conn: sqlite3.Connection) -> None:
    good = _store_everything(conn)
    direct = pk.History.from_records(good, scheme=SALESFORCE)
    with app.AppServer(conn, port=0) as server:
        base = server.url
        assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")

        status, body = _call(f"{base}/pipeline?scheme=salesforce&as_of={AS_OF.replace('+', '%2B')}")
        assert status == 200
        expected = PipelineByStage().compute(direct, as_of=AS_OF).to_records()
        assert body["rows"] == _jsonable(expected)
        total_open = next(
            r for r in body["rows"] if r["level"] == "total" and r["section"] == "open"
        )
        assert isinstance(total_open["amount"], str)  # money as a decimal string
        assert Decimal(total_open["weighted"]) == direct.as_of(AS_OF).weighted_total()

        status, body = _call(
            f"{base}/forecast?scheme=salesforce&as_of=2024-09-30T00:00:00Z&period=month&horizon=3"
        )
        assert status == 200
        wf = WeightedForecast(period="month", horizon=3).compute(
            direct, as_of="2024-09-30T00:00:00Z"
        )
        assert body["rows"] == _jsonable(wf.to_records())

        for query, argument in [
            ("as_of=yesterday", "as_of"),
            ("scheme=salesforce", "as_of"),
            ("scheme=nope&as_of=2024-09-30T00:00:00Z", "scheme"),
            ("as_of=2024-09-30T00:00:00Z&horizon=three", "horizon"),
            ("as_of=2024-09-30T00:00:00Z&period=fortnight", "period"),
            ("as_of=2024-09-30T00:00:00Z&asof=x", "asof"),
        ]:
            status, body = _call(f"{base}/forecast?{query}")
            assert (status, body["error"], body["argument"]) == (400, "ArgumentError", argument)
            assert body["message"].startswith(f"argument {argument!r}")

        new = [
            {"type": "opened", "opportunity_id": "web-1", "at": "2024-09-01T09:00:00Z",
             "stage": "prospecting", "amount": "1000.50", "currency": "EUR", "event_id": "w1"},
            {"type": "stage_changed", "opportunity_id": "web-1", "at": "2024-09-02T09:00:00Z",
             "stage": "bogus", "event_id": "w2"},
            good[0],
        ]  # fmt: skip
        status, body = _call(f"{base}/events?scheme=salesforce", body=json.dumps(new).encode())
        assert status == 200
        assert (body["total"], body["applied"], body["duplicate"], body["rejected"]) == (3, 1, 1, 1)
        assert [o["status"] for o in body["outcomes"]] == ["applied", "rejected", "duplicate"]
        assert body["outcomes"][1]["field"] == "stage"

        status, body = _call(f"{base}/events?mode=strict", body=json.dumps(new[1:2]).encode())
        assert status == 400
        assert (body["error"], body["index"], body["field"]) == ("RecordError", 0, "stage")
        assert "bogus" in body["message"]

        status, body = _call(f"{base}/events", body=b"[{")
        assert (status, body["argument"]) == (400, "body")
        status, body = _call(f"{base}/events", body=b'{"type": "opened"}')
        assert (status, body["argument"]) == (400, "body")

        status, body = _call(f"{base}/schemes", body=BAD_SCHEME.encode())
        assert (status, body["error"]) == (400, "SchemeError")
        assert len(body["problems"]) == 3
        assert all(p in body["message"] for p in body["problems"])
        other = SALESFORCE.model_copy(update={"name": "copy"}).model_dump_json()
        status, body = _call(f"{base}/schemes", body=other.encode())
        assert (status, body["name"]) == (201, "copy")

        assert _call(f"{base}/nowhere")[0] == 404
        assert _call(f"{base}/pipeline", body=b"[]")[0] == 405
        # two schemes are stored now: the scheme must be named
        status, body = _call(f"{base}/pipeline?as_of=2024-09-30T00:00:00Z")
        assert (status, body["argument"]) == (400, "scheme")
    # shut down: the port no longer answers
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/pipeline", timeout=1)
    # the web-1 opening is stored with its money exact
    (data,) = conn.execute("SELECT data FROM events WHERE event_id = 'w1'").fetchone()
    assert json.loads(data)["amount"] == "1000.50"


def test_main_serves_until_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--db", str(db), "--port", "0", "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("serving on http://127.0.0.1:"), line
        url = line.removeprefix("serving on ")
        status, body = _call(f"{url}/pipeline?as_of=2024-09-30T00:00:00Z")
        assert status == 200 and body["rows"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
