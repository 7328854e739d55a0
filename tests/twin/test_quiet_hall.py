"""The quiet hall every model test starts from: nothing happens in it.

Each model test switches on one mechanism in `twinkit.quiet_scenario`; if
the quiet hall itself had events, every closed form built on it would be off.
"""

from __future__ import annotations

from twinkit import run_logged


def test_in_the_quiet_hall_nothing_happens_and_everything_runs_at_full_power(quiet):
    scenario = quiet()
    result, events = run_logged(scenario, until=1000.0)
    assert events == []
    k = result.kpis
    assert k["availability"] == 1.0 == k["capacity"]
    assert k["energy.it_mwh"] == scenario.systems * scenario.system.power * 1000.0 / 1000.0
    assert k["thermal.throttle_events"] == 0 == k["thermal.trips"]


def test_overrides_switch_on_one_mechanism_and_leave_the_rest_quiet(quiet):
    scenario = quiet(components={"psu": {"failure": {"dist": "exponential", "mean": "50 h"}}})
    result, events = run_logged(scenario, until=500.0)
    assert {e.cause for e in events if e.kind == "failure"} == {"psu"}
    assert scenario.components["psu"].escalate_probability == 1.0  # the quiet part stays
    assert result.kpis["repair.auto_fixed"] == 0
