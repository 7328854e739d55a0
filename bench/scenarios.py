"""Scenarios the benchmarks and the oracle tests run, derived from the shipped halls.

Role: one place that says what each benchmark simulates. Every scenario is
the default hall (`scenarios/hall.toml`) or the GPU hall
(`scenarios/gpu-hall.toml`) with a few keys changed, built as a resolved
`Scenario` (validated like any scenario file):

- `default_hall`: the 1,020-system hall, one year, as shipped;
- `gpu_hall`: the 2,300-node hall of 8-GPU nodes, one year, as shipped;
- `scaled_hall`: a hall's (the default one's unless given) rows times
  `factor`, and crews, spare-part stocks, reorder points, order quantities
  and spare systems times the same factor, so every system sees the same
  service level (`scale_crews=False` keeps the hall's crews: a saturated
  crew queue, the worst case for the engine);
- `accelerated`: a small hall whose failure clocks run `factor` times faster
  (component, core and wafer lives divided by `factor`), so a short run has
  enough failures to compare models; `lean=True` also removes the PSU and
  fan redundancy so that repair times show in availability;
- `thermal_stress`: an accelerated hall with warm water, weak pumps and slow
  failovers, so that systems throttle and trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twin.scenario import Scenario, deep_merge, load_scenario, scale_scenario

__all__ = [
    "HALL_TOML", "GPU_HALL_TOML", "default_hall", "gpu_hall", "scaled_hall", "accelerated",
    "thermal_stress", "changed",
]

HALL_TOML = Path(__file__).resolve().parent.parent / "scenarios" / "hall.toml"
GPU_HALL_TOML = HALL_TOML.with_name("gpu-hall.toml")

# the distribution keys that hold a time, by distribution
_TIME_KEY = {"exponential": "mean", "weibull": "scale", "lognormal": "median",
             "deterministic": "value"}


def default_hall() -> Scenario:
    """The shipped default hall: 1,020 systems, one year, every mechanism on."""
    return load_scenario(HALL_TOML)


def gpu_hall() -> Scenario:
    """The shipped GPU hall: 2,300 8-GPU nodes failing as the Llama 3 run's, one year."""
    return load_scenario(GPU_HALL_TOML)


def changed(scenario: Scenario, changes: dict[str, Any], name: str | None = None) -> Scenario:
    """`scenario` with `changes` (nested, as in a scenario file) merged in and validated."""
    doc = deep_merge(scenario.document(), changes)
    if name is not None:
        doc["name"] = name
    return Scenario.model_validate(doc)


def hours(value: float) -> str:
    return f"{value!r} h"


def faster(dist: dict[str, Any], factor: float) -> dict[str, Any]:
    """A distribution (as a resolved document writes it) with its time divided by `factor`."""
    out = dict(dist)
    key = _TIME_KEY[out["dist"]]
    number, unit = str(out[key]).split()
    assert unit == "h", f"resolved documents write times in hours, not {unit}"
    out[key] = hours(float(number) / factor)
    return out


def scaled_hall(factor: int, base: Scenario | None = None, *, scale_crews: bool = True) -> Scenario:
    """`base` (the default hall if not given) scaled as ``--scale factor`` scales it
    (`scale_scenario`: rows, crews, spares and spare systems), the crews kept as in
    `base` if not `scale_crews`."""
    base = base or default_hall()
    crews = {} if scale_crews else {"repair": {"crews": base.repair.crews}}
    name = f"{base.name}-x{factor}{'' if scale_crews else '-default-crews'}"
    return changed(scale_scenario(base, factor), crews, name=name)


def accelerated(
    systems: int = 12, days: float = 60.0, factor: float = 30.0, *, lean: bool = False,
    wafer_factor: float | None = None, base: Scenario | None = None,
) -> Scenario:
    """A small hall (`systems`, a multiple of 3) whose failure clocks run `factor`x faster
    (the wafer's, core failures included, `wafer_factor`x, by default `factor`x).

    One crew per 12 systems (at least one), a spare system per 3, the
    default part stocks (so reorders and the odd stockout happen). A new hall
    (`hall.start_age = "new"`): the reference installs every unit at t = 0.
    """
    base = base or default_hall()
    wafer_factor = factor if wafer_factor is None else wafer_factor
    doc = base.document()
    components: dict[str, Any] = {
        name: {"failure": faster(doc["components"][name]["failure"], factor)}
        for name in base.components
    }
    if lean:
        for name in ("psu", "fan"):
            if name in components:
                components[name]["required"] = base.components[name].count
    return changed(base, {
        "run": {"until": hours(days * 24.0)},
        "hall": {"rows": 1, "racks_per_row": systems // 3, "systems_per_rack": 3,
                 "start_age": "new"},
        "components": components,
        "wafer": {
            "core_failures": faster(doc["wafer"]["core_failures"], wafer_factor),
            "failure": faster(doc["wafer"]["failure"], wafer_factor),
        },
        "repair": {"crews": max(1, systems // 12)},
        "spare_systems": {"count": max(1, systems // 3)},
    }, name=f"accelerated-{systems}x{days:g}d-x{factor:g}{'-lean' if lean else ''}")


def thermal_stress(systems: int = 12, days: float = 60.0, factor: float = 30.0) -> Scenario:
    """An accelerated hall that throttles and trips: 35 C water, pumps that wear out
    2.5x sooner than the default ones (Weibull scale 40,000 h before the factor),
    leave little margin while one is down (x1.3), failovers of ~10 min (a long tail)."""
    base = accelerated(systems, days, factor)
    pump_life = {"dist": "weibull", "shape": 1.5, "scale": "40000 h"}
    return changed(base, {
        "thermal": {"inlet": "35 C"},
        "components": {"pump": {
            "failure": faster(pump_life, factor),
            "thermal_factor": 1.3,
            "failover": {"dist": "lognormal", "median": "10 min", "sigma": 1.0},
        }},
    }, name=f"thermal-stress-{systems}x{days:g}d-x{factor:g}")
