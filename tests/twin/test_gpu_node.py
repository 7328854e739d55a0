"""The GPU node: its failure table reproduces the Llama 3 run's (sources C1), and a
training job's interruptions grow in proportion to its nodes (issue 12, item 5)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import poisson

from twin import gpu_node
from twin.engine import simulate
from twin.errors import ScenarioError
from twin.gpu_node import CAUSES, GPUS_PER_NODE, LLAMA3, node_rate_per_h, unit_mean_h
from twin.scenario import Scenario, SystemSpec, parse_scenario

# unexpected interruptions per node-hour of the run: 419 in 2,048 nodes x 54 days
RATE = 419 / (2048 * 54 * 24.0)
QUIET = {"events": False, "scope_level": "none"}


def _gpu_hall(nodes: int, **extra: Any) -> Scenario:
    """A hall of `nodes` GPU nodes (4 to a rack, one row), recording no events."""
    return Scenario(system={"kind": "gpu_node"}, recording=QUIET,
                    hall={"rows": 1, "racks_per_row": math.ceil(nodes / 4),
                          "systems_per_rack": 4}, **extra)


def test_the_table_gives_the_runs_published_rates() -> None:
    assert sum(c.count for c in CAUSES) == LLAMA3.unexpected == 419
    assert len({c.name for c in CAUSES}) == len(CAUSES) == 18
    assert node_rate_per_h() == pytest.approx(RATE, rel=1e-12)
    assert node_rate_per_h() * 24 * 1000 == pytest.approx(3.79, abs=0.005)  # per 1,000 node-days
    assert 1 / (LLAMA3.nodes * node_rate_per_h()) == pytest.approx(3.09, abs=0.005)  # MTBI, h
    per_gpu = node_rate_per_h() / GPUS_PER_NODE
    assert per_gpu * 8760 == pytest.approx(0.173, abs=0.0005)  # per GPU-year
    assert 1 / per_gpu == pytest.approx(50_700, rel=0.001)  # per-GPU MTBF, h


def test_a_gpu_node_system_has_a_nodes_power_however_it_is_made() -> None:
    # the kind's defaults live in SystemSpec: a table made on its own has them too
    node = SystemSpec(kind="gpu_node")
    assert (node.power, node.idle_power, node.boot_time) == (10.2, 2.0, pytest.approx(1 / 6))
    assert SystemSpec(kind="gpu_node", power="8 kW").power == 8.0
    assert SystemSpec().power == 23.0  # a wafer-scale system's


def test_a_gpu_node_scenario_carries_the_table_as_its_classes() -> None:
    scenario = _gpu_hall(4)
    assert scenario.system.power == 10.2 and scenario.wafer is None
    assert scenario.spare_systems is None
    assert set(scenario.components) == {c.name for c in CAUSES}
    for cause in CAUSES:
        spec = scenario.components[cause.name]
        assert spec.count == spec.required == (8 if cause.per_gpu else 1)
        assert spec.failure.mean() == pytest.approx(unit_mean_h(cause), rel=1e-12)
        assert spec.escalate_probability == cause.escalate
        assert spec.part in scenario.spares
    assert scenario.components["gpu"].failure.mean() == pytest.approx(16384 * 1296 / 148)
    assert scenario.components["software"].failure.mean() == pytest.approx(2048 * 1296 / 54)


def test_the_llama_3_fleet_for_its_54_days_fails_as_its_table_says() -> None:
    # 2,048 nodes for 54 days: the run's own exposure, so each cause's failures are
    # Poisson with the table's count as mean (18 causes at 0.1 % each, two-sided)
    k = simulate(_gpu_hall(2048), seed=1, until=54 * 24.0).kpis
    for cause in CAUSES:
        low, high = poisson.ppf(0.0005, cause.count), poisson.isf(0.0005, cause.count)
        assert low <= k[f"failures.{cause.name}"] <= high, cause.name
    total = sum(k[f"failures.{c.name}"] for c in CAUSES)
    assert abs(total - 419) <= 4 * math.sqrt(419)
    # each failure takes its node down: an interruption (a second failure of a node
    # already down is rare: down ~0.05 % of the time)
    outages = sum(k[f"outages.{c.name}"] for c in CAUSES)
    assert total - 3 <= outages <= total
    assert "failures.wafer" not in k and "spare_systems.used" not in k
    assert "downtime_h.wafer" not in k and "downtime_h.cores" not in k


# Shelves no repair waits at, whatever the hall's size
PLENTY = {part: {"stock": 10_000, "reorder_point": 5_000, "order_quantity": 5_000,
                 "lead_time": "12 d"} for part in gpu_node.SPARES}


def _job_interruptions(nodes: int, days: float, seed: int = 1) -> tuple[float, float]:
    """Interruptions of a job on `nodes` nodes of a GPU hall over `days`, with 16 warm
    standbys and parts on the shelf (a failed node is replaced at once, repaired within
    hours: no slot waits), and its waiting hours."""
    scenario = _gpu_hall(nodes + 24, spares=PLENTY, training={
        "systems": nodes, "work": "50 y", "checkpoint_interval": "2 h",
        "checkpoint_cost": "5 min", "restart_cost": "20 min", "standbys": 16,
    })
    k = simulate(scenario, seed=seed, until=days * 24.0).kpis
    return k["training.interruptions"], k["training.lost_h.waiting"]


# Each size runs for as long as ~400 interruptions take: 825, 206 and 52 days
SIZES = (128, 512, 2048)
EXPECTED = 400.0


def _scaling(seeds: range) -> None:
    per_day = {}
    for nodes in SIZES:
        days = EXPECTED / (RATE * 24.0 * nodes)
        counts = [_job_interruptions(nodes, days, seed) for seed in seeds]
        assert all(waiting == 0.0 for _, waiting in counts), nodes
        n = sum(c for c, _ in counts)
        exposure = nodes * days * 24.0 * len(seeds)  # node-hours in the gang
        # Poisson: within 4 standard deviations of the run's rate
        assert abs(n - RATE * exposure) <= 4 * math.sqrt(RATE * exposure), (nodes, n)
        per_day[nodes] = n / (days * len(seeds))
    # interruptions per day in proportion to nodes: 4x and 16x those of 128 nodes, within
    # the combined 4-sigma band of the two counts' relative errors
    n_each = EXPECTED * len(seeds)
    band = 4 * math.sqrt(2 / n_each)
    for nodes in SIZES[1:]:
        assert per_day[nodes] / per_day[128] == pytest.approx(nodes / 128, rel=band)
    # 3.79 per 1,000 node-days (sources C1)
    assert per_day[2048] / 2048 * 1000 == pytest.approx(3.79, rel=4 / math.sqrt(n_each))


def test_a_jobs_interruptions_grow_in_proportion_to_its_nodes() -> None:
    _scaling(range(1, 2))


@pytest.mark.slow
def test_a_jobs_interruptions_grow_in_proportion_to_its_nodes_over_ten_seeds() -> None:
    _scaling(range(1, 11))


@pytest.mark.parametrize(("table", "expected"), [
    ({"wafer": {"remap_time": "1 h"}}, "no [wafer] on a gpu_node hall"),
    ({"spare_systems": {"count": 3}}, "no [spare_systems] on a gpu_node hall"),
    ({"package": {}}, "no [package] on a gpu_node hall"),
])
def test_a_wafer_table_on_a_gpu_hall_is_an_error_naming_it(table: dict[str, Any],
                                                           expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"system": {"kind": "gpu_node"}, **table}, "gpu.toml")
    key = next(iter(table))
    assert caught.value.key == key and expected in str(caught.value)


def test_an_unknown_kind_names_the_key() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"system": {"kind": "gpu"}}, "gpu.toml")
    assert caught.value.key == "system.kind" and "gpu_node" in str(caught.value)


def test_the_kind_is_left_out_of_a_wafer_halls_document() -> None:
    assert "kind" not in Scenario().document()["system"]
    assert Scenario(system={"kind": "wafer"}).digest() == Scenario().digest()
    gpu = _gpu_hall(8)
    document = gpu.document()
    assert document["system"]["kind"] == "gpu_node"
    assert "wafer" not in document and "spare_systems" not in document
    assert parse_scenario(document, "again") == gpu  # the document reads back the same


def test_a_gpu_node_scenario_keeps_its_own_values_over_the_kinds_defaults() -> None:
    scenario = Scenario(system={"kind": "gpu_node", "power": "8 kW"},
                        components={"gpu": {"escalate_probability": 0.5}})
    assert scenario.system.power == 8.0 and scenario.system.boot_time == pytest.approx(1 / 6)
    assert scenario.components["gpu"].escalate_probability == 0.5
    assert scenario.components["gpu"].count == 8
    assert scenario.spares["gpu"].stock == gpu_node.SPARES["gpu"]["stock"]
