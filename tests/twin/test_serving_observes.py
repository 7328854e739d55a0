"""Serving watches the hall and never changes it: a run with a [serving] section has
the very same hall records (KPIs, events, metrics) as the run without it, bit for bit,
and a scenario without one keeps its document and hash."""

from __future__ import annotations

from pathlib import Path

from twinkit import same_events, same_kpis

from twin.engine import simulate
from twin.records import ListSink
from twin.scenario import Scenario, load_scenario

SMALL = Path(__file__).resolve().parents[2] / "scenarios" / "small.toml"

SERVING = [
    "serving.hot_spares=2",
    'serving.deployments.chat={model = "llama-3.3-70b", bits = 8, batch = 32, replicas = 5}',
    'serving.tenants.a={deployment = "chat", requests_per_s = 400.0, profile = "diurnal"}',
]


def records(scenario: Scenario) -> tuple[dict[str, float], ListSink]:
    sink = ListSink()
    result = simulate(scenario, until=10 * 24.0, sink=sink)
    return result.kpis, sink


def test_serving_leaves_every_record_of_the_hall_as_it_was():
    plain_kpis, plain = records(load_scenario(SMALL))
    kpis, served = records(load_scenario(SMALL, SERVING))
    assert any(k.startswith("serving.") for k in kpis)
    assert same_kpis(plain_kpis, {k: v for k, v in kpis.items() if not k.startswith("serving.")})
    hall_events = [e for e in served.events if not e.scope.startswith("hall.deployments.")]
    assert len(hall_events) < len(served.events)  # replicas went down (remaps at least)
    assert same_events(plain.events, hall_events)
    hall_series = [s for s in served.series
                   if not s.scope.startswith(("hall.tenants.", "hall.deployments."))]
    assert hall_series == plain.series


def test_a_scenario_without_serving_has_no_serving_key_in_its_document():
    scenario = load_scenario(SMALL)
    assert scenario.serving is None
    assert "serving" not in scenario.document()
    assert "serving" in load_scenario(SMALL, SERVING).document()
    assert load_scenario(SMALL, SERVING).digest() != scenario.digest()
