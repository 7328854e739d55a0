"""Every run carries every KPI of its scenario's classes and causes, zeros
included, in `twin run --json` and in the store (issue 7 item 11): a mean over
runs is then a mean over all of them, not over those that had the event."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from storage import open_store, read_kpis
from storage.testing import PG_URL_ENV, pg_test_schema
from twin.scenario import load_scenario

SMALL = Path(__file__).resolve().parents[1] / "scenarios" / "small.toml"
CAUSES = {"psu", "pump", "fan", "wafer", "cores", "thermal"}


def test_twin_run_json_has_every_cause_zeros_included(twin: click.Group) -> None:
    out = CliRunner().invoke(twin, ["run", str(SMALL), "--until", "1d", "--no-store", "--json"])
    assert out.exit_code == 0, out.output
    kpis = json.loads(out.output)["kpis"]
    for family in ("downtime_h", "outages"):
        assert set(kpis[family]) == CAUSES
        assert 0.0 in kpis[family].values()  # (in a day of the small hall) some are zero
    assert set(kpis["open_restores"]) == {"psu", "pump", "fan", "wafer"}


def stored_kpis(url: str) -> dict[str, float]:
    store = open_store(url)
    try:
        _, run_id = store.record(load_scenario(SMALL), until=24.0)
        return dict(read_kpis(store, run_id).itertuples(index=False))
    finally:
        store.close()


def check_every_cause(kpis: dict[str, float]) -> None:
    for family in ("downtime_h", "outages"):
        names = {name.removeprefix(f"{family}.") for name in kpis if name.startswith(family + ".")}
        assert names == CAUSES
    assert kpis["downtime_h.wafer"] == 0.0 and kpis["outages.thermal"] == 0.0


def test_the_sqlite_store_keeps_every_cause_zeros_included(tmp_path: Path) -> None:
    check_every_cause(stored_kpis(str(tmp_path / "store.db")))


def test_the_postgresql_store_keeps_every_cause_zeros_included() -> None:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set")
    with pg_test_schema(base) as url:
        check_every_cause(stored_kpis(url))
