"""What a RunWriter writes is what the read helpers return; runs end with one status."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    Store,
    StoreError,
    event_summary,
    read_events,
    read_kpis,
    read_metrics,
    read_run,
    read_runs,
)
from storage.testing import synthetic_run, write_run
from twin.records import Event, Metric, MetricSeries, RunResult

NAN = float("nan")
names = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=6)
scopes = st.lists(names, min_size=1, max_size=4).map(".".join)
times = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
values = st.floats(allow_nan=True, allow_infinity=True)
events = st.builds(Event, t=times, scope=scopes, kind=names, cause=names, value=values)


@st.composite
def metric_series(draw: st.DrawFn) -> MetricSeries:
    """A series whose last bucket ends anywhere inside it (often short), values with NaN, ±inf."""
    t0 = draw(st.floats(0.0, 1e5))
    bucket = draw(st.floats(1e-3, 1e3))
    vals = draw(st.lists(values, max_size=12))
    last = t0 + max(len(vals) - 1, 0) * bucket  # where the last bucket starts
    t_end = last + draw(st.floats(0.0, 1.0, exclude_min=True)) * bucket
    if vals and t_end <= last:
        t_end = math.nextafter(last, math.inf)
    return MetricSeries(draw(scopes), draw(names), t0, bucket, t_end, tuple(vals))


def _expected(records: list[Event] | list[Metric], columns: list[str]) -> pd.DataFrame:
    rows = [[getattr(r, c) for c in columns] for r in records]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({c: "float64" for c in columns if c in ("t", "bucket", "value")})


def _same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected, check_dtype=False, check_exact=True
    )


METRIC_COLUMNS = ["t", "bucket", "scope", "name", "value"]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order whatever the server's collation (ties: equal scope, name, t)."""
    keys = ["scope", "name", "t", "bucket", "value"]
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _assert_ordered_by_scope_name_t(frame: pd.DataFrame) -> None:
    seen: set[tuple[str, str]] = set()
    current, last_t = None, -math.inf
    for scope, name, t in frame[["scope", "name", "t"]].itertuples(index=False, name=None):
        if (scope, name) != current:
            assert (scope, name) not in seen, "a scope and name come back in two runs of rows"
            current, last_t = (scope, name), -math.inf
            seen.add(current)
        assert t >= last_t
        last_t = t


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    evs=st.lists(events, max_size=30),
    series=st.lists(metric_series(), max_size=6),
    chunk=st.integers(1, 40),
    chunk_bytes=st.integers(1, 300),  # series texts run to ~250 characters here
)
def test_records_round_trip(
    store: Store, evs: list[Event], series: list[MetricSeries], chunk: int, chunk_bytes: int
) -> None:
    run = synthetic_run(0, 0)
    writer = store.begin_run(  # type: ignore[arg-type]
        **run.header, chunk_rows=chunk, chunk_bytes=chunk_bytes
    )
    writer.write_events(evs[:10])
    writer.write_series(series[:2])
    writer.write_events(evs[10:])
    writer.write_series(series[2:])
    writer.complete(run.result)
    _same(
        read_events(store, writer.run_id), _expected(evs, ["t", "scope", "kind", "cause", "value"])
    )
    actual = read_metrics(store, writer.run_id)
    _assert_ordered_by_scope_name_t(actual)
    expanded = [m for s in series for m in s.metrics()]
    _same(_sorted(actual), _sorted(_expected(expanded, METRIC_COLUMNS)))


def test_series_read_back_one_row_per_bucket(store: Store) -> None:
    series = [
        MetricSeries("hall.row1", "it_power_kw", 0.0, 24.0, 60.0, (50.0, NAN, 52.5)),
        MetricSeries("hall", "it_power_kw", 2.0, 1.5, 5.0, (100.0, 101.0)),
        MetricSeries("hall", "capacity", 0.0, 1.0, 1.0, (0.8,)),
        MetricSeries("hall", "empty", 0.0, 1.0, 0.0, ()),
    ]
    run = synthetic_run(0, 0)
    writer = store.begin_run(**run.header)  # type: ignore[arg-type]
    writer.write_series(series)
    writer.complete(run.result)
    expected = pd.DataFrame(
        [
            (0.0, 1.0, "hall", "capacity", 0.8),
            (2.0, 1.5, "hall", "it_power_kw", 100.0),
            (3.5, 1.5, "hall", "it_power_kw", 101.0),
            (0.0, 24.0, "hall.row1", "it_power_kw", 50.0),
            (24.0, 24.0, "hall.row1", "it_power_kw", NAN),
            (48.0, 12.0, "hall.row1", "it_power_kw", 52.5),  # the last bucket ends at t_end
        ],
        columns=METRIC_COLUMNS,
    )
    _same(read_metrics(store, writer.run_id), expected)
    stored = store.query("SELECT scope, name, n, series FROM metric_series ORDER BY id")
    assert stored.values.tolist()[0] == ["hall.row1", "it_power_kw", 3, "[50.0,null,52.5]"]
    assert stored["n"].tolist() == [3, 2, 1, 0]
    assert read_metrics(store, writer.run_id, name="it_power_kw", scope="hall")["t"].tolist() == [
        2.0,
        3.5,
    ]
    assert read_metrics(store, writer.run_id, name="nope").empty


def test_a_chunk_is_bounded_by_rows_and_by_series_text(store: Store) -> None:
    run = synthetic_run(0, 0)
    writer = store.begin_run(**run.header, chunk_rows=10, chunk_bytes=100)  # type: ignore[arg-type]

    def stored() -> int:
        return int(store.query("SELECT COUNT(*) AS n FROM metric_series")["n"][0])

    def series(n: int) -> MetricSeries:  # its text "[1.0,...,1.0]" is 4n + 1 characters
        return MetricSeries("hall", "it_power_kw", 0.0, 1.0, float(n), (1.0,) * n)

    def failures(n: int) -> list[Event]:
        return [Event(1.0, "hall", "failure", "psu", NAN)] * n

    writer.write_series([series(30)])  # 121 characters, more than a chunk: alone, whole
    assert (writer.pending, stored()) == (0, 1)
    writer.write_series([series(10)] * 2)  # 82 characters in 2 rows: both fit
    writer.write_events(failures(5))
    assert (writer.pending, stored()) == (7, 1)
    writer.write_series([series(10)])  # 123 characters: a chunk of the 5 events and 2 series
    assert (writer.pending, stored()) == (1, 3)
    writer.write_events(failures(9))  # 10 rows: a chunk
    assert (writer.pending, stored()) == (0, 4)
    assert writer.rows_written == 1 + 2 + 5 + 1 + 9
    writer.complete(run.result)
    assert stored() == 4 and len(read_metrics(store, writer.run_id)) == 30 + 3 * 10
    assert len(read_events(store, writer.run_id)) == 14


def test_series_text_keeps_signed_zeros_and_spells_what_json_cannot(store: Store) -> None:
    values = (0.0, -0.0, 1.5, -0.0, 1.5, NAN, math.inf, -math.inf, 0.0)
    run = synthetic_run(0, 0)
    writer = store.begin_run(**run.header)  # type: ignore[arg-type]
    writer.write_series([MetricSeries("hall", name, 0.0, 1.0, 9.0, values) for name in "pq"])
    writer.complete(run.result)
    texts = store.query("SELECT series FROM metric_series")["series"].tolist()
    assert texts == ["[0.0,-0.0,1.5,-0.0,1.5,null,1e999,-1e999,0.0]"] * 2
    read = read_metrics(store, writer.run_id, name="q")["value"].tolist()
    assert read[2:5:2] == [1.5, 1.5] and math.isnan(read[5]) and read[6:8] == [math.inf, -math.inf]


def test_many_events_keep_their_order_and_values(store: Store) -> None:
    # SQLite takes events a hundred to a statement: whole statements and a rest.
    run = synthetic_run(345, 100.0, seed=8)
    run_id = write_run(store, run)
    expected = _expected(run.events, ["t", "scope", "kind", "cause", "value"])
    _same(read_events(store, run_id), expected)
    assert read_events(store, run_id)["value"].isna().any()


@pytest.mark.parametrize(
    "bad", [(1.0, "hall", "failure", "psu"), (1.0, "h", "a", "b", 1.0, 2.0), 1.0]
)
def test_an_event_of_the_wrong_shape_is_refused_and_nothing_lands(
    store: Store, bad: tuple[object, ...]
) -> None:
    run = synthetic_run(3, 10.0)
    writer = store.begin_run(**run.header, chunk_rows=4)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="an event is a tuple of 5"):
        writer.write_events([*run.events, bad])  # type: ignore[list-item]
    assert writer.pending == 0
    writer.complete(run.result)
    assert read_events(store, writer.run_id).empty


@pytest.mark.parametrize(
    "bad",
    [
        MetricSeries("hall", "p", 0.0, 0.0, 1.0, (1.0,)),
        MetricSeries("hall", "p", 0.0, -1.0, 1.0, (1.0,)),
        MetricSeries("hall", "p", NAN, 1.0, 1.0, (1.0,)),
        MetricSeries("hall", "p", 0.0, 1.0, math.inf, (1.0,)),
    ],
)
def test_a_series_without_a_usable_time_axis_is_refused(store: Store, bad: MetricSeries) -> None:
    writer = store.begin_run(**synthetic_run(0, 0).header)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="metric series 'p' at 'hall'"):
        writer.write_series([bad])
    assert writer.pending == 0


def test_a_synthetic_run_reads_back_as_its_expanded_series(store: Store) -> None:
    run = synthetic_run(20, 30.5, rows=2, seed=4)
    run_id = write_run(store, run, chunk_rows=7)
    metrics = read_metrics(store, run_id)
    assert metrics["value"].isna().any() and (metrics["bucket"] == 6.5).any()
    _same(metrics, _sorted(_expected(run.metrics, METRIC_COLUMNS)))


def test_kpis_header_and_document_round_trip(store: Store) -> None:
    run = synthetic_run(10, 48, seed=3, kpis={"availability": 0.97, "pue": float("nan")})
    run_id = write_run(store, run)
    kpis = read_kpis(store, run_id)
    assert list(kpis["name"]) == ["availability", "pue"]
    assert kpis["value"][0] == 0.97 and math.isnan(kpis["value"][1])
    header = read_run(store, run_id)
    assert header["status"] == "completed"
    assert header["scenario_document"] == run.header["scenario"]
    assert (header["seed"], header["until_h"], header["systems"]) == (3, 48.0, 64)
    assert header["wall_s"] == 1.0 and header["finished"] >= header["started"]


def test_rows_land_while_the_run_goes(store: Store) -> None:
    run = synthetic_run(250, 0)
    writer = store.begin_run(**run.header, chunk_rows=100)  # type: ignore[arg-type]
    writer.write_events(run.events)
    assert len(read_events(store, writer.run_id)) == 200  # two full chunks, 50 buffered
    assert writer.pending == 50
    assert read_runs(store)["status"].tolist() == ["running"]
    writer.complete(run.result)
    assert len(read_events(store, writer.run_id)) == 250


def test_read_runs_filters_latest_first(store: Store) -> None:
    first = write_run(store, synthetic_run(5, 5, seed=1, scenario_name="a"))
    second = write_run(store, synthetic_run(5, 5, seed=2, scenario_name="b"))
    third = write_run(store, synthetic_run(5, 5, seed=3, scenario_name="a"), complete=False)
    assert read_runs(store)["run_id"].tolist() == [third, second, first]
    assert read_runs(store, scenario="a")["run_id"].tolist() == [third, first]
    assert read_runs(store, status="completed")["run_id"].tolist() == [second, first]
    assert read_runs(store, limit=1)["run_id"].tolist() == [third]
    assert read_runs(store, since="2999-01-01").empty
    assert len(read_runs(store, since="2000-01-01")) == 3


@pytest.mark.parametrize(
    "kwargs", [{"status": "done"}, {"since": "yesterday"}, {"limit": 0}, {"limit": True}]
)
def test_read_runs_rejects_bad_filters(store: Store, kwargs: dict[str, object]) -> None:
    with pytest.raises(StoreError):
        read_runs(store, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("reader", [read_events, read_metrics, read_kpis, event_summary, read_run])
def test_unknown_run_is_a_store_error(store: Store, reader: object) -> None:
    with pytest.raises(StoreError, match="no run 404"):
        reader(store, 404)  # type: ignore[operator]


def test_an_exception_marks_the_run_failed_and_is_reraised(store: Store) -> None:
    run = synthetic_run(20, 0)
    with pytest.raises(ZeroDivisionError):
        with store.begin_run(**run.header) as writer:  # type: ignore[arg-type]
            writer.write_events(run.events)
            1 / 0  # noqa: B018
    header = read_run(store, writer.run_id)
    assert header["status"] == "failed"
    assert "ZeroDivisionError" in header["error"]
    assert len(read_events(store, writer.run_id)) == 20  # kept for inspection


def test_ctrl_c_marks_the_run_interrupted(store: Store) -> None:
    run = synthetic_run(0, 0)
    with pytest.raises(KeyboardInterrupt):
        with store.begin_run(**run.header) as writer:  # type: ignore[arg-type]
            raise KeyboardInterrupt
    assert read_run(store, writer.run_id)["status"] == "interrupted"


def test_leaving_without_a_result_is_a_failure(store: Store) -> None:
    run = synthetic_run(0, 0)
    with store.begin_run(**run.header) as writer:  # type: ignore[arg-type]
        pass
    assert read_run(store, writer.run_id)["status"] == "failed"


def test_a_completed_run_stays_completed(store: Store) -> None:
    run = synthetic_run(3, 3)
    with pytest.raises(RuntimeError):
        with store.begin_run(**run.header) as writer:  # type: ignore[arg-type]
            writer.complete(run.result)
            raise RuntimeError("after the fact")
    assert read_run(store, writer.run_id)["status"] == "completed"
    with pytest.raises(StoreError, match="already completed"):
        writer.write_events(run.events)


def test_complete_refuses_another_runs_result(store: Store) -> None:
    run = synthetic_run(0, 0, seed=1)
    writer = store.begin_run(**run.header)  # type: ignore[arg-type]
    other = RunResult("x", "other-hash", {}, seed=1, until_h=1.0, systems=1, wall_s=0.1)
    with pytest.raises(StoreError, match="was started for"):
        writer.complete(other)
    writer.fail("gave up")
    assert read_run(store, writer.run_id)["error"] == "gave up"


def test_scenarios_are_stored_once_per_hash(store: Store) -> None:
    run = synthetic_run(0, 0)
    for _ in range(3):
        write_run(store, run)
    assert store.query("SELECT COUNT(*) AS n FROM scenarios")["n"][0] == 1


def test_sweeps_group_runs(store: Store) -> None:
    run = synthetic_run(0, 0)
    header = dict(run.header)
    sweep = store.create_sweep(
        scenario_name=header["scenario_name"],  # type: ignore[arg-type]
        scenario_hash=header["scenario_hash"],  # type: ignore[arg-type]
        scenario=header["scenario"],  # type: ignore[arg-type]
        factors={"hall.rows": [2, 4]},
        replications=2,
    )
    for replication in range(2):
        writer = store.begin_run(**header, replication=replication, sweep_id=sweep)  # type: ignore[arg-type]
        writer.complete(run.result)
    store.finish_sweep(sweep)
    runs = read_runs(store)
    assert runs["sweep_id"].tolist() == [sweep, sweep]
    assert sorted(runs["replication"]) == [0, 1]
    row = store.query("SELECT status, factors FROM sweeps")
    assert row["status"][0] == "completed" and row["factors"][0] == '{"hall.rows": [2, 4]}'
    with pytest.raises(StoreError):
        store.begin_run(**header, sweep_id=999)  # type: ignore[arg-type]


def test_a_quiet_run_still_commits_and_beats(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage import writer as writer_module

    run = synthetic_run(3, 0)
    writer = store.begin_run(**run.header)  # type: ignore[arg-type]
    before = read_run(store, writer.run_id)["heartbeat"]
    monkeypatch.setattr(writer_module, "HEARTBEAT_S", 0.0)
    writer.write_events(run.events[:1])
    assert writer.pending == 0 and len(read_events(store, writer.run_id)) == 1
    assert read_run(store, writer.run_id)["heartbeat"] > before


def test_a_chunk_that_fails_to_commit_stays_buffered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import writer as writer_module

    run = synthetic_run(10, 0)
    writer = store.begin_run(**run.header, chunk_rows=10)  # type: ignore[arg-type]
    real = writer_module.insert_rows

    def half_then_fail(conn, table, columns, rows):  # type: ignore[no-untyped-def]
        real(conn, table, columns, rows[:5])  # rolled back with the transaction
        raise OSError("disk full")

    monkeypatch.setattr(writer_module, "insert_rows", half_then_fail)
    with pytest.raises(OSError):
        writer.write_events(run.events)
    assert writer.pending == 10 and read_events(store, writer.run_id).empty
    monkeypatch.setattr(writer_module, "insert_rows", real)
    writer.complete(run.result)
    assert len(read_events(store, writer.run_id)) == 10


def test_deleting_a_run_deletes_its_records(store: Store) -> None:
    kept = write_run(store, synthetic_run(5, 5, seed=1))
    gone = write_run(store, synthetic_run(5, 5, seed=2))
    with store.engine.begin() as conn:  # on SQLite this needs foreign_keys=ON per connection
        conn.exec_driver_sql(f"DELETE FROM runs WHERE id = {gone}")
    counts = store.query(
        "SELECT (SELECT COUNT(*) FROM events) AS e, (SELECT COUNT(*) FROM metric_series) AS s,"
        " (SELECT COUNT(*) FROM metrics) AS m, (SELECT COUNT(*) FROM kpis) AS k"
    )
    assert counts.values.tolist() == [[5, 15, 27, 2]]  # 5 h: 3 hall series of 5, 12 rows of 1
    assert read_runs(store)["run_id"].tolist() == [kept]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    from storage import open_store

    with open_store(tmp_path / "s.db") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
