"""A year of the default hall, written to SQLite and to PostgreSQL, answers the
shipped example queries identically on both (the store issue's acceptance test),
and what the store holds agrees with the run's own KPIs."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import twin.engine
from storage import Store, open_store, read_events, read_kpis, read_metrics, read_run
from storage.examples import EXAMPLES
from storage.testing import PG_URL_ENV, pg_test_schema
from twin.records import RunResult
from twin.scenario import load_scenario

HALL = Path(__file__).resolve().parents[1] / "scenarios" / "hall.toml"


def _write_year(store: Store) -> tuple[int, RunResult]:
    result, run_id = store.record(load_scenario(HALL))
    return run_id, result


@pytest.fixture(scope="module")
def sqlite_year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, int, RunResult]]:
    store = open_store(tmp_path_factory.mktemp("year") / "year.db")
    run_id, result = _write_year(store)
    yield store, run_id, result
    store.close()


@pytest.fixture(scope="module")
def pg_year() -> Iterator[tuple[Store, int, RunResult]]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    with pg_test_schema(base) as url:
        store = open_store(url)
        run_id, result = _write_year(store)
        yield store, run_id, result
        store.close()


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if column in ("started", "run_id", "id"):
            out = out.drop(columns=column)  # when and under which id, not what
        elif column == "night":
            out[column] = out[column].astype(str)
    return out.reset_index(drop=True)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_example_queries_answer_the_same_on_sqlite_and_postgresql(
    name: str, sqlite_year: tuple[Store, int, RunResult], pg_year: tuple[Store, int, RunResult]
) -> None:
    lite = _normalised(sqlite_year[0].query(EXAMPLES[name]))
    pg = _normalised(pg_year[0].query(EXAMPLES[name]))
    assert list(lite.columns) == list(pg.columns)
    assert len(lite) == len(pg)
    # sums in another order may differ in the last bits: 1e-9 relative
    pd.testing.assert_frame_equal(lite, pg, check_dtype=False, rtol=1e-9, atol=1e-9)


def test_the_stored_kpis_are_the_runs_kpis(sqlite_year: tuple[Store, int, RunResult]) -> None:
    store, run_id, result = sqlite_year
    stored = dict(read_kpis(store, run_id).itertuples(index=False))
    assert stored.keys() == result.kpis.keys()
    for name, value in result.kpis.items():
        got = stored[name]
        if math.isnan(value):  # NaN (no event to average) is stored as NULL
            assert got is None or math.isnan(got), name
        else:
            assert got == value, name


def test_the_views_agree_with_the_kpis(sqlite_year: tuple[Store, int, RunResult]) -> None:
    store, run_id, result = sqlite_year
    by_cause = store.query(
        "SELECT cause, failures, downtime_h FROM v_failures_by_cause WHERE run_id = :r",
        {"r": run_id},
    ).set_index("cause")
    kpis = result.kpis
    for cls in ("psu", "pump", "fan", "wafer", "cores"):
        assert by_cause.loc[cls, "failures"] == kpis[f"failures.{cls}"], cls
    for cause, hours in by_cause["downtime_h"].items():
        assert hours == pytest.approx(kpis.get(f"downtime_h.{cause}", 0.0), rel=1e-9), cause
    availability = store.query(
        "SELECT availability FROM v_availability WHERE run_id = :r", {"r": run_id}
    )
    assert availability.iloc[0, 0] == kpis["availability"]


def test_the_hall_metrics_average_to_the_kpis(sqlite_year: tuple[Store, int, RunResult]) -> None:
    store, run_id, result = sqlite_year
    hall = read_metrics(store, run_id, name="availability", scope="hall")
    assert len(hall) == 8760
    mean = (hall["value"] * hall["bucket"]).sum() / hall["bucket"].sum()
    assert mean == pytest.approx(result.kpis["availability"], rel=1e-12)


def test_a_recorded_run_is_the_scenarios_run(sqlite_year: tuple[Store, int, RunResult]) -> None:
    store, run_id, result = sqlite_year
    header = read_run(store, run_id)
    assert (header["status"], header["seed"], header["until_h"]) == ("completed", 1, 8760.0)
    assert (header["systems"], header["scenario_hash"]) == (result.systems, result.scenario_hash)


def test_a_run_whose_simulation_raises_is_recorded_failed_with_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(scenario: object, *, seed: int, until: float, sink: object) -> RunResult:
        sink.write_events([(1.0, "hall.row1.rack1.sys1", "failure", "psu", math.nan)])  # type: ignore[attr-defined]
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(twin.engine, "simulate", broken)
    with open_store(tmp_path / "t.db") as store:
        with pytest.raises(RuntimeError, match="the engine broke"):
            store.record(load_scenario(HALL), seed=3)
        header = read_run(store, 1)
        assert (header["status"], header["seed"]) == ("failed", 3)
        assert "the engine broke" in header["error"]
        assert read_events(store, 1)["cause"].tolist() == ["psu"]
