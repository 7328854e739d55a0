"""Every shipped scenario runs, and does what the comment at its top says.

The smoke test runs each file briefly through `twin run`; the behaviour tests
run a whole simulated year (well under a second each) and compare a scenario
with `hall.toml` under the same seed.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from twin import load_scenario, simulate

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
Kpis = dict[str, float]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_runs_briefly_with_sane_kpis(twin: click.Group, path: Path) -> None:
    result = CliRunner().invoke(twin, ["run", str(path), "--until", "3d", "--no-store", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    scenario = load_scenario(path)
    assert out["scenario"] == scenario.name == path.stem
    assert out["simulated_days"] == 3.0
    assert out["systems"] == scenario.systems
    kpis = out["kpis"]
    assert 0.0 <= kpis["availability"] <= 1.0
    assert 0.0 <= kpis["capacity"] <= kpis["availability"] + 1e-12
    full_load_mwh = scenario.systems * scenario.system.power * 72.0 / 1000.0
    assert 0.0 < kpis["energy"]["it_mwh"] <= full_load_mwh
    assert all(count >= 0 for count in kpis["failures"].values())
    wafer = {"wafer", "cores"} if scenario.wafer is not None else set()  # not on GPU nodes
    assert set(kpis["failures"]) >= set(scenario.components) | wafer
    assert 0.0 <= kpis["repair"]["crew_utilization"] <= 1.0


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_says_what_it_is_for(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# "), "a comment at the top says what the scenario is for"
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.description


@functools.cache
def year(stem: str) -> Kpis:
    """KPIs of a whole simulated year of a shipped scenario, seed 1."""
    scenario = load_scenario(SCENARIOS / f"{stem}.toml")
    return simulate(scenario, seed=1, until=8760.0).kpis


def hall_is_the_1020_system_reference_hall(k: Kpis) -> None:
    scenario = load_scenario(SCENARIOS / "hall.toml")
    assert scenario.systems == 1020 and scenario.run.until == 8760.0
    assert k["availability"] > 0.99


def small_is_24_systems_for_30_days() -> None:
    scenario = load_scenario(SCENARIOS / "small.toml")
    assert scenario.systems == 24
    assert scenario.run.until == 30 * 24.0
    result = simulate(scenario)
    assert result.systems == 24 and result.until_h == 720.0


def pump_stress_throttles_and_trips(k: Kpis, hall: Kpis) -> None:
    # worn pumps fail more often, and warm water leaves less headroom: throttling and trips
    assert k["failures.pump"] > 3 * hall["failures.pump"]
    assert k["thermal.throttle_events"] > 10 * max(hall["thermal.throttle_events"], 1.0)
    assert k["thermal.trips"] > hall["thermal.trips"]
    assert k["thermal.throttle_h"] > hall["thermal.throttle_h"]
    assert k["capacity"] < hall["capacity"]


def bad_wafers_degrade_and_use_spare_systems(k: Kpis, hall: Kpis) -> None:
    # the bad lot loses cores 100x faster: many wafers run degraded, and the swaps
    # are mostly of wafers left with too few cores...
    assert k["wafer.degraded_systems"] > 0.02 * load_scenario(SCENARIOS / "hall.toml").systems
    assert k["wafer.defect_cores"] > 2 * hall["wafer.defect_cores"]  # D0 0.3 vs 0.1 /cm2
    assert k["failures.cores"] > 2 * hall["failures.cores"]
    outright = k["failures.wafer"] - k["wafer.failed_for_cores"]
    assert k["wafer.failed_for_cores"] > outright
    # ...while outright failures (package, cold plate) stay at the hall's rate: at most
    # systems x year / mean life, plus 4 Poisson sigmas
    expected = 1020 * 8760.0 / 200_000.0
    assert outright <= expected + 4 * math.sqrt(expected)
    assert k["spare_systems.used"] > hall["spare_systems.used"]
    assert k["availability"] < hall["availability"]


def night_shift_waits_for_crews_and_psus(k: Kpis, hall: Kpis) -> None:
    assert k["mttr_h.psu"] > 2 * hall["mttr_h.psu"]
    assert k["mttr_h.fan"] > hall["mttr_h.fan"]
    assert k["spares.stockouts.psu"] > hall["spares.stockouts.psu"]
    assert k["repair.crew_utilization"] > hall["repair.crew_utilization"]


def serving_serves_three_tenants_under_failures(k: Kpis, hall: Kpis) -> None:
    # the hall is the default one: serving only watches it
    assert k["availability"] == hall["availability"]
    for tenant in ("chat", "code", "api"):
        served = k[f"serving.tokens.served.{tenant}"]
        assert 0.98 * k[f"serving.tokens.demanded.{tenant}"] < served
        assert served <= k[f"serving.tokens.demanded.{tenant}"]
        assert 0.99 < k[f"serving.slo_attainment.{tenant}"] <= 1.0
        lost = sum(v for name, v in k.items() if name.startswith(f"serving.tokens.lost.{tenant}."))
        assert served + lost == pytest.approx(k[f"serving.tokens.demanded.{tenant}"], rel=1e-9)
    # the chat peak exceeds its admitted capacity now and then, and remaps cost tokens
    assert k["serving.tokens.lost.chat.overload"] > 0
    assert k["serving.tokens.lost.chat.cores"] > 0
    assert k["serving.failovers"] > 0
    assert 119 < k["serving.replicas_available.chat"] < 120


def reservation_costs_the_chat_tenant(k: Kpis, serving: Kpis) -> None:
    cost, gain = k["serving.reservation_cost.chat"], -k["serving.reservation_cost.preferred"]
    assert cost > 0 and gain > 0
    assert cost > gain  # held replicas stand idle when the preferred customer is quiet
    assert k["serving.tokens.served.preferred"] == k["serving.tokens.demanded.preferred"]
    assert k["serving.tokens.served.chat"] < serving["serving.tokens.served.chat"]


def sixteen_bit_chat_serves_fewer_tokens(k: Kpis, serving: Kpis) -> None:
    assert load_scenario(SCENARIOS / "serving-16bit.toml").serving.systems_per_replica()[
        "chat"] == 6
    assert k["serving.tokens.served.chat"] < 0.9 * serving["serving.tokens.served.chat"]
    assert k["serving.tokens.lost.chat.overload"] > serving["serving.tokens.lost.chat.overload"]
    assert k["serving.tokens.served.code"] == serving["serving.tokens.served.code"]


def long_context_tenant_waits_and_needs_four_systems(k: Kpis, serving: Kpis) -> None:
    assert load_scenario(SCENARIOS / "serving-long-context.toml").serving.systems_per_replica()[
        "long"] == 4
    # 120 slots instead of thousands: its requests wait, the others' hardly; with a
    # prefill of ~0.07 s of its 0.1 s TTFT, the wait makes some miss it
    assert k["serving.delay_mean_s.docs"] > 100 * k["serving.delay_mean_s.chat"]
    assert k["serving.delay_p99_s.docs"] > 0
    assert 0.5 < k["serving.ttft_attainment.docs"] < 0.999
    assert k["serving.tokens.served.api"] == k["serving.tokens.demanded.api"]


def heat_ageing_doubles_pump_and_fan_failures(k: Kpis, hall: Kpis) -> None:
    # at 40 C the wafer settles at 40 + 23 x 1.8 = 81.4 C: AF = exp(0.7 eV / k
    # (1/344.15 K - 1/354.55 K)) = 2.0 over the 71 C reference, nearly all the time
    af = math.exp(0.7 / 8.617333262e-5 * (1 / 344.15 - 1 / 354.55))
    for name in ("pump", "fan"):
        assert k[f"ageing.af_mean.{name}"] == pytest.approx(af, rel=0.01)
        assert k[f"failures.{name}"] > 1.8 * hall[f"failures.{name}"]
    assert k["failures.psu"] == hall["failures.psu"]  # no Arrhenius table: its own draws
    assert k["thermal.throttle_h"] > 100 * hall["thermal.throttle_h"]  # a pump down: 85.5 C
    # packages: a few cycles a year (trips, outages), damage far from cracking
    assert k["package.cycles"] >= k["thermal.trips"] > 0
    assert 0.0 < k["package.damage_max"] < 0.01
    assert k["failures.package"] == 0.0


def generator_failure_is_ridden_out_by_feed_b(k: Kpis, hall: Kpis) -> None:
    # source A dies (battery empty, no generator) at least on day 180; each system
    # keeps its six feed-B PSUs, so only one with a feed-B PSU out at that moment drops
    assert k["facility.source_losses"] >= 1
    assert k["facility.generator_failures"] >= 11
    assert k["downtime_h.generator.A"] <= 10.0
    assert k["availability"] >= hall["availability"] - 1e-5


def n_plus_1_loses_the_hall_where_2n_rides_through(n1: Kpis, two_n: Kpis) -> None:
    # the same poor generator plant: with one source a dead source drops every system
    assert n1["facility.source_losses"] >= 1
    assert n1["downtime_h.generator.A"] > 1020 * 0.5  # at least half an hour of the hall
    assert two_n["facility.source_losses"] >= 1
    dead_2n = sum(two_n[f"downtime_h.{p}.{x}"] for p in ("generator", "ups") for x in "AB")
    assert dead_2n < 0.01 * n1["downtime_h.generator.A"]
    assert n1["availability"] < two_n["availability"]


def chiller_loss_throttles_the_hall_for_two_days(k: Kpis, facility: Kpis) -> None:
    # 16 MW of chillers for 23.5 MW: every system throttles until the heat fits
    systems = 1020
    assert k["thermal.throttle_h"] > 0.9 * systems * 48.0
    assert k["thermal.throttle_h"] < systems * 48.0 + 10.0 * facility["thermal.throttle_h"] + 10.0
    assert k["facility.inlet_max_c"] > 45.0
    assert k["capacity"] < facility["capacity"] - 0.001
    assert k["availability"] == pytest.approx(facility["availability"], abs=1e-4)


def pump_failure_in_a_heat_wave_throttles_one_row(k: Kpis, facility: Kpis) -> None:
    row = 51  # systems in row 1
    extra = k["thermal.throttle_h"] - facility["thermal.throttle_h"]
    assert 0.9 * row * 72.0 < extra <= row * 72.0 + 1.0
    assert k["facility.inlet_max_c"] > 45.0
    assert k["facility.pue"] > facility["facility.pue"]  # the heat wave's COP


def dry_coolers_save_energy_but_a_heat_wave_trips_the_hall(k: Kpis, facility: Kpis) -> None:
    # fans instead of compressors: a fifth of the cooling energy, PUE ~1.09 against ~1.25
    assert k["energy.cooling_mwh"] < 0.3 * facility["energy.cooling_mwh"]
    assert k["facility.pue"] < facility["facility.pue"] - 0.1
    # the heat wave's air is above supply - approach: the water warms, the hall trips
    assert k["thermal.trips"] > 100 * max(facility["thermal.trips"], 1.0)
    assert k["downtime_h.chiller"] > 1000.0
    assert k["facility.inlet_max_c"] > 60.0
    assert k["availability"] < facility["availability"] - 1e-3


def facility_costs_energy_not_availability(k: Kpis, hall: Kpis) -> None:
    assert 1.1 < k["facility.pue"] < 1.4  # liquid-cooled AI halls 1.1-1.2 (sources F1)
    total = k["energy.it_mwh"] + k["energy.cooling_mwh"] + k["energy.losses_mwh"]
    assert k["energy.facility_mwh"] == pytest.approx(total, rel=1e-12)
    assert k["availability"] == pytest.approx(hall["availability"], abs=1e-4)


def power_cap_costs_a_fifth_of_the_work(k: Kpis, facility: Kpis) -> None:
    assert k["power.it_mean_kw"] <= 18768.0
    assert k["capacity"] == pytest.approx(0.8 * facility["capacity"], rel=0.01)
    assert k["energy.facility_mwh"] < 0.85 * facility["energy.facility_mwh"]
    assert k["facility.capped_systems"] == 408  # 4,692 kW off at 11.5 kW a system
    assert k["thermal.trips"] <= facility["thermal.trips"]


def training_job_shows_where_its_wall_time_goes(k: Kpis, hall: Kpis) -> None:
    work = 30 * 24.0
    assert k["training.done_fraction"] == 1.0
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.wall_h"] == pytest.approx(work + lost, rel=1e-9)
    assert k["training.goodput"] == pytest.approx(work / k["training.wall_h"], rel=1e-12)
    assert 0.6 < k["training.goodput"] < 0.95
    assert k["training.lost_h.rework"] > k["training.lost_h.restart"] > 0
    assert k["training.interruptions"] > 20
    assert 0 < k["training.standbys_used"] <= k["training.interruptions"]
    # the job draws nothing: the hall around it fails exactly as without it
    assert k["availability"] == hall["availability"]
    assert k["outages.psu"] == hall["outages.psu"]


def continuous_checkpointing_wins_back_rework_and_checkpoints(k: Kpis, periodic: Kpis) -> None:
    work = 30 * 24.0
    assert k["training.lost_h.rework"] == k["training.lost_h.checkpoint"] == 0.0
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.wall_h"] == pytest.approx(work + lost, rel=1e-9)
    # the periodic job loses ~19 % of its wall time, this one only its recoveries
    # (Gemini's largest job: goodput 85 % -> 97 %, sources.md C2b)
    assert k["training.goodput"] > 0.94 > 0.85 > periodic["training.goodput"]
    assert k["training.lost_h.restart"] == pytest.approx(
        k["training.interruptions"] * 20 / 60, rel=0.05)  # ~ one recovery per failure


def preemptible_pool_lends_machines_to_the_job_and_gets_them_back(k: Kpis, hall: Kpis) -> None:
    work = 30 * 24.0
    reclaimed = k["training.reclaimed"]
    assert reclaimed == k["training.swaps.preemptible"] > 20  # the standby is often out
    assert k["training.preemptible.work_lost_h"] == reclaimed * 1.0
    assert 0.0 < k["training.lost_h.reclaim"] <= reclaimed * 0.25  # some cut short
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.wall_h"] == pytest.approx(work + lost, rel=1e-9)
    # loans are repaid: the pool's 19 systems ran preemptible work > 99 % of the time
    assert k["training.preemptible.taken_h"] < 0.01 * 19 * k["training.wall_h"]
    assert k["availability"] == hall["availability"]


# unexpected interruptions per node-hour of the Llama 3 run (sources C1)
GPU_RATE = 419 / (2048 * 54 * 24.0)


def gpu_hall_fails_as_the_llama_3_run_did(k: Kpis, hall: Kpis) -> None:
    gpu, wafer = (load_scenario(SCENARIOS / f"{s}.toml") for s in ("gpu-hall", "hall"))
    assert gpu.systems == 2300 and gpu.system.kind == "gpu_node"
    # the same facility power: 2,300 x 10.2 kW = 1,020 x 23 kW = 23.46 MW
    assert gpu.systems * gpu.system.power == pytest.approx(wafer.systems * wafer.system.power)
    assert k["power.it_mean_kw"] == pytest.approx(hall["power.it_mean_kw"], rel=0.002)
    interruptions = sum(k[f"outages.{c}"] for c in gpu.components)
    expected = GPU_RATE * 2300 * 8760
    assert abs(interruptions - expected) <= 4 * math.sqrt(expected)
    assert max(gpu.components, key=lambda c: k[f"failures.{c}"]) == "gpu"
    assert "failures.wafer" not in k and "spare_systems.used" not in k
    assert k["availability"] > 0.999
    assert sum(k[f"spares.stockouts.{p}"] for p in gpu.spares) == 0
    assert 0.1 < k["repair.crew_utilization"] < 0.3


def gpu_job_is_interrupted_every_three_hours(k: Kpis, wafer: Kpis) -> None:
    work = 30 * 24.0
    assert k["training.done_fraction"] == 1.0
    lost = sum(v for name, v in k.items() if name.startswith("training.lost_h."))
    assert k["training.wall_h"] == pytest.approx(work + lost, rel=1e-9)
    # 2,022 nodes at the run's rate: every ~3.1 h, as the Llama 3 run's 2,048 nodes
    expected = GPU_RATE * 2022 * k["training.wall_h"]
    assert abs(k["training.interruptions"] - expected) <= 4 * math.sqrt(expected)
    assert k["training.mtbi_h"] == pytest.approx(3.09, rel=0.2)
    assert k["training.lost_h.waiting"] == 0.0  # the standbys cover every failure
    # the wafer job of training.toml is interrupted less often and loses less to rework
    assert k["training.mtbi_h"] < wafer["training.mtbi_h"]
    assert k["training.goodput"] < wafer["training.goodput"]
    assert 0.4 < k["training.goodput"] < 0.8


def gpu_serving_serves_the_same_demand(k: Kpis, wafer: Kpis) -> None:
    for tenant in ("chat", "code", "api"):
        demanded = k[f"serving.tokens.demanded.{tenant}"]
        assert demanded == pytest.approx(wafer[f"serving.tokens.demanded.{tenant}"], rel=1e-12)
        assert k[f"serving.tokens.served.{tenant}"] > 0.98 * demanded
    # a node's sequences decode at tens of tokens a second: the wafer-speed TPOT SLOs of
    # chat and code are out of reach, the API's 50 tokens/s is met
    assert k["serving.tpot_attainment.chat"] == k["serving.tpot_attainment.code"] == 0.0
    assert k["serving.slo_attainment.api"] > 0.99
    assert k["serving.tokens.lost.chat.gpu"] > 0 and k["serving.failovers"] > 0
    assert 749 < k["serving.replicas_available.chat"] < 750


def simulator_semantics_take_effect() -> None:
    stem = "training-simulator-semantics"
    path = SCENARIOS / f"{stem}.toml"
    scenario = load_scenario(path)
    assert scenario.training is not None and scenario.training.ageing == "while_running"
    # the repair options, seen in a year where every system ages (the hall's default)
    always = load_scenario(path, ["training.ageing=always"])
    half, k = (simulate(always, seed=1, until=t).kpis for t in (4380.0, 8760.0))
    assert k["repair.crew_utilization"] == 0.0  # unlimited crews
    assert k["repair.auto_silent_failures"] > 0
    assert k["training.done_fraction"] == 1.0
    # lemon interfaces cleared by replacements: fewer failures in the second half-year
    assert k["failures.nic"] - half["failures.nic"] < half["failures.nic"]
    # only the job's systems age: fewer failures than when every system ages
    running = year(stem)
    for cause in ("nic", "psu", "cores"):
        assert running[f"failures.{cause}"] < k[f"failures.{cause}"]


BEHAVIOUR: dict[str, Callable[[], None]] = {
    "gpu-hall": lambda: gpu_hall_fails_as_the_llama_3_run_did(year("gpu-hall"), year("hall")),
    "gpu-training": lambda: gpu_job_is_interrupted_every_three_hours(
        year("gpu-training"), year("training")
    ),
    "gpu-serving": lambda: gpu_serving_serves_the_same_demand(
        year("gpu-serving"), year("serving")
    ),
    "training-simulator-semantics": simulator_semantics_take_effect,
    "training": lambda: training_job_shows_where_its_wall_time_goes(year("training"), year("hall")),
    "training-continuous": lambda: continuous_checkpointing_wins_back_rework_and_checkpoints(
        year("training-continuous"), year("training")
    ),
    "training-preemptible": lambda: preemptible_pool_lends_machines_to_the_job_and_gets_them_back(
        year("training-preemptible"), year("hall")
    ),
    "hall": lambda: hall_is_the_1020_system_reference_hall(year("hall")),
    "small": small_is_24_systems_for_30_days,
    "pump-stress": lambda: pump_stress_throttles_and_trips(year("pump-stress"), year("hall")),
    "bad-wafers": lambda: bad_wafers_degrade_and_use_spare_systems(
        year("bad-wafers"), year("hall")
    ),
    "night-shift": lambda: night_shift_waits_for_crews_and_psus(year("night-shift"), year("hall")),
    "heat-ageing": lambda: heat_ageing_doubles_pump_and_fan_failures(
        year("heat-ageing"), year("hall")
    ),
    "serving": lambda: serving_serves_three_tenants_under_failures(year("serving"), year("hall")),
    "serving-reservation": lambda: reservation_costs_the_chat_tenant(
        year("serving-reservation"), year("serving")
    ),
    "serving-16bit": lambda: sixteen_bit_chat_serves_fewer_tokens(
        year("serving-16bit"), year("serving")
    ),
    "serving-long-context": lambda: long_context_tenant_waits_and_needs_four_systems(
        year("serving-long-context"), year("serving")
    ),
    "generator-fails": lambda: generator_failure_is_ridden_out_by_feed_b(
        year("generator-fails"), year("hall")
    ),
    "power-2n": lambda: n_plus_1_loses_the_hall_where_2n_rides_through(
        year("power-n1"), year("power-2n")
    ),
    "power-n1": lambda: n_plus_1_loses_the_hall_where_2n_rides_through(
        year("power-n1"), year("power-2n")
    ),
    "facility": lambda: facility_costs_energy_not_availability(year("facility"), year("hall")),
    "power-cap": lambda: power_cap_costs_a_fifth_of_the_work(year("power-cap"), year("facility")),
    "chiller-lost": lambda: chiller_loss_throttles_the_hall_for_two_days(
        year("chiller-lost"), year("facility")
    ),
    "pump-heatwave": lambda: pump_failure_in_a_heat_wave_throttles_one_row(
        year("pump-heatwave"), year("facility")
    ),
    "dry-cooler": lambda: dry_coolers_save_energy_but_a_heat_wave_trips_the_hall(
        year("dry-cooler"), year("facility")
    ),
}


def test_every_shipped_scenario_has_a_behaviour_test() -> None:
    assert sorted(BEHAVIOUR) == sorted(p.stem for p in SHIPPED)


@pytest.mark.parametrize("stem", sorted(BEHAVIOUR))
def test_each_scenario_does_what_its_comment_says(stem: str) -> None:
    BEHAVIOUR[stem]()


def test_in_the_semantics_scenario_only_the_systems_of_the_job_age() -> None:
    k = year("training-simulator-semantics")
    # the job's 16 systems of 24 age for its ~48 days, nothing after: some failures,
    # far fewer than a year of the whole hall
    assert k["training.done_fraction"] == 1.0
    everyone = simulate(load_scenario(SCENARIOS / "training-simulator-semantics.toml",
                                      ["training.ageing=always"]), seed=1, until=8760.0).kpis
    assert 0 < k["failures.cores"] < 0.5 * everyone["failures.cores"]
    assert k["training.interruptions"] > 0


@pytest.mark.parametrize("stem", ["hall", "pump-stress", "bad-wafers", "night-shift",
                                  "heat-ageing"])
def test_a_year_of_each_hall_keeps_its_kpis_in_range(stem: str) -> None:
    k = year(stem)
    assert 0.0 <= k["availability"] <= 1.0
    assert 0.0 <= k["repair.crew_utilization"] <= 1.0
    assert k["energy.it_mwh"] > 0
    nan = [name for name, value in k.items() if math.isnan(value)]
    # only a mean with nothing to average: an MTTR with no repairs, an age with none open
    assert all(name.startswith(("mttr_", "open_age_h.")) for name in nan)


def test_pump_stress_shows_cooling_not_logistics() -> None:
    k = year("pump-stress")
    assert k["spares.stockouts.pump"] <= 0.1 * k["failures.pump"]
