"""The power chain (twin.facility.power) against closed forms.

A quiet hall of 1 row x 2 racks x 3 systems (23 kW each, boot 0 h unless
said) with a [facility] section whose parts never fail on their own: the
only outage is the scheduled one. The UPS carries E x efficiency / load
hours; when the generators all fail to start the source dies then, and the
systems that cannot live on their other feed drop, blamed on the generators.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from twinkit import NEVER, quiet_scenario, run_logged, run_model, same_events, same_kpis

from twin.engine import build
from twin.errors import ScenarioError
from twin.facility import ride_through_h
from twin.scenario import Scenario, load_scenario

N, P = 6, 23.0
ENERGY, EFF = 10.0, 0.9  # kWh, battery to load
START, LENGTH = 10.0, 2.0  # the scheduled outage of source A


def power(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "utility": {"outage_interval": "1e9 h"},
        "ups": {"energy": f"{ENERGY} kWh", "efficiency": EFF, "recharge": "5 kW"},
        "generators": {"count": 2, "required": 1, "fail_to_start": 1.0},
        "pdu": {"failure": NEVER},
        "outages": [{"source": "A", "start": f"{START} h", "duration": f"{LENGTH} h"}],
    }
    base.update(overrides)
    return base


def scenario(**power_overrides: Any) -> Scenario:
    return quiet_scenario(
        hall={"rows": 1, "racks_per_row": 2, "systems_per_rack": 3},
        facility={"power": power(**power_overrides)},
    )


def test_ride_through_is_the_energy_delivered_over_the_load():
    assert ride_through_h(10.0, 138.0, 0.9) == pytest.approx(9.0 / 138.0)
    assert ride_through_h(10.0, 0.0, 0.9) == math.inf


def test_n_plus_1_drops_every_system_when_the_battery_empties_and_no_generator_started():
    empty = START + ride_through_h(ENERGY, N * P, EFF)
    model, _ = run_model(scenario(topology="N+1"), until=empty - 1e-6)
    assert all(model.fleet.running(s) for s in range(N))
    assert model.power is not None
    assert model.power.battery(0) == pytest.approx(N * P / EFF * 1e-6, abs=1e-9)
    model.env.run(until=empty + 1e-6)
    assert not any(model.fleet.running(s) for s in range(N))
    assert {model.fleet.charged[s] for s in range(N)} == {"generator.A"}


def test_a_feed_loss_takes_down_exactly_the_systems_whose_live_feed_psus_cannot_carry_them():
    """Systems 1 and 4 have a PSU on feed B out: when source A dies they are left with
    5 working PSUs of the 6 required, and drop; the others run on feed B's six."""
    model, _ = run_model(scenario(), until=START - 1.0)
    psu = next(cls for cls in model.classes if cls.name == "psu")
    for s in (1, 4):
        psu.up[s * 12 + 8] = False  # unit 9: on feed B
    empty = START + ride_through_h(ENERGY, N * P / 2, EFF)  # A carries half of each system
    model.env.run(until=empty + 1e-6)
    down = [s for s in range(N) if not model.fleet.running(s)]
    assert down == [1, 4]
    assert {model.fleet.charged[s] for s in down} == {"generator.A"}
    model.env.run(until=START + LENGTH + 1e-6)  # the utility is back: they boot (0 h)
    assert all(model.fleet.running(s) for s in range(N))


def test_generators_that_start_carry_the_load_and_the_battery_recharges_linearly():
    delay = 0.01  # h, shorter than the ride-through (0.065 h at the whole load)
    spec = scenario(
        topology="N+1", generators={"count": 2, "required": 1, "fail_to_start": 0.0,
                                    "start_delay": f"{delay} h"},
    )
    load = N * P
    model, _ = run_model(spec, until=START + delay + 0.5)
    assert model.power is not None
    assert all(model.fleet.running(s) for s in range(N))
    left = ENERGY - load / EFF * delay
    assert model.power.battery(0) == pytest.approx(min(ENERGY, left + 5.0 * 0.5))
    model.env.run(until=START + LENGTH)
    assert model.power.battery(0) == pytest.approx(ENERGY)


def test_downtime_is_charged_to_the_facility_part_and_every_facility_cause_is_a_kpi():
    result, events = run_logged(scenario(topology="N+1"), until=24.0)
    empty = START + ride_through_h(ENERGY, N * P, EFF)
    k = result.kpis
    assert k["downtime_h.generator.A"] == pytest.approx(N * (START + LENGTH - empty))
    assert k["outages.generator.A"] == N
    for cause in ("feed.A", "ups.A", "pdu.A", "pdu.B"):
        assert k[f"downtime_h.{cause}"] == 0.0
    assert k["facility.utility_outages"] == 1
    assert k["facility.generator_failures"] == 2
    assert k["facility.source_losses"] == 1
    outages = [e for e in events if e.kind == "outage"]
    assert {e.cause for e in outages} == {"generator.A"}
    assert sum(e.value for e in outages) == pytest.approx(k["downtime_h.generator.A"])


def test_facility_parts_that_never_fail_change_nothing_else():
    """The facility's streams are its own: with no outage and no facility part failing
    (and cooling to spare) a busy hall runs exactly as without the section."""
    busy = {"hall": {"rows": 2, "racks_per_row": 3}, "run": {"until": "2000 h"}}
    base = Scenario.model_validate(busy)
    quiet = power(outages=[])
    cooling = {"chillers": {"failure": NEVER}, "cdu": {"failure": NEVER}}
    with_facility = Scenario.model_validate(
        {**busy, "facility": {"power": quiet, "cooling": cooling}}
    )
    a, ea = run_logged(base)
    b, eb = run_logged(with_facility)
    facility_keys = {k for k in b.kpis if k not in a.kpis}
    assert all(
        k.startswith(("facility.", "downtime_h.", "outages.", "energy.")) for k in facility_keys
    )
    assert same_kpis(a.kpis, {k: v for k, v in b.kpis.items() if k not in facility_keys})
    assert same_events(ea, eb)


def test_a_scenario_without_the_section_keeps_its_document_and_hash():
    hall = load_scenario("scenarios/hall.toml")
    assert "facility" not in hall.document()
    assert hall.facility is None


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"psus_on_a": 13}, "facility.power.psus_on_a"),
        ({"psu_class": "ups"}, "facility.power.psu_class"),
        ({"topology": "N+1", "outages": [{"source": "B", "start": "1 h", "duration": "1 h"}]},
         "facility.power.outages.0.source"),
        ({"generators": {"count": 1, "required": 2}}, "facility.power.generators.required"),
    ],
)
def test_bad_facility_keys_are_named(overrides: dict[str, Any], key: str):
    from twin.scenario import parse_scenario

    with pytest.raises(ScenarioError) as err:
        parse_scenario({"facility": {"power": overrides}}, source="f.toml")
    assert err.value.key == key


def test_downtime_by_facility_root_cause_is_the_documented_query(tmp_path):
    """docs/facility.md's query, on a stored run, gives the downtime KPIs per part."""
    import re
    from pathlib import Path

    from storage import open_store

    doc = (Path(__file__).resolve().parents[2] / "docs" / "facility.md").read_text()
    query = re.search(r"```sql\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    store = open_store(tmp_path / "f.db")
    try:
        result, run_id = store.record(scenario(topology="N+1"), until=24.0)
        rows = store.query(query, {"run": run_id})
    finally:
        store.close()
    assert dict(zip(rows["cause"], rows["downtime_h"], strict=True)) == pytest.approx(
        {"generator.A": result.kpis["downtime_h.generator.A"]}
    )


def test_served_tokens_lost_to_a_dead_source_are_charged_to_its_part():
    from pathlib import Path

    from twin.engine import simulate

    path = Path(__file__).resolve().parents[2] / "scenarios" / "serving.toml"
    served = load_scenario(path, [
        'facility.power.topology="N+1"', "facility.power.generators.fail_to_start=1.0",
        'facility.power.outages=[{source="A", start="2 d", duration="2 h"}]',
    ])
    k = simulate(served, until=72.0).kpis
    for tenant in ("chat", "code", "api"):
        assert k[f"serving.tokens.lost.{tenant}.generator.A"] > 0
        assert k[f"serving.tokens.lost.{tenant}.pdu.B"] == 0.0  # listed, zeros included


def test_a_psu_failing_or_repaired_while_a_feed_is_dead_is_seen_at_that_moment():
    """Rule: with feed A dead a system runs on its six feed-B PSUs; one of them failing
    leaves 5 < 6 and drops the system at that instant, charged to the PSU class (the
    event that crossed the threshold); its repair gives it six again and it boots
    while the feed is still dead."""
    repair, boot = 0.5, 0.1
    spec = quiet_scenario(
        hall={"rows": 1, "racks_per_row": 2, "systems_per_rack": 3},
        system={"boot_time": f"{boot} h"},
        components={"psu": {"repair": {"dist": "deterministic", "value": f"{repair} h"}}},
        facility={"power": power(outages=[{"source": "A", "start": f"{START} h",
                                            "duration": "10 h"}])},
    )
    empty = START + ride_through_h(ENERGY, N * P / 2, EFF)
    fail = empty + 1.0
    model, _ = run_model(spec, until=empty + 0.5)
    assert model.power is not None and model.power.live == [False, True]
    assert all(model.fleet.running(s) for s in range(N))
    psu = next(cls for cls in model.classes if cls.name == "psu")
    psu._agenda.schedule(2 * 12 + 8, fail)  # system 2, unit 9: on feed B
    model.env.run(until=fail + 1e-9)
    assert [s for s in range(N) if not model.fleet.running(s)] == [2]
    assert model.fleet.charged[2] == "psu"
    model.env.run(until=fail + repair + 1e-9)  # repaired, feed A still dead: boots
    assert not model.power.live[0] and model.fleet.booting[2]
    model.env.run(until=fail + repair + boot + 1e-9)
    assert not model.power.live[0]
    assert all(model.fleet.running(s) for s in range(N))


def test_a_battery_on_duty_follows_the_load_when_systems_drop_during_the_ride_through():
    """N+1, no generator starts: 6 x 23 kW drain the battery from START; at START + d
    three systems drop (held down), and the rest empties it at half the load: the
    source dies at START + d + (E - 6 P d / eff) eff / (3 P)."""
    d = 0.02
    model = build(scenario(topology="N+1"), 1)

    def drop(env):
        yield env.timeout(START + d)
        for s in range(3):
            model.fleet.hold(s, model.fleet.bit("psu"), "psu", 100.0)

    model.env.process(drop(model.env))
    left = ENERGY - N * P / EFF * d
    empty = START + d + ride_through_h(left, 3 * P, EFF)
    model.env.run(until=empty - 1e-6)
    assert model.power is not None and model.power.live == [True]
    model.env.run(until=empty + 1e-6)
    assert model.power.live == [False]
