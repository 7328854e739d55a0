"""The crews' dispatcher: who gets a crew, and when.

A crew is given out only when work can start (a crew free and on shift),
to the fault that is first at that moment: one whose class holds its own
system down (below its k of n), then any other, in arrival order within
each. Faults of a system that waits to be swapped whole get no crew and no
part. Failures are forced at known times (`fail_at`) in a hall where
nothing fails by itself.
"""

from __future__ import annotations

import pytest
from twinkit import of, quiet_scenario

from twin.engine import Model, build


def fixed(hours: float) -> dict:
    return {"dist": "deterministic", "value": f"{hours} h"}


def fail_at(model: Model, cls: str, unit: int, t: float) -> None:
    """Unit `unit` (flat index) of class `cls` fails at `t`."""
    target = next(c for c in model.classes if c.name == cls)
    target._agenda.schedule(unit, t)


def two_psus_one_fan(systems: int, **overrides) -> dict:
    """PSUs 1+1 (a fault leaves the system running), a single fan (a fault takes it
    down); every repair takes 1 h of a single crew."""
    return quiet_scenario(**{
        "hall": {"systems_per_rack": systems},
        "components": {
            "psu": {"count": 2, "required": 1, "repair": fixed(1.0)},
            "fan": {"count": 1, "required": 1, "repair": fixed(1.0)},
        },
        "repair": {"crews": 1},
        **overrides,
    })


def run(scenario, failures, until):
    from twinkit import ModelSink

    sink = ModelSink()
    model = build(scenario, 1, sink)
    for cls, unit, t in failures:
        fail_at(model, cls, unit, t)
    model.env.run(until=until)
    model.fleet.close()
    model.recorder.flush()
    return model, sink


def repaired_at(model, sink, cls: str, unit: int) -> list[float]:
    scope = next(c for c in model.classes if c.name == cls).unit_scope(unit)
    return [e.t for e in sink.events if e.kind == "repaired" and e.scope == scope]


def test_at_shift_start_the_crew_takes_the_faults_that_hold_systems_down_first():
    # one crew on 08:00-20:00. At 21:00 a PSU of system 0 fails (it keeps running),
    # at 22:00 and 23:00 the fans of systems 1 and 2 (both go down). At 08:00 the
    # crew does the fans first: outages of 11 h each, not 12 h (a crew taken at
    # 21:00 by the PSU fault, waiting for the shift, would do it first).
    scenario = two_psus_one_fan(
        3, repair={"crews": 1, "shift_start": "8 h", "shift_length": "12 h"})
    model, sink = run(scenario, [("psu", 0, 21.0), ("fan", 1, 22.0), ("fan", 2, 23.0)], 48.0)
    assert [(e.t, e.scope, e.value) for e in of(sink.events, "outage")] == [
        (22.0, model.fleet.scopes[1], 11.0), (23.0, model.fleet.scopes[2], 11.0)]
    assert repaired_at(model, sink, "psu", 0) == [35.0]


def test_a_fault_on_a_system_down_for_another_class_does_not_go_first():
    # one crew, always on shift, busy 1-2 h with the fan of system 2. Meanwhile the
    # fan of system 0 fails (down), then a PSU of system 0 (down already, but for
    # its fan: repairing the PSU brings nothing back), then the fan of system 1.
    # Order: fan 0 (2-3 h), fan 1 (3-4 h), PSU of system 0 last (4-5 h).
    scenario = two_psus_one_fan(3)
    model, sink = run(scenario, [
        ("fan", 2, 1.0), ("fan", 0, 1.2), ("psu", 0, 1.4), ("fan", 1, 1.6)], 10.0)
    assert repaired_at(model, sink, "fan", 0) == [3.0]
    assert repaired_at(model, sink, "fan", 1) == [4.0]
    assert repaired_at(model, sink, "psu", 0) == [5.0]


def test_a_fault_goes_first_once_its_system_goes_down_after_it_asked():
    # PSUs 1+1 of system 0 fail at 1.2 h (it runs on the other) and 1.6 h (down);
    # a PSU of system 1 failed at 1.4 h (running). The crew, busy until 2 h, then
    # takes both PSUs of system 0 before the one of system 1, though that asked
    # before the second of system 0.
    scenario = two_psus_one_fan(3)
    model, sink = run(scenario, [
        ("fan", 2, 1.0), ("psu", 0, 1.2), ("psu", 2, 1.4), ("psu", 1, 1.6)], 10.0)
    assert repaired_at(model, sink, "psu", 0) == [3.0]
    assert repaired_at(model, sink, "psu", 1) == [4.0]
    assert repaired_at(model, sink, "psu", 2) == [5.0]


def test_no_crew_and_no_part_for_a_system_waiting_to_be_swapped():
    # the wafer of system 0 fails at 1.5 h while its PSU fault (1.2 h) waits for the
    # crew; with no spare system it waits for ever: the PSU is never repaired and
    # its part goes back on the shelf, while the PSU of system 1 is repaired.
    scenario = two_psus_one_fan(3, spare_systems={"count": 0})
    stock_before = build(scenario, 1).stock["psu"].on_hand
    model, sink = run(scenario, [("fan", 2, 1.0), ("psu", 0, 1.2), ("psu", 2, 1.4)], 1.45)
    model.wafers._fatal.schedule(0, 1.5)
    model.env.run(until=10.0)
    model.recorder.flush()
    assert repaired_at(model, sink, "psu", 0) == []
    assert repaired_at(model, sink, "psu", 2) == [3.0]
    assert model.stock["psu"].used == 1
    assert model.stock["psu"].on_hand == stock_before - 1
    assert model.crews.busy_h == 2.0


def test_a_swap_calls_off_the_repairs_in_flight_on_its_system():
    # PSUs 1+1, 10 h of a crew each, two crews, one part on the shelf (the next ones
    # 100 h away), a swap takes 1 h of a crew. The PSU of system 0 fails at 1 h and takes
    # the part and a crew; those of systems 1 and 2 fail at 1.2 h and 1.4 h and wait for a
    # part. The wafer of system 0 fails at 2 h: swapped 2-3 h, its PSU's crew is released
    # with 2 h worked and its part goes to system 1 (repaired 3-13 h). The wafer of
    # system 2 fails at 4 h: swapped 4-5 h, its request for a part is withdrawn, so the
    # deliveries at ~101 h stay on the shelf.
    scenario = quiet_scenario(
        hall={"systems_per_rack": 3},
        components={"psu": {"count": 2, "required": 1, "repair": fixed(10.0)}},
        repair={"crews": 2},
        spares={"psu": {"stock": 1, "reorder_point": 0, "order_quantity": 1,
                        "lead_time": "100 h"}},
        spare_systems={"swap_time": fixed(1.0)})
    model, sink = run(scenario, [("psu", 0, 1.0), ("psu", 2, 1.2), ("psu", 4, 1.4)], 1.5)
    model.wafers._fatal.schedule(0, 2.0)
    model.wafers._fatal.schedule(2, 4.0)
    model.env.run(until=120.0)
    model.recorder.flush()
    stock, psu = model.stock["psu"], model.classes[0]
    assert [e.t for e in of(sink.events, "system_swap")] == [3.0, 5.0]
    assert repaired_at(model, sink, "psu", 0) == repaired_at(model, sink, "psu", 4) == []
    assert repaired_at(model, sink, "psu", 2) == [13.0]
    assert model.shop.restore_hours["psu"] == [13.0 - 1.2]
    assert psu.up[0] and psu.up[4]  # renewed by their swaps
    assert model.crews.busy_h == 2.0 + 1.0 + 10.0 + 1.0
    assert [e.t for e in of(sink.events, "restock")] == [101.0, 101.2, 101.4]
    assert stock.used == 1 and stock.on_hand == 3 and stock.backorders == 0
    assert model.shop.open_ages("psu") == [] and model.crews.waiting == 0


@pytest.mark.parametrize("start, length, horizon", [
    (0.0, 24.0, 100.0), (8.0, 12.0, 48.0), (8.0, 12.0, 30.0), (20.0, 8.0, 30.0),
    (20.0, 8.0, 47.5), (23.0, 1.0, 1000.25),
])
def test_on_shift_hours_count_the_shift_windows_in_the_horizon(start, length, horizon):
    scenario = quiet_scenario(repair={"shift_start": f"{start} h", "shift_length": f"{length} h"})
    crews = build(scenario, 1).crews
    brute = sum(1 for i in range(int(horizon * 100))
                if ((i + 0.5) / 100 - start) % 24.0 < length) / 100
    assert crews.on_shift_hours(horizon) == pytest.approx(brute, abs=0.011)


def test_crew_utilization_is_per_on_shift_crew_hour():
    # one crew on 08:00-20:00 repairing a fan for 1 h at 09:00 on each of two days
    scenario = two_psus_one_fan(2, repair={"crews": 1, "shift_start": "8 h",
                                           "shift_length": "12 h"})
    model, _ = run(scenario, [("fan", 0, 9.0), ("fan", 1, 33.0)], 48.0)
    assert model.crews.busy_h == 2.0
    assert model.crews.utilization(48.0) == pytest.approx(2.0 / 24.0)
