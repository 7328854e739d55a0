"""The views give the right numbers on a hand-made run, counting completed runs only."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import RunWriter, Store, read_metrics, schema
from storage.examples import EXAMPLES
from storage.liveness import utcnow
from twin.records import Event, MetricSeries, RunResult

NAN = float("nan")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "store.md"


def _start(store: Store, seed: int, events: list[Event], series: list[MetricSeries]) -> RunWriter:
    """A run of scenario 'hall' with these records committed, still running."""
    writer = store.begin_run(
        scenario_name="hall", scenario_hash="h", scenario={}, seed=seed, until_h=10.0, systems=4
    )
    writer.write_events(events)
    writer.write_series(series)
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
A_SERIES = [
    MetricSeries("hall", "it_power_kw", 0.0, 4.0, 10.0, (100.0, NAN, 130.0)),  # buckets 4, 4, 2
    MetricSeries("hall.row0", "it_power_kw", 0.0, 24.0, 10.0, (50.0,)),
    MetricSeries("hall", "capacity", 0.0, 4.0, 10.0, (0.5, 0.5, 0.5)),
]
B_SERIES = [MetricSeries("hall", "it_power_kw", 0.0, 5.0, 10.0, (90.0, 110.0))]
NOISE_SERIES = [MetricSeries("hall", "it_power_kw", 0.0, 10.0, 10.0, (999.0,))]


@pytest.fixture
def hall(store: Store) -> dict[str, int]:
    """Two completed runs (a, b) and three that must not count (failed, interrupted, demoted)."""
    ids = {
        "a": _finish(
            _start(store, 1, A_EVENTS, A_SERIES), {"availability": 0.98, "failures.psu": 3}
        ),
        "b": _finish(_start(store, 2, B_EVENTS, B_SERIES), {"availability": 0.96}),
    }
    failed = _start(store, 3, NOISE, NOISE_SERIES)
    failed.fail("boom")
    stopped = _start(store, 4, NOISE, NOISE_SERIES)
    stopped.interrupt()
    demoted = _finish(_start(store, 5, NOISE, NOISE_SERIES), {"availability": 0.1})
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


def test_the_metrics_view_unnests_the_series_of_every_run(
    store: Store, hall: dict[str, int]
) -> None:
    frame = store.query(
        "SELECT run_id, t, bucket, scope, name, value FROM metrics"
        f" WHERE run_id = {hall['a']} AND name = 'it_power_kw' ORDER BY scope, t"
    )
    assert frame.drop(columns="value").values.tolist() == [
        [hall["a"], 0.0, 4.0, "hall", "it_power_kw"],
        [hall["a"], 4.0, 4.0, "hall", "it_power_kw"],
        [hall["a"], 8.0, 2.0, "hall", "it_power_kw"],  # the last bucket ends at t_end
        [hall["a"], 0.0, 10.0, "hall.row0", "it_power_kw"],
    ]
    assert frame["value"].fillna(-1.0).tolist() == [100.0, -1.0, 130.0, 50.0]  # NaN as NULL
    per_run = _rows(store, "SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id ORDER BY run_id")
    assert [n for _, n in per_run] == [7, 2, 1, 1, 1]  # failed and interrupted runs too
    assert len(read_metrics(store, hall["failed"])) == 1


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
    power = results["mean_power_by_scope"]
    assert power.values.tolist() == [
        [hall["a"], "hall", 110.0, 130.0],  # (4 * 100 + 2 * 130) / 6 h; the NaN bucket skipped
        [hall["a"], "hall.row0", 50.0, 50.0],
        [hall["b"], "hall", 100.0, 110.0],
    ]


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
    body = text.split("### `metrics`", 1)[1].split("\n### ", 1)[0]
    for name in schema.metrics.columns.keys():
        assert f"| `{name}` |" in body, f"metrics view column {name} undocumented"
