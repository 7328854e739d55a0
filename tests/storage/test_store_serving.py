"""A run with serving in the store, on SQLite and PostgreSQL: `v_serving_tokens`
gives each tenant's tokens by kind and root cause, the example queries answer
"tokens lost by root cause" in one query, and both agree with the run's KPIs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from storage import Store
from storage.examples import EXAMPLES
from twin.scenario import load_scenario

SMALL = Path(__file__).resolve().parents[2] / "scenarios" / "small.toml"
SERVING = [
    "serving.hot_spares=0",
    'serving.deployments.chat={model = "llama-3.3-70b", bits = 8, batch = 32, replicas = 8}',
    # demand beyond the 8 replicas at the diurnal peak: overload and failures both cost
    'serving.tenants.a={deployment = "chat", requests_per_s = 600.0, profile = "diurnal"}',
    'serving.tenants.b={deployment = "chat", requests_per_s = 100.0, priority = 1}',
]


@pytest.fixture
def served(store: Store) -> tuple[int, dict[str, float]]:
    result, run_id = store.record(load_scenario(SMALL, SERVING), until=10 * 24.0)
    return run_id, result.kpis


def test_the_view_splits_every_serving_token_kpi(store: Store, served) -> None:
    run_id, kpis = served
    rows = store.query("SELECT run_id, scenario, tenant, kind, cause, tokens FROM "
                       "v_serving_tokens ORDER BY tenant, kind, cause")
    assert set(rows["run_id"]) == {run_id}
    got = {}
    for _, row in rows.iterrows():
        cause = row["cause"]
        name = f"serving.tokens.{row['kind']}.{row['tenant']}"
        got[name if cause is None or cause != cause else f"{name}.{cause}"] = row["tokens"]
    expected = {k: v for k, v in kpis.items() if k.startswith("serving.tokens.")}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert math.isclose(got[name], value, rel_tol=1e-12), name
    assert {"overload", "cores"} <= set(rows["cause"].dropna())


def test_tokens_lost_by_root_cause_is_one_query(store: Store, served) -> None:
    _, kpis = served
    lost = store.query(EXAMPLES["tokens_lost_by_cause"])
    by_cause = dict(zip(lost["cause"], lost["tokens_lost"], strict=True))
    for cause, tokens in by_cause.items():
        expected = sum(v for k, v in kpis.items()
                       if k.startswith("serving.tokens.lost.") and k.endswith(f".{cause}"))
        assert math.isclose(tokens, expected, rel_tol=1e-9), cause
    assert by_cause["overload"] > 0 and list(lost["tokens_lost"]) == sorted(
        lost["tokens_lost"], reverse=True)
    tenants = store.query(EXAMPLES["serving_by_tenant"])
    assert tenants["tenant"].tolist() == ["a", "b"]
    for _, row in tenants.iterrows():
        assert math.isclose(row["demanded"], row["served"] + row["lost"], rel_tol=1e-9)
