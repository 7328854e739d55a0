"""The wafer: Poisson defects at manufacture, core loss, degradation and swaps.

Closed forms: a wafer of area A at defect density D0 gets Poisson(D0 A)
defects (sources D3; sources A2: D0 = 0.1/cm2 on 46,225 mm2 gives ~46.2). Hits
land on uniformly random cores, so core c gets Poisson(D0 A / N) of them
independently, and the number of distinct dead cores has mean
N (1 - exp(-D0 A / N)) and variance N p (1 - p) with p = 1 - exp(-D0 A / N).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from twinkit import of, quiet_scenario, run_logged

from twin.engine import simulate
from twin.errors import ScenarioError
from twin.mechanisms.wafer import MAX_DEAD_AT_ONE_INSTANT, manufacture_defects
from twin.scenario import WaferSpec, lost_cores_allowed, working_wafer_log_bound

WAFERS = 20_000


def wafer(**keys) -> WaferSpec:
    return WaferSpec.model_validate(keys)


def test_facts_a2_vector_d0_times_area_is_about_46_defects_per_wafer():
    spec = wafer(area="46225 mm2", defect_density="0.1 /cm2")
    assert spec.defect_density * spec.area == pytest.approx(46.225)


def test_defect_counts_are_poisson_with_mean_and_variance_d0_times_area():
    spec = wafer(area="46225 mm2", defect_density="0.1 /cm2")
    lam = 46.225
    defects, _ = manufacture_defects(np.random.default_rng(11), WAFERS, spec)
    # 4 sigma: SE of the mean sqrt(lam/n); SE of the sample variance of a
    # Poisson sqrt((lam + 2 lam^2)/n) (fourth central moment lam + 3 lam^2)
    assert defects.mean() == pytest.approx(lam, abs=4 * math.sqrt(lam / WAFERS))
    assert defects.var(ddof=1) == pytest.approx(lam, abs=4 * math.sqrt((lam + 2 * lam**2) / WAFERS))


def test_two_defects_on_one_core_kill_it_once():
    # 50 physical cores and ~46 hits per wafer: collisions on most wafers.
    n_cores = 50
    spec = wafer(area="46225 mm2", defect_density="0.1 /cm2", physical_cores=n_cores,
                 active_cores=40)
    defects, dead = manufacture_defects(np.random.default_rng(12), WAFERS, spec)
    p = 1.0 - math.exp(-46.225 / n_cores)
    mean, var = n_cores * p, n_cores * p * (1 - p)
    assert np.all(dead <= np.minimum(defects, n_cores))
    assert np.all((dead > 0) == (defects > 0))
    # 4 sigma of the mean of WAFERS independent wafers; the no-collision
    # answer (46.2) is ~600 sigma away
    assert dead.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / WAFERS))


class _Draws:
    """Stands in for the defects stream: the given defect counts and hit cores."""

    def __init__(self, defects: list[int], hits: list[int]) -> None:
        self._defects = np.array(defects, dtype=np.int64)
        self._hits = np.array(hits, dtype=np.int64)

    def poisson(self, lam: float, size: int) -> np.ndarray:
        assert size == self._defects.size
        return self._defects

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        assert size == self._hits.size and self._hits.max(initial=low) < high
        return self._hits


@pytest.mark.parametrize(
    ("defects", "hits", "dead"),
    [
        # a core hit twice, first and last keys repeated, and the same core on two wafers
        ([3, 0, 2, 4], [0, 5, 0, 5, 9, 9, 9, 1, 9], [2, 0, 2, 2]),
        ([1], [0], [1]),
        ([0, 0], [], [0, 0]),
    ],
)
def test_each_wafer_counts_every_distinct_core_hit_exactly_once(defects, hits, dead):
    spec = wafer(physical_cores=10, active_cores=5, defect_density="0 /cm2")
    got_defects, got_dead = manufacture_defects(_Draws(defects, hits), len(defects), spec)
    assert got_defects.tolist() == defects and got_dead.tolist() == dead


def test_a_defect_free_process_leaves_every_core_alive():
    defects, dead = manufacture_defects(
        np.random.default_rng(1), 100, wafer(defect_density="0 /cm2"))
    assert not defects.any() and not dead.any()


def test_the_engine_spends_about_46_spare_cores_per_default_wafer_on_defects():
    systems = 200
    kpis = simulate(quiet_scenario(
        hall={"racks_per_row": 2, "systems_per_rack": 100},
        wafer={"defect_density": "0.1 /cm2"}), seed=5, until=0.01).kpis
    # 970k cores: collisions negligible; Poisson total, 4 sigma
    lam = 46.225 * systems
    assert kpis["wafer.defect_cores"] == pytest.approx(lam, abs=4 * math.sqrt(lam))
    assert kpis["wafer.failed_for_cores"] == 0  # 70k spare cores absorb 46 defects
    assert kpis["failures.wafer"] == 0


def test_poisson_yield_of_an_h100_sized_die_without_spares_is_44_percent():
    # sources A2, D3: 814 mm2 at 0.1/cm2, no spare cores, every core needed:
    # a wafer works only with no defect at all, e^-0.814 = 44.3 %.
    systems = 2_000
    result, events = run_logged(quiet_scenario(
        hall={"rows": 2, "racks_per_row": 10, "systems_per_rack": 100},
        wafer={"area": "814 mm2", "defect_density": "0.1 /cm2", "physical_cores": 1_000_000,
               "active_cores": 1_000_000, "min_active_fraction": 1.0},
        spare_systems={"count": 0}), seed=3, until=0.01)
    kpis = result.kpis
    # dead on arrival: failed for too few cores, before any run-time core loss
    assert kpis["failures.wafer"] == kpis["wafer.failed_for_cores"]
    assert kpis["failures.cores"] == 0
    dead = of(events, "failure")
    assert len(dead) == kpis["wafer.failed_for_cores"]
    assert all(e.cause == "wafer" and 0.99999 <= e.value < 1.0 for e in dead)  # a few cores
    good = 1.0 - kpis["wafer.failed_for_cores"] / systems
    expected = math.exp(-0.0814 * 10)
    assert expected == pytest.approx(0.443, abs=5e-4)
    # binomial, 4 sigma
    assert good == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / systems))
    assert kpis["availability"] == pytest.approx(good)  # the dead stay down: no spare systems


# -- run-time core loss ------------------------------------------------------------

# One system, 1,000 physical and 990 active cores (10 spares), no defects;
# every 10 h exactly one core dies (cluster size geometric with mean 1).
# Spares cover events 1-10 (t = 10..100 h); from event 11 the wafer runs
# degraded, 990 - (k - 10) usable cores; below 98.5 % (975.15 cores) it has
# failed: event 25 at t = 250 h leaves 975. The swap takes 5 h.
CORE_LOSS = dict(
    hall={"systems_per_rack": 1},
    wafer={"physical_cores": 1000, "active_cores": 990,
           "core_failures": {"dist": "deterministic", "value": "10 h"},
           "cores_per_failure": 1.0, "min_active_fraction": 0.985},
    spare_systems={"count": 1, "swap_time": {"dist": "deterministic", "value": "5 h"},
                   "rma_time": {"dist": "deterministic", "value": "1000 h"}},
)


def test_exhausted_spare_cores_degrade_capacity_then_fail_the_wafer_and_swap_it():
    until = 300.0
    result, events = run_logged(quiet_scenario(**CORE_LOSS), until=until)
    k = result.kpis
    degraded_h = sum((990 - (j - 10)) / 990 * 10.0 for j in range(11, 25))  # [110, 250)
    capacity_h = 110.0 + degraded_h + (until - 255.0)  # down [250, 255), new wafer after
    assert k["availability"] == pytest.approx((until - 5.0) / until, rel=1e-12)
    assert k["capacity"] == pytest.approx(capacity_h / until, rel=1e-12)
    assert k["capacity"] < k["availability"]
    # a core failure every 10 h (one core each; none while the system is swapped)...
    core_losses = [e for e in of(events, "failure") if e.cause == "cores"]
    assert [e.t for e in core_losses] == [10.0 * j for j in range(1, 26)] + [
        255.0 + 10.0 * j for j in range(1, 5)]
    assert all(e.value == 1.0 for e in core_losses)
    assert k["failures.cores"] == 29
    # ...until the wafer fails for too few cores: 975 of 990 left
    [failed] = [e for e in of(events, "failure") if e.cause == "wafer"]
    assert (failed.t, failed.value) == (250.0, 975 / 990)
    assert k["failures.wafer"] == 1 == k["wafer.failed_for_cores"]
    assert [e.t for e in of(events, "system_swap")] == [255.0]
    assert k["spare_systems.used"] == 1
    assert k["mttr_h.wafer"] == 5.0
    # the swap is one outage, blamed on the wafer (no remap outages: remap_time 0)
    assert [(e.t, e.value, e.cause) for e in of(events, "outage")] == [(250.0, 5.0, "wafer")]
    assert k["downtime_h.wafer"] == 5.0 and k["outages.wafer"] == 1
    # 10 spares on the first wafer, 4 events (265..295 h) on the new one
    assert k["wafer.spare_cores_consumed"] == 14
    assert k["wafer.degraded_systems"] == 0  # the new wafer still has spares


def test_a_degraded_wafer_is_counted_as_degraded_at_the_end():
    result, _ = run_logged(quiet_scenario(**CORE_LOSS), until=200.0)
    assert result.kpis["wafer.degraded_systems"] == 1
    assert result.kpis["failures.wafer"] == 0 == result.kpis["wafer.failed_for_cores"]
    assert result.kpis["failures.cores"] == 19  # 10..190 h (the one at 200 h is past the end)


def test_with_remap_time_every_core_failure_is_a_short_outage():
    scenario = quiet_scenario(**{**CORE_LOSS, "wafer": {**CORE_LOSS["wafer"],
                                                       "remap_time": "15 min"}})
    result, events = run_logged(scenario, until=95.0)  # 9 events, all on spares
    assert result.kpis["availability"] == pytest.approx((95.0 - 9 * 0.25) / 95.0, rel=1e-12)
    assert [(e.t, e.value, e.cause) for e in of(events, "outage")] == [
        (10.0 * j, 0.25, "cores") for j in range(1, 10)]
    assert result.kpis["outages.cores"] == 9
    assert result.kpis["downtime_h.cores"] == pytest.approx(9 * 0.25, rel=1e-12)


def test_with_the_spare_pool_empty_a_swap_waits_for_a_system_back_from_rma():
    # Two systems whose wafers fail outright every 100 h; one spare system,
    # 5 h swaps, 200 h RMA. The first failure takes the spare (done at 105 h);
    # the second waits until the RMA'd system is back (305 h): 210 h >= RMA.
    scenario = quiet_scenario(
        hall={"systems_per_rack": 2},
        wafer={"failure": {"dist": "deterministic", "value": "100 h"}},
        spare_systems={"count": 1, "swap_time": {"dist": "deterministic", "value": "5 h"},
                       "rma_time": {"dist": "deterministic", "value": "200 h"}},
    )
    result, events = run_logged(scenario, until=320.0)
    k = result.kpis
    assert sorted(e.t for e in of(events, "system_swap")) == [105.0, 310.0]
    assert k["spare_systems.used"] == 2
    # the waiting system at 100 h, and the swapped-in one failing again at 205 h
    assert k["spare_systems.stockouts"] == 2
    assert k["mttr_h.wafer"] == pytest.approx((5.0 + 210.0) / 2)
    assert k["failures.wafer"] == 3 and k["wafer.failed_for_cores"] == 0
    failed = [e for e in of(events, "failure") if e.cause == "wafer"]
    assert sorted(e.t for e in failed) == [100.0, 100.0, 205.0]
    assert all(math.isnan(e.value) for e in failed)  # outright: no core share
    # outages from each failure until the swap is done
    assert sorted((e.t, e.value, e.cause) for e in of(events, "outage")) == [
        (100.0, 5.0, "wafer"), (100.0, 210.0, "wafer"), (205.0, 115.0, "wafer")]
    waits = [e.t for e in of(events, "stockout", "hall.spare_systems")]
    assert waits == [100.0, 205.0]


def test_with_no_spare_systems_a_failed_wafer_stays_down():
    scenario = quiet_scenario(
        hall={"systems_per_rack": 1},
        wafer={"failure": {"dist": "deterministic", "value": "10 h"}},
        spare_systems={"count": 0},
    )
    result, events = run_logged(scenario, until=100.0)
    assert result.kpis["availability"] == pytest.approx(0.1)
    assert result.kpis["spare_systems.used"] == 0
    [failed] = of(events, "failure")
    assert (failed.t, failed.cause) == (10.0, "wafer") and math.isnan(failed.value)
    # never back: one outage, open at the end and booked up to the horizon
    assert [(e.t, e.value, e.cause) for e in of(events, "outage")] == [(10.0, 90.0, "wafer")]
    assert result.kpis["downtime_h.wafer"] == 90.0



@pytest.mark.parametrize(
    ("physical", "active", "min_fraction", "defects"),
    [(100, 100, 1.0, 3.0), (100, 90, 1.0, 20.0), (50, 40, 0.9, 30.0), (1000, 950, 0.99, 60.0)],
)
def test_the_bound_on_a_working_wafer_holds_and_is_exact_without_spares(
    physical, active, min_fraction, defects
):
    # dead cores are Binomial(n, 1 - exp(-defects / n)); a wafer works while at most
    # physical - ceil(min_fraction x active) are dead; Chernoff bounds that chance
    spec = WaferSpec.model_validate({
        "physical_cores": physical, "active_cores": active, "min_active_fraction": min_fraction,
        "area": "1 cm2", "defect_density": f"{defects} /cm2"})
    bound = math.exp(working_wafer_log_bound(spec))
    _, dead = manufacture_defects(np.random.default_rng(9), WAFERS, spec)
    works = float(np.mean(dead <= lost_cores_allowed(spec)))
    se = math.sqrt(max(works * (1 - works), 1 / WAFERS) / WAFERS)
    assert works <= bound + 4 * se
    assert bound <= 10 * works  # and no looser than Chernoff's factor of order sqrt(n)
    if lost_cores_allowed(spec) == 0:  # no dead core allowed: exactly exp(-defects)
        assert bound == pytest.approx(math.exp(-defects), rel=1e-12)
        assert works == pytest.approx(bound, abs=4 * se)


# New wafers all but never work (100 cores, none spare, ~200 defects), and a swap and
# an RMA take no time: without a stop the swap would loop at t = 0 for ever.
HOPELESS_INSTANT_SWAPS = quiet_scenario(
    hall={"systems_per_rack": 1},
    wafer={"physical_cores": 100, "active_cores": 100, "min_active_fraction": 1.0,
           "area": "200 cm2", "defect_density": "1 /cm2"},
    spare_systems={"count": 1, "swap_time": {"dist": "deterministic", "value": "0 h"},
                   "rma_time": {"dist": "deterministic", "value": "0 h"}},
)


def test_replacements_dead_on_arrival_at_one_instant_stop_the_run_with_a_scenario_error():
    wanted = (
        "scenario: wafer.defect_density: expected a density at which new wafers "
        f"work: {MAX_DEAD_AT_ONE_INSTANT:,} replacements in a row for hall.row1.rack1.sys1 "
        "were dead on arrival at 0 h"
    )
    with pytest.raises(ScenarioError, match=re.escape(wanted)):
        simulate(HOPELESS_INSTANT_SWAPS, until=10.0)


def test_replacements_dead_on_arrival_while_time_passes_keep_the_run_going():
    slow = HOPELESS_INSTANT_SWAPS.model_copy(update={"spare_systems": HOPELESS_INSTANT_SWAPS
        .spare_systems.model_copy(update={"rma_time": HOPELESS_INSTANT_SWAPS.spare_systems
                                          .rma_time.model_copy(update={"value": 1.0})})})
    result, events = run_logged(slow, until=10.0)
    assert result.kpis["availability"] == 0.0
    assert len(of(events, "system_swap")) == 10  # one a time unit, each dead on arrival


def test_a_wafer_failed_for_cores_reports_a_usable_share_between_zero_and_the_minimum():
    # 10 cores, no spares; a cluster of mean 20 cores dies at 10 h: the wafer fails
    # for too few cores (below 50 %), with a share of what is left in [0, 0.5)
    scenario = quiet_scenario(
        hall={"systems_per_rack": 1},
        wafer={"physical_cores": 10, "active_cores": 10, "cores_per_failure": 20.0,
               "min_active_fraction": 0.5,
               "core_failures": {"dist": "deterministic", "value": "10 h"}},
        spare_systems={"count": 0})
    result, events = run_logged(scenario, seed=1, until=20.0)
    [lost] = [e for e in of(events, "failure") if e.cause == "cores"]
    assert lost.value > 10  # (for this seed) more cores lost than the wafer had
    [failed] = [e for e in of(events, "failure") if e.cause == "wafer"]
    assert result.kpis["wafer.failed_for_cores"] == 1
    assert 0.0 <= failed.value < 0.5
