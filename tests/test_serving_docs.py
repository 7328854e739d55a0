"""The serving docs cover the code: every key of the [serving] table in
docs/scenarios.md, every serving KPI in the KPI table of docs/kpis.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from twin.engine import simulate
from twin.scenario import DeploymentSpec, ServingSpec, TenantSpec, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "scenarios" / "small.toml"


def test_every_serving_key_is_documented() -> None:
    text = (ROOT / "docs" / "scenarios.md").read_text()
    keys = [f"serving.{k}" for k in ServingSpec.model_fields if k not in ("deployments", "tenants")]
    keys += [f"serving.deployments.NAME.{k}" for k in DeploymentSpec.model_fields]
    keys += [f"serving.tenants.NAME.{k}" for k in TenantSpec.model_fields]
    keys.append("serving.tenants.NAME.rates_csv")  # read into `rates` when loaded
    for key in keys:
        assert f"| `{key}` |" in text, f"docs/scenarios.md does not document {key}"


@pytest.mark.parametrize(("fidelity", "hours"), [("fluid", 24.0), ("request", 1.0)])
def test_every_serving_kpi_is_in_the_kpi_table(fidelity: str, hours: float) -> None:
    text = (ROOT / "docs" / "kpis.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    scenario = load_scenario(SMALL, [
        'serving.deployments.chat={model = "llama-3.1-8b", bits = 8, replicas = 2}',
        'serving.tenants.a={deployment = "chat", requests_per_s = 10.0}',
        f"serving.fidelity={fidelity}",
    ])
    kpis = simulate(scenario, until=hours).kpis
    causes = {*scenario.components, "wafer", "cores", "thermal", "overload"}
    serving = [name for name in kpis if name.startswith("serving.")]
    assert serving
    for name in serving:
        parts = name.split(".")
        generic = ".".join(
            "<tenant>" if p == "a" else "<deployment>" if p == "chat"
            else "<cause>" if p in causes and i == len(parts) - 1 and "lost" in parts else p
            for i, p in enumerate(parts)
        )
        assert generic in rows, f"no row of the KPI table defines {name} ({generic})"
