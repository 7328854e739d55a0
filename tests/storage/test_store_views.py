"""The views give the right numbers on a hand-made run, counting completed runs only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import RunWriter, Store, schema
from storage.examples import EXAMPLES
from storage.liveness import utcnow
from twin.records import Event, RunResult

NAN = float("nan")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "store.md"


def _start(store: Store, seed: int, events: list[Event]) -> RunWriter:
    """A run of scenario 'hall' with these events committed, still running."""
    writer = store.begin_run(
        scenario_name="hall", scenario_hash="h", scenario={}, seed=seed, until_h=10.0, systems=4
    )
    writer.write_events(events)
    writer.flush()
    return writer


def _finish(writer: RunWriter, kpis: dict[str, float]) -> int:
    writer.complete(RunResult("hall", "h", {}, writer.seed, 10.0, 4, wall_s=0.5, kpis=kpis))
    return writer.run_id


A_EVENTS = [
    Event(1.0, "hall.row0.rack0.sys0.psu1", "failure", "psu", NAN),
    Event(1.0, "hall.row0.rack0.sys0", "outage", "psu", 2.0),
    Event(4.0, "hall.row0.rack0.sys1.psu0", "failure", "psu", NAN),
    Event(5.0, "hall.row0.rack0.sys1.psu2", "failure", "psu", NAN),
    Event(5.0, "hall.row0.rack0.sys1", "outage", "psu", 3.5),
    Event(6.0, "hall.row0.rack1.sys2.pump0", "failure", "pump", NAN),
    Event(6.0, "hall.row0.rack1.sys2", "outage", "pump", 10.0),
    Event(2.0, "hall.row0.rack1.sys3", "throttle", "chiller", 0.75),  # no failure, no outage
    Event(4.0, "hall.row0.rack0.sys1", "throttle", "psu", 0.5),  # a PSU short of redundancy
    Event(7.0, "hall.row0.rack1.sys3.wafer", "failure", "cores", 2.0),  # 2 cores lost, no outage
]
B_EVENTS = [
    Event(2.0, "hall.row0.rack0.sys3.psu1", "failure", "psu", NAN),
    Event(2.0, "hall.row0.rack0.sys3", "outage", "psu", 1.0),
]
NOISE = [
    Event(1.0, "hall.x", "failure", "psu", NAN),
    Event(1.0, "hall.x", "outage", "psu", 99.0),
    Event(1.0, "hall.x", "throttle", "chiller", 99.0),
]

@pytest.fixture
def hall(store: Store) -> dict[str, int]:
    """Two completed runs (a, b) and three that must not count (failed, interrupted, demoted)."""
    ids = {
        "a": _finish(_start(store, 1, A_EVENTS), {"availability": 0.98, "failures.psu": 3}),
        "b": _finish(_start(store, 2, B_EVENTS), {"availability": 0.96}),
    }
    failed = _start(store, 3, NOISE)
    failed.fail("boom")
    stopped = _start(store, 4, NOISE)
    stopped.interrupt()
    demoted = _finish(_start(store, 5, NOISE), {"availability": 0.1})
    runs = schema.runs
    with store.engine.begin() as conn:  # it has KPIs, but a run that is not complete never counts
        conn.execute(sa.update(runs).where(runs.c.id == demoted).values(status="interrupted"))
    return ids | {"failed": failed.run_id, "stopped": stopped.run_id, "demoted": demoted}


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in store.query(sql).itertuples(index=False, name=None)]


def test_availability_by_run(store: Store, hall: dict[str, int]) -> None:
    rows = _rows(
        store, "SELECT run_id, scenario, seed, availability FROM v_availability ORDER BY run_id"
    )
    assert rows == [(hall["a"], "hall", 1, 0.98), (hall["b"], "hall", 2, 0.96)]


def test_failures_by_cause(store: Store, hall: dict[str, int]) -> None:
    rows = _rows(store, "SELECT * FROM v_failures_by_cause ORDER BY run_id, cause")
    assert rows == [
        (hall["a"], "cores", 1, 0.0),
        (hall["a"], "psu", 3, 5.5),
        (hall["a"], "pump", 1, 10.0),
        (hall["b"], "psu", 1, 1.0),
    ]


def test_capacity_lost_by_cause_adds_throttling_to_outages(
    store: Store, hall: dict[str, int]
) -> None:
    rows = _rows(store, "SELECT * FROM v_capacity_lost_by_cause ORDER BY run_id, cause")
    assert rows == [
        (hall["a"], "chiller", 0.75),
        (hall["a"], "psu", 6.0),  # 5.5 h down + 0.5 system-h throttled
        (hall["a"], "pump", 10.0),
        (hall["b"], "psu", 1.0),
    ]


def test_kpi_trend(store: Store, hall: dict[str, int]) -> None:
    rows = _rows(
        store, "SELECT night, scenario, kpi, mean_value, runs FROM v_kpi_trend ORDER BY kpi"
    )
    today = utcnow().date().isoformat()
    assert [(str(r[0]), *r[1:3], r[4]) for r in rows] == [
        (today, "hall", "availability", 2),
        (today, "hall", "failures.psu", 1),
    ]
    assert math.isclose(rows[0][3], 0.97) and rows[1][3] == 3.0


def test_every_example_query_runs(store: Store, hall: dict[str, int]) -> None:
    results = {name: store.query(sql) for name, sql in EXAMPLES.items()}
    by_cause = results["failures_by_cause"]
    assert by_cause.values.tolist() == [["psu", 4, 6.5], ["cores", 1, 0.0], ["pump", 1, 10.0]]
    trend = results["nightly_trend"]
    assert trend["runs"].tolist() == [2] and math.isclose(trend["availability"][0], 0.97)
    assert sorted(results["runs_not_completed"]["id"]) == sorted(
        [hall["failed"], hall["stopped"], hall["demoted"]]
    )
    assert results["availability_by_run"]["run_id"].tolist() == [hall["b"], hall["a"]]
    lost = results["capacity_lost_by_cause"]
    assert lost["cause"].tolist() == ["pump", "psu", "chiller"]
    assert lost["mean_system_h_per_run"].tolist() == [10.0, 3.5, 0.75]


def test_docs_show_every_example_verbatim() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, sql in EXAMPLES.items():
        assert sql in text, f"docs/store.md lacks example {name}"


def test_docs_describe_every_column_and_view() -> None:
    from storage.views import VIEW_NAMES

    text = DOCS.read_text(encoding="utf-8")
    for table in schema.metadata.sorted_tables:
        section = text.split(f"### `{table.name}`", 1)
        assert len(section) == 2, f"no section for table {table.name}"
        body = section[1].split("\n### ", 1)[0]
        for column in table.columns:
            assert f"| `{column.name}` |" in body, f"{table.name}.{column.name} undocumented"
    for view in VIEW_NAMES:
        assert f"`{view}`" in text
