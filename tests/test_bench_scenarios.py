"""The bench's scenarios are the halls its sections say they are."""

from __future__ import annotations

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
