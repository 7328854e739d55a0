"""The bench's scenarios are the halls its sections say they are."""

from __future__ import annotations

import math

import pytest

from bench.scenarios import default_hall, scaled_hall
from twin.engine import simulate
from twin.scenario import Scenario


def test_the_saturated_point_is_65k_systems_with_the_default_hall_s_crews() -> None:
    base = default_hall()
    hall = scaled_hall(64, scale_crews=False)
    assert hall.systems == 64 * base.systems == 65_280
    assert hall.repair.crews == base.repair.crews
    assert hall.spare_systems.count == 64 * base.spare_systems.count
    assert hall.spares["psu"].stock == 64 * base.spares["psu"].stock


def test_a_scaled_hall_scales_its_crews_by_default() -> None:
    assert scaled_hall(4).repair.crews == 4 * default_hall().repair.crews


def test_the_training_hall_of_4k_nodes_has_about_10_000_failures_a_year() -> None:
    # issue 12's case: each unit, core-loss and wafer clock at its long-run rate
    # (1 / mean life) over a year, at the bench's LIFE_FACTOR
    from bench.training import TARGET_NODES, hall, training_hall

    def failures_a_year(scenario: Scenario) -> float:
        n, year = scenario.systems, 8760.0
        units = sum(c.count / c.failure.mean() for c in scenario.components.values())
        wafer = 1.0 / scenario.wafer.core_failures.mean() + 1.0 / scenario.wafer.failure.mean()
        return n * year * (units + wafer)

    plain, job = training_hall(TARGET_NODES)
    assert plain == hall(TARGET_NODES)
    assert job.training is not None and job.training.systems == TARGET_NODES
    assert TARGET_NODES * 1.25 <= plain.systems < TARGET_NODES * 1.5
    assert 9_500 <= failures_a_year(plain) <= 10_500
    assert failures_a_year(default_hall()) / default_hall().systems > 3 * (
        failures_a_year(plain) / plain.systems)


def test_a_run_reports_its_phases_and_events_to_the_benchmarks() -> None:
    phases: dict[str, float] = {}
    result = simulate(default_hall(), seed=1, until=200.0, phases=phases)
    assert set(phases) == {"build", "run", "post", "events"}
    assert all(phases[k] > 0.0 for k in ("build", "run", "post"))
    assert phases["build"] + phases["run"] + phases["post"] <= result.wall_s
    assert phases["events"] >= 1 and phases["events"] == int(phases["events"])


def _node_failures_per_h(scenario: Scenario) -> float:
    """A GPU node's failures per hour: every class's units at their long-run rate."""
    return sum(c.count / c.failure.mean() for c in scenario.components.values())


def test_the_gpu_training_hall_is_the_shipped_one_scaled_and_sped_up() -> None:
    # at the published rates the shipped GPU hall (2,300 nodes) three times over; sped
    # up, every cause's clock GPU_SPEEDUP times faster, so the job's 4,096 nodes fail
    # ~10,000 times a year at the Llama 3 table's rate (sources C1) times the speed-up
    from bench.scenarios import gpu_hall
    from bench.training import GPU_LIFE_FACTORS, GPU_SPEEDUP, TARGET_NODES, hall, training_hall
    from twin.gpu_node import node_rate_per_h

    published, sped_up = GPU_LIFE_FACTORS
    assert published == 1.0 and sped_up == 1.0 / GPU_SPEEDUP
    assert hall(TARGET_NODES, published, "gpu") == scaled_hall(3, gpu_hall())
    plain, job = training_hall(TARGET_NODES, sped_up, "gpu")
    assert plain.system.kind == "gpu_node" and plain.wafer is None
    assert plain.systems == 6_900 and plain.repair.crews == 3 * gpu_hall().repair.crews
    assert job.training is not None and job.training.systems == TARGET_NODES
    assert job.training.standbys == TARGET_NODES // 256
    rate = _node_failures_per_h(plain)
    assert rate == pytest.approx(GPU_SPEEDUP * node_rate_per_h(), rel=1e-9)
    assert _node_failures_per_h(hall(TARGET_NODES, published, "gpu")) == pytest.approx(
        node_rate_per_h(), rel=1e-9)
    assert 9_500 <= TARGET_NODES * 8760 * rate <= 10_500


def test_a_gpu_jobs_cost_counts_its_halls_failures_and_its_interruptions() -> None:
    # a month of the bench's GPU case at 1,024 nodes: the hall (2,300 nodes) and the
    # job's nodes fail at the sped-up table's rate, Poisson within 4 standard deviations;
    # the job changes nothing in the hall's failures (the same seed, the same draws)
    from bench.training import GPU_LIFE_FACTORS, hall, training_cost

    hours, nodes = 30 * 24.0, 1024
    c = training_cost(nodes, rounds=1, life_factor=GPU_LIFE_FACTORS[1], kind="gpu",
                      until=hours)
    assert (c.kind, c.nodes, c.hall_systems) == ("gpu", nodes, 2_300)
    rate = _node_failures_per_h(hall(nodes, c.life_factor, "gpu"))
    for count, mean in ((c.job.failures, 2_300 * hours * rate),
                        (c.job.interruptions, nodes * hours * rate)):
        assert abs(count - mean) <= 4 * math.sqrt(mean), (count, mean)
    assert c.plain.failures == c.job.failures and c.plain.interruptions == 0
    assert c.job.events > c.plain.events > c.plain.failures
    assert c.as_dict()["hall"] == "gpu" and c.as_dict()["job"]["failures"] == c.job.failures
