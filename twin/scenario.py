"""Scenario files: a typed, fully resolved description of one hall and one run.

A scenario is TOML. `load_scenario` reads it (a regular UTF-8 file of bounded
size, never a device or a pseudo-file), follows ``extends = "base.toml"``
(deep merge, the child wins; a base stays in the folder of the named file
unless allowed), applies ``--set a.b.c=VALUE`` overrides and validates the
result against the schema below, which bounds every number. Unknown keys,
wrong units and values out of bounds are rejected with a `ScenarioError`
naming the file, the dotted key and what was expected; no error shows the
value of an unknown key. `Scenario.document()` is the resolved document,
defaults included, and `Scenario.digest()` its hash: the store keeps one
copy per hash, and every run refers to it.

Built-in defaults are CS-3-like and come from docs/sources.md where a
figure is published; the rest are stated assumptions (marked ASSUMPTION).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from twin import gpu_node, units
from twin.distributions import Distribution
from twin.errors import ScenarioError
from twin.quantities import (
    MAX_HORIZON_H,
    Area,
    Bucket,
    DefectDensity,
    DeltaTemperature,
    Duration,
    HeatCapacity,
    Horizon,
    PositiveDuration,
    Power,
    Probability,
    Temperature,
    ThermalResistance,
    Unit,
)
from twin.text import escaped, unprintable
from twin.workloads.serving.lengths import Lengths

__all__ = [
    "Scenario", "ComponentSpec", "ArrheniusSpec", "PackageSpec", "FacilitySpec", "PowerSpec",
    "load_scenario", "parse_scenario", "apply_override", "deep_merge", "printable", "Line",
    "run_option", "scale_scenario", "MAX_SCENARIO_BYTES", "MAX_DEPTH", "MAX_SEED", "MAX_SYSTEMS",
]

# A scenario file is a few kB; more than this is not a scenario (and is not read).
MAX_SCENARIO_BYTES = 1 << 20
# Tables and arrays nest at most this deep (a scenario needs 4: components.NAME.failure.dist).
MAX_DEPTH = 8


def _dist(**params: Any) -> Any:
    """A distribution default, written as it would be in a scenario file."""
    return params


def _q(text: str) -> Any:
    """A quantity default, written as it would be in a scenario file."""
    return text


def printable(text: str, allowed: str = "") -> str:
    """`text` if it holds no control, format or line-separator character (other than
    those in `allowed`): such characters would be printed raw to a terminal
    (an escape sequence, a bidi override). Raises `ValueError` naming the first."""
    for char in text:
        if char not in allowed and unprintable(char):
            raise ValueError(
                f"text without control characters ({escaped(char)} at position "
                f"{text.index(char)})"
            )
    return text


# One line of text (a name, a part, a label): no control characters at all.
Line = Annotated[str, AfterValidator(printable)]
# Free text (a description): newlines and tabs allowed, no other control character.
Text = Annotated[str, AfterValidator(lambda text: printable(text, "\n\t"))]


# Bounds of counts (each documented in docs/scenarios.md): past them a value is a slip.
MAX_SEED = 2**63 - 1  # what the store keeps (a signed 64-bit integer)
MAX_SYSTEMS = 1_000_000  # 23 GW of CS-3s: beyond any hall
MAX_PARTS = 1_000_000  # of one spare part on the shelf, at its reorder point or in one order
MAX_CORES = 100_000_000  # on one wafer: 100x a CS-3's
MAX_CLOCK_FACTOR = 1e9  # a bad lot's clock speed-up: a 1e9 h life then lasts an hour


class _Model(BaseModel):
    # strict: an int is an int (not a bool, not a float such as 1e26); no inf or nan
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, validate_default=True,
        strict=True, allow_inf_nan=False,
    )


class RunSpec(_Model):
    """How long to simulate and with which seed (both overridable from the CLI)."""

    until: Horizon = _q("365 d")
    seed: int = Field(default=1, ge=0, le=MAX_SEED)


def _start_age(value: object) -> str | float:
    if value in ("new", "steady"):
        return value  # type: ignore[return-value]
    try:
        return Unit("time").parse(value)
    except ValueError:
        raise ValueError('"new", "steady" or an age such as "2 y"') from None


def _start_age_text(value: str | float) -> str:
    return value if isinstance(value, str) else units.format_quantity(value, "time")


# How old the fleet is at t = 0: "new" (every unit installed at 0), "steady" (each
# unit's age drawn from its renewal process's stationary law: a hall that has been
# running for ever) or a fixed age (every unit a survivor of that age).
StartAge = Annotated[str | float, PlainValidator(_start_age), PlainSerializer(_start_age_text)]


class HallSpec(_Model):
    """Rows of racks of wafer-scale systems; three 15 RU systems fit a rack (sources A3)."""

    rows: int = Field(default=20, ge=1, le=10_000)
    racks_per_row: int = Field(default=17, ge=1, le=1_000)
    systems_per_rack: int = Field(default=3, ge=1, le=100)
    start_age: StartAge = "steady"  # see docs/model.md "Starting age"

    @model_validator(mode="after")
    def _systems_fit(self) -> HallSpec:
        systems = self.rows * self.racks_per_row * self.systems_per_rack
        if systems > MAX_SYSTEMS:
            raise _KeyedError(
                "", f"at most {MAX_SYSTEMS:,} systems (rows x racks_per_row x systems_per_rack), "
                f"not {systems:,}",
            )
        return self


class SystemSpec(_Model):
    """One system: a wafer-scale system, ~23 kW at full load (sources A3, CS-3), or an
    8-GPU node (`kind = "gpu_node"`, twin.gpu_node: ~10.2 kW, sources G1)."""

    # what a system is: its defaults, mechanisms and compute (docs/gpu.md); a wafer's
    # document leaves it out
    kind: Literal["wafer", "gpu_node"] = "wafer"
    power: Power = _q("23 kW")
    idle_power: Power = _q("2 kW")  # ASSUMPTION: pumps, fans and control while booting
    boot_time: Duration = _q("30 min")  # ASSUMPTION

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        """A GPU node's power, idle power and boot time where none is given."""
        if isinstance(data, dict) and data.get("kind") == "gpu_node":
            return {**gpu_node.SYSTEM, **data}
        return data

    @model_validator(mode="after")
    def _idle_below_full(self) -> SystemSpec:
        if self.idle_power > self.power:
            raise _KeyedError("idle_power", f"at most power ({self.power} kW)")
        return self


# Activation energies past this are not a failure mechanism of electronics or pumps
# (published ones are 0.1-1.5 eV); a larger one is a slip in units.
MAX_ACTIVATION_EV = 5.0
# Lowest absolute temperature (C) an Arrhenius reference may be: AF divides by it in kelvin.
ABSOLUTE_ZERO_C = -273.15


class ArrheniusSpec(_Model):
    """Temperature acceleration of a component class's failure clock (twin.mechanisms.ageing):
    its clock runs at AF = exp(Ea/k (1/T_ref - 1/T)), T the system's wafer temperature."""

    activation_energy: float = Field(gt=0.0, le=MAX_ACTIVATION_EV)  # eV
    reference_temperature: Temperature = _q("71 C")  # ASSUMPTION: the default hall at full power

    @model_validator(mode="after")
    def _above_absolute_zero(self) -> ArrheniusSpec:
        if self.reference_temperature <= ABSOLUTE_ZERO_C:
            raise _KeyedError("reference_temperature", "a temperature above -273.15 C")
        return self


class PackageSpec(_Model):
    """Package fatigue (twin.mechanisms.package): Coffin-Manson cycles to failure
    N_f = cycles (reference_delta / dT)^exponent, Miner's damage sum 1/N_f, failure when
    the damage reaches a per-package threshold, lognormal of median 1 and `scatter`."""

    cycles: float = Field(default=5000.0, gt=0.0, le=1e12)  # ASSUMPTION: N_f at reference_delta
    reference_delta: DeltaTemperature = _q("40 K")  # ASSUMPTION
    exponent: float = Field(default=2.0, gt=0.0, le=20.0)  # solder joints, sources (package)
    scatter: float = Field(default=0.5, ge=0.0, le=5.0)  # ASSUMPTION: sigma of ln(threshold)

    @model_validator(mode="after")
    def _positive_delta(self) -> PackageSpec:
        if self.reference_delta <= 0.0:
            raise _KeyedError("reference_delta", "a temperature swing above 0 K")
        return self


class ComponentSpec(_Model):
    """A redundant component class in every system: `required` of `count` must run."""

    count: int = Field(ge=1, le=1_000)
    required: int = Field(ge=1)
    failure: Distribution
    repair: Distribution
    part: Line
    bad_fraction: Probability = 0.0
    bad_factor: float = Field(default=1.0, ge=1.0, le=MAX_CLOCK_FACTOR)
    escalate_probability: Probability = 1.0
    # a crew's replacement of a bad unit installs a good one with this probability, a
    # good unit's stays good (the bad units are positions that repairs clear); none:
    # every new unit is drawn from the lot mix again (docs/model.md)
    fix_bad_probability: Probability | None = None
    thermal_factor: float = Field(default=1.0, ge=1.0, le=100.0)
    failover: Distribution | None = None
    failover_factor: float = Field(default=1.0, ge=1.0, le=100.0)
    arrhenius: ArrheniusSpec | None = None  # no table: the clock ignores temperature

    @model_validator(mode="after")
    def _required_fits(self) -> ComponentSpec:
        if self.required > self.count:
            raise _KeyedError("required", f"at most count ({self.count})")
        return self


class WaferSpec(_Model):
    """The wafer: cores, spare pool, defects at manufacture, run-time core loss."""

    physical_cores: int = Field(default=970_000, ge=1, le=MAX_CORES)  # sources A2 (~970k physical)
    active_cores: int = Field(default=900_000, ge=1)  # sources A1, A2 (900k enabled)
    area: Area = _q("46225 mm2")  # 46,225 mm^2, sources A1
    defect_density: DefectDensity = _q("0.1 /cm2")  # D0 ~ 0.1 /cm^2 at TSMC 5 nm, sources A2
    core_failures: Distribution = _dist(dist="exponential", mean="2000 h")  # ASSUMPTION
    # ASSUMPTION: mean cluster size
    cores_per_failure: float = Field(default=4.0, ge=1.0, le=MAX_CORES)
    min_active_fraction: Probability = 0.97  # ASSUMPTION: below this the wafer is failed
    remap_time: Duration = _q("15 min")  # ASSUMPTION: re-route around lost cores, restart
    failure: Distribution = _dist(dist="exponential", mean="200000 h")  # ASSUMPTION
    bad_fraction: Probability = 0.0  # share of wafers from a bad lot
    # a bad wafer's core-failure clock speed, and its outright-failure clock speed
    bad_factor: float = Field(default=1.0, ge=1.0, le=MAX_CLOCK_FACTOR)
    bad_failure_factor: float = Field(default=1.0, ge=1.0, le=MAX_CLOCK_FACTOR)

    @model_validator(mode="after")
    def _cores_fit(self) -> WaferSpec:
        if self.active_cores > self.physical_cores:
            raise _KeyedError("active_cores", f"at most physical_cores ({self.physical_cores})")
        if working_wafer_log_bound(self) < LOG_MIN_WAFER_YIELD:
            hit = self.physical_cores * dead_core_chance(self)
            raise _KeyedError(
                "defect_density",
                f"a density at which a new wafer can work: {self.defect_density * self.area:.4g} "
                f"defects kill about {hit:,.0f} distinct cores, but a wafer fails once more than "
                f"{lost_cores_allowed(self):,} are lost (physical_cores - min_active_fraction x "
                "active_cores), so no new wafer would ever work",
            )
        return self


# A new wafer that works less often than this (the smallest normal double) never will:
# every one is dead on arrival. A likely cause is a slip in units ("1000 /cm2").
LOG_MIN_WAFER_YIELD = math.log(2.2e-308)


def lost_cores_allowed(spec: WaferSpec) -> int:
    """Dead cores a new wafer can have and still work: usable cores (active, less
    what the spare pool cannot cover) stay at or above min_active_fraction x active."""
    return spec.physical_cores - math.ceil(spec.min_active_fraction * spec.active_cores)


def dead_core_chance(spec: WaferSpec) -> float:
    """The chance q that a core of a new wafer is dead: Poisson(D0 x area) defects at
    uniformly random cores hit each of the n cores with 1 - exp(-D0 x area / n)."""
    return -math.expm1(-spec.defect_density * spec.area / spec.physical_cores)


def working_wafer_log_bound(spec: WaferSpec) -> float:
    """An upper bound on ln P(a new wafer works).

    The n cores die independently with q = `dead_core_chance`, so the dead
    cores are Binomial(n, q). A wafer works while they are at most
    a = `lost_cores_allowed`; for a < nq, Chernoff gives
    P(dead <= a) <= exp(-n KL(a/n || q)), exact (exp(-D0 x area)) at a = 0.
    """
    n, allowed, q = spec.physical_cores, lost_cores_allowed(spec), dead_core_chance(spec)
    if allowed >= n * q:
        return 0.0
    x = allowed / n
    # ln(1 - q) = -D0 x area / n exactly, where 1 - q itself may round to 0
    kl = (1.0 - x) * (spec.defect_density * spec.area / n) - x * math.log(q)
    if x > 0.0:
        kl += x * math.log(x) + (1.0 - x) * math.log1p(-x)
    return -n * kl


class ThermalSpec(_Model):
    """First-order wafer temperature: C dT/dt = P - (T - T_inlet) / R."""

    inlet: Temperature = _q("30 C")  # ASSUMPTION: warm facility water (sources A3: not published)
    resistance: ThermalResistance = _q("1.8 K/kW")  # ASSUMPTION: 23 kW -> ~71 C at 30 C inlet
    capacitance: HeatCapacity = _q("200 kJ/K")  # ASSUMPTION: tau = R C = 6 min
    throttle: Temperature = _q("85 C")  # ASSUMPTION
    trip: Temperature = _q("95 C")  # ASSUMPTION
    restart: Temperature = _q("45 C")  # ASSUMPTION: cool below this before a restart
    min_power_fraction: Probability = 0.5  # lowest power the thermal governor may set
    release_margin: DeltaTemperature = _q("2 K")

    @model_validator(mode="after")
    def _ordered(self) -> ThermalSpec:
        if not self.inlet < self.restart < self.throttle < self.trip:
            raise _KeyedError("", "inlet < restart < throttle < trip")
        if self.min_power_fraction <= 0:
            raise _KeyedError("min_power_fraction", "a fraction above zero")
        return self


MAX_CREWS = 10_000
UNLIMITED = "unlimited"


def _crews(value: object) -> int | str:
    if value == UNLIMITED:
        return UNLIMITED
    if type(value) is not int:  # strict: no bool, no float
        raise ValueError(f'a number of crews from 1 to {MAX_CREWS:,}, or "{UNLIMITED}"')
    if value < 1:
        raise ValueError(f'greater than or equal to 1, or "{UNLIMITED}"')
    if value > MAX_CREWS:
        raise ValueError(f'less than or equal to {MAX_CREWS}, or "{UNLIMITED}"')
    return value


# Crews on site, or "unlimited": a crew for every fault the moment it is ready.
CrewCount = Annotated[int | str, PlainValidator(_crews)]


class RepairSpec(_Model):
    """The repair pipeline: diagnosis, automated fix, manual repair by a crew."""

    crews: CrewCount = 2  # ASSUMPTION: two technicians on site
    shift_start: Duration = _q("0 h")  # hour of day the crews' shift starts
    shift_length: PositiveDuration = _q("24 h")  # 24 h = always on shift
    diagnosis: Distribution = _dist(dist="lognormal", median="20 min", sigma=0.6)
    wrong_unit_probability: Probability = 0.03  # ASSUMPTION: diagnosis blames a healthy unit
    auto_fix: Distribution = _dist(dist="deterministic", value="15 min")
    silent_failure_probability: Probability = 0.02  # ASSUMPTION: repair leaves it faulty
    # an automated fix that looks done leaves the unit faulty: it fails again after
    # detection_delay (default 0: every automated fix that does not escalate holds)
    auto_silent_failure_probability: Probability = 0.0
    detection_delay: Distribution = _dist(dist="exponential", mean="2 h")

    @model_validator(mode="after")
    def _shift_fits(self) -> RepairSpec:
        if self.shift_start >= 24.0 or self.shift_length > 24.0:
            raise _KeyedError("", "shift_start < 24 h and shift_length <= 24 h")
        if self.unlimited_crews and self.shift_length < 24.0:
            raise _KeyedError(
                "shift_length", f'24 h (always on shift) with crews = "{UNLIMITED}": a crew '
                "is there for every fault at once",
            )
        return self

    @property
    def unlimited_crews(self) -> bool:
        return self.crews == UNLIMITED

    @property
    def crew_count(self) -> float:
        """Crews on site: inf when unlimited."""
        return math.inf if isinstance(self.crews, str) else float(self.crews)


class SpareSpec(_Model):
    """Stock of one spare-part type with an (s, Q) reorder policy."""

    stock: int = Field(ge=0, le=MAX_PARTS)
    reorder_point: int = Field(ge=0, le=MAX_PARTS)
    order_quantity: int = Field(ge=1, le=MAX_PARTS)
    lead_time: Duration


class SpareSystemsSpec(_Model):
    """Whole spare systems for wafer failures; a failed one goes to RMA and comes back."""

    # ASSUMPTION: ~45 wafer failures a year in 1,020 systems and 30 d in RMA keep 3.7
    # systems away on average (Poisson): with 10 a failure finds none 0.5 % of the time
    count: int = Field(default=10, ge=0, le=MAX_SYSTEMS)
    swap_time: Distribution = _dist(dist="lognormal", median="6 h", sigma=0.4)
    rma_time: Distribution = _dist(dist="deterministic", value="30 d")  # ASSUMPTION


class RecordingSpec(_Model):
    """What the run records: hall metrics per `hall_bucket`, one scope level per `scope_bucket`."""

    hall_bucket: Bucket = _q("1 h")
    scope_level: Literal["none", "row", "rack", "system"] = "row"
    scope_bucket: Bucket = _q("1 d")
    events: bool = True


# -- serving (docs/serving.md) ---------------------------------------------------------

MAX_REQUEST_RATE = 1e6  # requests per second of one tenant: beyond any service
MAX_BATCH = 100_000  # concurrent sequences per replica
MAX_CONTEXT = 100_000_000  # tokens of context per sequence
MAX_PRIORITY = 1_000


def _name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text):
        raise ValueError("a name of 1 to 64 letters, digits, '_' or '-' (it names KPIs)")
    return text


# A deployment's or tenant's name: a part of KPI names and scopes, so no dots.
Name = Annotated[str, AfterValidator(_name)]


def _daily_shape() -> list[float]:
    """ASSUMPTION: interactive demand peaks mid-afternoon and bottoms out at night,
    1 + 0.5 cos(2 pi (h - 15) / 24): a mean of 1, 0.5 at 3:00, 1.5 at 15:00."""
    return [round(1 + 0.5 * math.cos(2 * math.pi * (h - 15) / 24), 6) for h in range(24)]


# ASSUMPTION: weekdays 10 % above the mean, weekends 25 % below (a mean of 1)
_WEEKLY_SHAPE = [1.1, 1.1, 1.1, 1.1, 1.1, 0.75, 0.75]


class SpeculativeSpec(_Model):
    """Speculative decoding: a draft model proposes `tokens` per verification step of
    the served model, each accepted with probability `acceptance`."""

    draft: Line
    tokens: int = Field(ge=1, le=64)
    acceptance: Probability


class DeploymentSpec(_Model):
    """A model served by `replicas` identical replicas, each on `systems` systems (the
    fewest that hold weights and KV cache when not given)."""

    model: Line
    bits: Literal[16, 8, 4] = 16  # weight precision
    kv_bits: Literal[16, 8, 4] | None = None  # KV-cache precision (default: bits)
    batch: int = Field(default=1, ge=1, le=MAX_BATCH)  # concurrent sequences per replica
    context: int = Field(default=8192, ge=1, le=MAX_CONTEXT)  # tokens held per sequence
    replicas: int = Field(ge=1, le=MAX_SYSTEMS)
    systems: int | None = Field(default=None, ge=1, le=MAX_SYSTEMS)
    speculative: SpeculativeSpec | None = None


class TenantSpec(_Model):
    """A customer of one deployment: its requests, their lengths, SLOs and rank."""

    deployment: Line
    requests_per_s: float = Field(ge=0, le=MAX_REQUEST_RATE)  # mean (flat, diurnal)
    # flat: requests_per_s at all hours; diurnal: x hourly[hour of day] x weekly[day];
    # rates: the hourly rates given (requests/s, from `rates_csv`), repeated
    profile: Literal["flat", "diurnal", "rates"] = "flat"
    hourly: list[Annotated[float, Field(ge=0, le=1e3)]] = Field(
        default_factory=_daily_shape, min_length=24, max_length=24
    )
    weekly: list[Annotated[float, Field(ge=0, le=1e3)]] = Field(
        default_factory=lambda: list(_WEEKLY_SHAPE), min_length=7, max_length=7
    )
    rates: list[Annotated[float, Field(ge=0, le=MAX_REQUEST_RATE)]] | None = Field(
        default=None, min_length=1, max_length=int(MAX_HORIZON_H)
    )
    prompt: Lengths = _dist(dist="lognormal", median=1000.0, sigma=0.8)  # ASSUMPTION
    output: Lengths = _dist(dist="exponential", mean=300.0)  # ASSUMPTION
    ttft: PositiveDuration = _q("2 s")  # SLO: time to first token
    tpot: PositiveDuration = _q("0.05 s")  # SLO: time per output token
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY)  # higher is served first
    reserved: int = Field(default=0, ge=0, le=MAX_SYSTEMS)  # replicas held for it

    @model_validator(mode="after")
    def _rates_iff_profile(self) -> TenantSpec:
        if (self.profile == "rates") != (self.rates is not None):
            raise _KeyedError(
                "profile", 'profile = "rates" exactly when hourly rates are given (rates_csv)'
            )
        return self


class ServingSpec(_Model):
    """Inference serving: deployments placed on the hall, tenants that use them."""

    fidelity: Literal["fluid", "request"] = "fluid"
    placement: Line = "pack"  # a strategy of twin.compute.PLACEMENTS
    hot_spares: int = Field(default=0, ge=0, le=MAX_SYSTEMS)  # kept out of every replica
    load_time: Duration = _q("10 min")  # ASSUMPTION: weights onto a spare system
    # the scheduler admits requests up to this share of capacity; the rest is turned
    # away (overload), so queues stay stable (docs/serving.md)
    admission: float = Field(default=0.95, gt=0, le=0.999)
    # reserved replicas their holder leaves idle serve the others (else they stay idle)
    lend_reserved: bool = False
    models: dict[Line, dict[str, Any]] = Field(default_factory=dict)
    deployments: dict[Name, DeploymentSpec] = Field(min_length=1)
    tenants: dict[Name, TenantSpec] = Field(min_length=1)
    _systems: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ServingSpec:
        from twin.compute import PLACEMENTS

        if self.placement not in PLACEMENTS:
            raise _KeyedError("placement", f"one of {sorted(PLACEMENTS)}")
        left = {name: dep.replicas for name, dep in self.deployments.items()}
        for name, tenant in self.tenants.items():
            if tenant.deployment not in self.deployments:
                raise _KeyedError(
                    f"tenants.{name}.deployment", f"a deployment of serving.deployments "
                    f"({', '.join(sorted(self.deployments))}), not {tenant.deployment!r}",
                )
            free = left[tenant.deployment]
            if tenant.reserved > free:  # the tenant whose reservation goes beyond
                held = self.deployments[tenant.deployment].replicas - free
                raise _KeyedError(
                    f"tenants.{name}.reserved", f"at most the {free} replicas of deployment "
                    f"{tenant.deployment} not reserved by tenants before it (it has "
                    f"{self.deployments[tenant.deployment].replicas}, {held} reserved), "
                    f"not {tenant.reserved}",
                )
            left[tenant.deployment] = free - tenant.reserved
        return self

    def systems_per_replica(self) -> dict[str, int]:
        """Systems of each deployment's replicas (given, or the fewest that fit), as the
        scenario resolved them on its system kind."""
        return dict(self._systems)


def deployment_perf(spec: ServingSpec, kind: str = "wafer") -> dict[str, Any]:
    """`twin.compute.Perf` of one replica of each deployment on systems of `kind`, at
    full speed, for a 1-token prompt; a model the catalogue lacks or a replica too
    small to hold its model is a `_KeyedError` naming the deployment's key (relative
    to the serving table)."""
    from twin.compute import FitError, Speculative, catalogue, evaluate
    from twin.compute.hardware import for_system

    hardware = for_system(kind)

    try:
        models = catalogue(spec.models)
    except ValueError as exc:
        raise _KeyedError("models", str(exc)) from None
    out = {}
    for name, dep in spec.deployments.items():
        key = f"deployments.{name}"
        for field, model in (("model", dep.model),
                             ("speculative.draft", dep.speculative and dep.speculative.draft)):
            if model and model not in models:
                raise _KeyedError(f"{key}.{field}", f"a model of the catalogue or serving.models "
                                  f"({', '.join(sorted(models))}), not {model!r}")
        spec_dec = dep.speculative and Speculative(
            models[dep.speculative.draft], dep.speculative.tokens, dep.speculative.acceptance
        )
        try:
            out[name] = evaluate(
                models[dep.model], bits=dep.bits, kv_bits=dep.kv_bits, batch=dep.batch,
                context=dep.context, prompt=1, speculative=spec_dec or None,
                systems=dep.systems, hardware=hardware,
            )
        except FitError as exc:
            where = f"{key}.systems" if dep.systems else key
            raise _KeyedError(
                where, f"replicas that hold the model's weights and KV cache "
                f"({exc.missing_bytes:,.0f} bytes missing: {exc})",
            ) from None
    return out


# Component classes of a CS-3-like system: PSUs 6+6, internal pumps 1+1 and fans
# 3+1 (sources A3, CS-1 teardown). Lifetimes are ASSUMPTIONS (no sourced AFR for
# pumps and fans, sources C3); PSU MTBF in the range of vendor power modules. Pumps
# (mean ~90,000 h, ~10 %/yr at steady state) and fans (mean ~230,000 h, ~4 %/yr)
# are in the range of rated lives of such parts; the earlier 40,000 h and 90,000 h
# scales gave ~24 %/yr and ~10 %/yr, more than an operator would accept.
_DEFAULT_COMPONENTS: dict[str, dict[str, Any]] = {
    "psu": {
        "count": 12, "required": 6, "part": "psu",
        "failure": {"dist": "exponential", "mean": "150000 h"},
        "repair": {"dist": "lognormal", "median": "1 h", "sigma": 0.4},
        "escalate_probability": 0.7,
    },
    "pump": {
        "count": 2, "required": 1, "part": "pump",
        "failure": {"dist": "weibull", "shape": 1.5, "scale": "100000 h"},
        "repair": {"dist": "lognormal", "median": "3 h", "sigma": 0.5},
        "escalate_probability": 0.9,
        "thermal_factor": 1.1,
        "failover": {"dist": "lognormal", "median": "1 min", "sigma": 1.0},
        "failover_factor": 4.0,
    },
    "fan": {
        "count": 4, "required": 3, "part": "fan",
        "failure": {"dist": "weibull", "shape": 1.3, "scale": "250000 h"},
        "repair": {"dist": "lognormal", "median": "45 min", "sigma": 0.4},
        "escalate_probability": 0.8,
        "thermal_factor": 1.02,
    },
}

# ASSUMPTIONS: hall-level stock sized for the steady-state demand of the default
# hall (parts = failures x escalate_probability / ((1 - wrong unit)(1 - silent))):
# ~526 PSUs, ~194 pumps, ~137 fans a year. The reorder point covers the demand over
# a lead time at a 99 % cycle service level (Poisson quantile: 10.1 -> 18, 7.4 -> 14,
# 2.6 -> 7); an order is about a month of demand; the first stock is one order
# above the reorder point. (The earlier stocks were sized from a new hall's first
# year, whose wear-out parts fail about half as often: pump stockouts grew year on
# year.)
_DEFAULT_SPARES: dict[str, dict[str, Any]] = {
    "psu": {"stock": 62, "reorder_point": 18, "order_quantity": 44, "lead_time": "7 d"},
    "pump": {"stock": 30, "reorder_point": 14, "order_quantity": 16, "lead_time": "14 d"},
    "fan": {"stock": 19, "reorder_point": 7, "order_quantity": 12, "lead_time": "7 d"},
}


# -- facility (docs/facility.md) ---------------------------------------------------------

# Power of a facility plant (a UPS's recharge): up to 1 GW, past a system's 1 MW bound.
PlantPower = Annotated[float, Unit("power", highest=1e6)]
Energy = Annotated[float, Unit("energy")]


class UtilitySpec(_Model):
    """Utility outages of each source: a Poisson process of `outage_interval` mean gap
    and `outage_duration` lengths."""

    outage_interval: PositiveDuration = _q("1 y")  # ASSUMPTION: one interruption a year
    outage_duration: Distribution = _dist(dist="lognormal", median="1 h", sigma=1.0)  # ASSUMPTION


class UpsSpec(_Model):
    """A UPS per source: `energy` stored, delivered at `efficiency`, recharged at `recharge`."""

    energy: Energy = _q("4000 kWh")  # ASSUMPTION: ~10 min of the whole default hall (23.5 MW)
    efficiency: float = Field(default=0.95, gt=0, le=1)  # ASSUMPTION: battery to load
    recharge: PlantPower = _q("2000 kW")  # ASSUMPTION: a flat battery full in 2 h


class GeneratorSpec(_Model):
    """The generators of a source: `required` of `count` carry its load `start_delay`
    after an outage begins; each fails to start with probability `fail_to_start`."""

    count: int = Field(default=11, ge=0, le=1000)  # ASSUMPTION: N+1 of 2.5 MW sets
    required: int = Field(default=10, ge=0, le=1000)
    start_delay: Duration = _q("30 s")  # ASSUMPTION: start, synchronise, transfer
    fail_to_start: Probability = 0.01  # ASSUMPTION

    @model_validator(mode="after")
    def _required_fits(self) -> GeneratorSpec:
        if self.required > self.count:
            raise _KeyedError("required", f"at most count ({self.count})")
        return self


class PduSpec(_Model):
    """A PDU per rack per feed: lives and repairs (a facility electrician, not a crew)."""

    failure: Distribution = _dist(dist="exponential", mean="500000 h")  # ASSUMPTION
    repair: Distribution = _dist(dist="lognormal", median="2 h", sigma=0.5)  # ASSUMPTION


class ScheduledOutageSpec(_Model):
    """One utility outage of source `source`, from `start` for `duration`."""

    source: Literal["A", "B"]
    start: Duration
    duration: PositiveDuration


class PowerSpec(_Model):
    """The power chain: sources (utility, UPS, generators), feeds A and B, rack PDUs,
    and the PSUs of class `psu_class` split across the feeds."""

    # 2N: feeds A and B from independent sources A and B; N+1: both from source A
    topology: Literal["2N", "N+1"] = "2N"
    psu_class: Line = "psu"
    psus_on_a: int = Field(default=6, ge=0, le=1000)  # units 1..psus_on_a on feed A, rest B
    utility: UtilitySpec = Field(default_factory=UtilitySpec)
    ups: UpsSpec = Field(default_factory=UpsSpec)
    generators: GeneratorSpec = Field(default_factory=GeneratorSpec)
    pdu: PduSpec = Field(default_factory=PduSpec)
    outages: list[ScheduledOutageSpec] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _sources_exist(self) -> PowerSpec:
        for i, outage in enumerate(self.outages):
            if self.topology == "N+1" and outage.source != "A":
                raise _KeyedError(f"outages.{i}.source", 'source "A" (N+1 has one source)')
        return self

    @property
    def sources(self) -> list[str]:
        """The names of the independent sources."""
        return ["A", "B"] if self.topology == "2N" else ["A"]


MassFlow = Annotated[float, Unit("mass_flow", positive=True)]
PlantHeatCapacity = Annotated[float, Unit("heat_capacity", highest=1e9)]  # up to 1 TJ/K


# Outdoor temperatures on Earth: the records are -89.2 C and 56.7 C.
MIN_OUTDOOR_C, MAX_OUTDOOR_C = -90.0, 60.0


class HeatWaveSpec(_Model):
    """`rise` more outdoors from `start` for `duration`."""

    start: Duration
    duration: PositiveDuration
    rise: DeltaTemperature


class OutdoorSpec(_Model):
    """Hourly outdoor temperature: `mean` + `seasonal` cos(2 pi (day - hottest_day) / 365)
    + `diurnal` cos(2 pi (hour - hottest_hour) / 24), taken at each hour's middle, plus
    the heat waves under way; or the given `hourly` values, repeated."""

    mean: Temperature = _q("15 C")  # ASSUMPTION: a temperate site
    seasonal: DeltaTemperature = _q("10 K")  # ASSUMPTION
    diurnal: DeltaTemperature = _q("5 K")  # ASSUMPTION
    hottest_day: int = Field(default=200, ge=0, le=364)  # mid-July
    hottest_hour: int = Field(default=15, ge=0, le=23)
    # degrees C, hour 0, 1, 2, ... (repeated); from `hourly_csv` in a scenario file
    hourly: list[Annotated[float, Field(ge=MIN_OUTDOOR_C, le=MAX_OUTDOOR_C)]] | None = Field(
        default=None, min_length=1, max_length=int(MAX_HORIZON_H)
    )
    heat_waves: list[HeatWaveSpec] = Field(default_factory=list, max_length=10_000)


class UnitOutageSpec(_Model):
    """`units` units out from `start` for `duration` (maintenance, a known fault)."""

    start: Duration
    duration: PositiveDuration
    units: int = Field(default=1, ge=1, le=1000)
    row: int = Field(default=1, ge=1, le=10_000)  # CDU pumps only: the row (1-based)


DRY_COOLER_KEYS = ("kind", "supply", "approach", "fan_power")  # not in a chiller's document


class ChillerSpec(_Model):
    """The units rejecting the hall's heat: `count` of `capacity` each.

    `kind = "chiller"` (a compressor): derated by `derate` per K of outdoor
    temperature above `design_outdoor`; electric power = heat / COP with
    1 / COP = (1 / `cop`) (1 + `cop_slope` (T_out - `cop_reference`)).
    `kind = "dry_cooler"` (fans, no compressor): full capacity up to
    `design_outdoor`, then falling linearly to zero at `supply` - `approach`;
    electric power = `fan_power` per unit-equivalent of heat at the hour's
    capacity, at most `count` units."""

    kind: Literal["chiller", "dry_cooler"] = "chiller"
    count: int = Field(default=4, ge=0, le=1000)  # ASSUMPTION: N+1 of 8 MW for 23.5 MW
    capacity: PlantPower = _q("8000 kW")  # ASSUMPTION
    design_outdoor: Temperature = _q("35 C")  # ASSUMPTION
    # dry coolers only (dropped from the document of chillers)
    supply: Temperature = _q("32 C")  # ASSUMPTION: facility water supply, warm-water class W32
    approach: DeltaTemperature = _q("5 K")  # ASSUMPTION: coil approach at full fan speed
    fan_power: PlantPower = _q("120 kW")  # ASSUMPTION: 1.5 % of a unit's capacity
    derate: float = Field(default=0.02, ge=0, le=1)  # ASSUMPTION: 2 % of capacity per K
    cop: float = Field(default=6.0, gt=0, le=100)  # ASSUMPTION: warm-water chiller
    cop_reference: Temperature = _q("15 C")
    cop_slope: float = Field(default=0.03, ge=0, le=1)  # ASSUMPTION: 3 % more power per K
    failure: Distribution = _dist(dist="exponential", mean="20000 h")  # ASSUMPTION
    repair: Distribution = _dist(dist="lognormal", median="24 h", sigma=0.6)  # ASSUMPTION
    outages: list[UnitOutageSpec] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _dry_cooler_can_reject(self) -> ChillerSpec:
        if self.kind == "dry_cooler" and self.design_outdoor >= self.supply - self.approach:
            raise _KeyedError(
                "design_outdoor", f"below supply - approach ({self.supply - self.approach:g} C) "
                "for a dry cooler",
            )
        return self


class CduSpec(_Model):
    """A CDU per row: `pumps` of which `required` give the design flow; each running
    pump moves `pump_flow` and draws `pump_power`. Its heat exchanger carries up to
    flow x c_p x `design_rise`; the row's loop holds `loop_heat_capacity`."""

    pumps: int = Field(default=3, ge=1, le=1000)  # ASSUMPTION: N+1
    required: int = Field(default=2, ge=1, le=1000)
    pump_flow: MassFlow = _q("15 kg/s")  # ASSUMPTION: 2 x 15 kg/s x 4.18 x 10 K = 1.25 MW
    pump_power: Power = _q("15 kW")  # ASSUMPTION
    design_rise: DeltaTemperature = _q("10 K")  # ASSUMPTION
    loop_heat_capacity: PlantHeatCapacity = _q("8000 kJ/K")  # ASSUMPTION: ~2 m3 of water
    failure: Distribution = _dist(dist="weibull", shape=1.5, scale="50000 h")  # ASSUMPTION
    repair: Distribution = _dist(dist="lognormal", median="4 h", sigma=0.5)  # ASSUMPTION
    outages: list[UnitOutageSpec] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _required_fits(self) -> CduSpec:
        if self.required > self.pumps:
            raise _KeyedError("required", f"at most pumps ({self.pumps})")
        return self


class CoolingSpec(_Model):
    """The cooling chain: chillers, the facility water loop, a CDU per row; the systems'
    inlet is `thermal.inlet` plus what the loops gained, in steps of `step`."""

    outdoor: OutdoorSpec = Field(default_factory=OutdoorSpec)
    chillers: ChillerSpec = Field(default_factory=ChillerSpec)
    cdu: CduSpec = Field(default_factory=CduSpec)
    water_heat_capacity: PlantHeatCapacity = _q("800000 kJ/K")  # ASSUMPTION: ~200 m3
    step: DeltaTemperature = _q("0.5 K")  # resolution of the inlet the systems see

    @model_validator(mode="after")
    def _positive(self) -> CoolingSpec:
        if self.step <= 0:
            raise _KeyedError("step", "a temperature step above 0 K")
        if self.water_heat_capacity <= 0 or self.cdu.loop_heat_capacity <= 0:
            raise _KeyedError("water_heat_capacity", "heat capacities above 0")
        return self


class CapSpec(_Model):
    """A facility power budget for IT: systems' power fractions lowered by `policy`."""

    budget: PlantPower | None = None  # none: no cap
    # uniform: every system at budget / full power; ordered: systems lowered one by one
    # to `floor`, the last row first (the first row keeps full power longest)
    policy: Literal["uniform", "ordered"] = "ordered"
    floor: float = Field(default=0.5, gt=0, le=1)  # lowest fraction `ordered` sets


class FacilitySpec(_Model):
    """The facility around the hall (docs/facility.md)."""

    power: PowerSpec = Field(default_factory=PowerSpec)
    cooling: CoolingSpec = Field(default_factory=CoolingSpec)
    cap: CapSpec = Field(default_factory=CapSpec)
    distribution_loss: float = Field(default=0.02, ge=0, le=1)  # ASSUMPTION: of IT power
    ups_loss: float = Field(default=0.03, ge=0, le=1)  # ASSUMPTION: double conversion


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Scenario data `top` over `base`, table by table; a distribution (a table with
    ``dist``) is replaced whole. Neither input is changed."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "dist" not in value:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class PreemptibleSpec(_Model):
    """Hall systems running preemptible work, reclaimed by a training job whose
    working pool is short (docs/training.md)."""

    systems: int = Field(ge=1, le=MAX_SYSTEMS)  # running preemptible work at the start
    reclaim_time: Duration = _q("0 h")  # stop the work, clean and prepare the system
    work_lost: Duration = _q("0 h")  # preemptible work killed by one reclaim (system-h)
    # "returned": back to preemptible work once the job no longer needs it; "kept"
    reclaimed: Literal["returned", "kept"] = "returned"


class TrainingSpec(_Model):
    """A gang-scheduled training job with checkpoint and restart (docs/training.md)."""

    systems: int = Field(ge=1, le=MAX_SYSTEMS)  # K: the job runs only with all K up
    work: PositiveDuration  # compute time to finish on K systems, failures aside
    # periodic: checkpoints to storage, a failure loses the work since the last;
    # continuous: redundant in-memory state, a failure loses no work
    checkpointing: Literal["periodic", "continuous"] = "periodic"
    checkpoint_interval: PositiveDuration | None = None  # compute between two checkpoints
    checkpoint_cost: Duration = _q("0 h")  # writing one checkpoint
    restart_cost: Duration = _q("0 h")  # reload the state, rebuild the gang
    standbys: int = Field(default=0, ge=0, le=MAX_SYSTEMS)  # warm, held by the job
    host_selection: Duration = _q("0 h")  # pick a healthy system of the pool
    # always: every system's units and wafer age in calendar time; while_running: only
    # the systems of the job's gang age, idle and standby ones stand still (docs/model.md)
    ageing: Literal["always", "while_running"] = "always"
    preemptible: PreemptibleSpec | None = None  # no table: no preemptible pool

    @model_validator(mode="after")
    def _interval(self) -> TrainingSpec:
        if self.checkpointing == "periodic" and self.checkpoint_interval is None:
            raise _KeyedError(
                "checkpoint_interval", 'a duration above 0 (with checkpointing = "periodic")'
            )
        return self


class Scenario(_Model):
    """A fully resolved scenario: every mechanism's parameters, defaults included."""

    name: Line = "scenario"
    description: Text = ""
    run: RunSpec = Field(default_factory=RunSpec)
    hall: HallSpec = Field(default_factory=HallSpec)
    system: SystemSpec = Field(default_factory=SystemSpec)
    components: dict[Line, ComponentSpec] = Field(default_factory=dict)
    wafer: WaferSpec | None = None  # a wafer-scale system's (its defaults); none on a GPU node
    thermal: ThermalSpec = Field(default_factory=ThermalSpec)
    repair: RepairSpec = Field(default_factory=RepairSpec)
    spares: dict[Line, SpareSpec] = Field(default_factory=dict)
    spare_systems: SpareSystemsSpec | None = None  # the same
    recording: RecordingSpec = Field(default_factory=RecordingSpec)
    serving: ServingSpec | None = None  # no section: no serving
    training: TrainingSpec | None = None  # no section: no training job
    package: PackageSpec | None = None  # no section: no package fatigue
    facility: FacilitySpec | None = None  # no section: power and cooling from nowhere
    # where it was read from, for errors found only while it runs; not part of the
    # document or the hash
    _source: str = PrivateAttr(default="scenario")

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """Defaults of the system's kind under the given keys: a wafer-scale system's
        classes, spares, wafer and spare systems, or a GPU node's (twin.gpu_node)
        classes and spares (its power: `SystemSpec`), and none of a wafer's tables."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if _kind_of(data) == "gpu_node":
            for key, why in _NO_WAFER.items():
                if data.get(key) is not None:
                    raise _KeyedError(key, f"no [{key}] on a gpu_node hall: {why}")
            defaults = (("components", gpu_node.components()), ("spares", gpu_node.SPARES))
        else:
            for key in ("wafer", "spare_systems"):
                if data.get(key) is None:
                    data[key] = {}
            defaults = (("components", _DEFAULT_COMPONENTS), ("spares", _DEFAULT_SPARES))
        for key, table in defaults:
            given = data.get(key, {})
            if isinstance(given, dict):
                data[key] = deep_merge(table, given)
        return data

    @model_validator(mode="after")
    def _parts_stocked(self) -> Scenario:
        for name, comp in self.components.items():
            if comp.part not in self.spares:
                raise _KeyedError(
                    f"components.{name}.part", f"a part named in [spares] ({sorted(self.spares)})"
                )
        return self

    def __eq__(self, other: object) -> bool:
        """Equal when every key is: where each was read from does not count."""
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    @model_validator(mode="after")
    def _training_fits(self) -> Scenario:
        training = self.training
        if training is None:
            return self
        if self.serving is not None:
            raise _KeyedError("training", "no [serving] section beside it (one workload a hall)")
        parts = {"systems": training.systems, "standbys": training.standbys}
        if training.preemptible is not None:
            parts["preemptible systems"] = training.preemptible.systems
        if sum(parts.values()) > self.systems:
            raise _KeyedError(
                "training.systems", f"{' + '.join(parts)} within the hall's {self.systems:,} "
                f"systems, not {' + '.join(f'{v:,}' for v in parts.values())}",
            )
        return self

    @model_validator(mode="after")
    def _serving_fits(self) -> Scenario:
        serving = self.serving
        if serving is None:
            return self
        try:
            perf = deployment_perf(serving, self.system.kind)
        except _KeyedError as exc:
            raise _KeyedError(f"serving.{exc.key}", exc.expected) from None
        serving._systems = {name: int(p.systems) for name, p in perf.items()}
        per_replica = serving.systems_per_replica()
        used = sum(d.replicas * per_replica[n] for n, d in serving.deployments.items())
        if used + serving.hot_spares > self.systems:
            each = ", ".join(f"{n} {d.replicas:,} x {per_replica[n]}"
                             for n, d in serving.deployments.items())
            raise _KeyedError(
                "serving.deployments", f"replicas x systems per replica + hot_spares within the "
                f"hall's {self.systems:,} systems, not {used:,} ({each}) + "
                f"{serving.hot_spares:,}",
            )
        return self

    @model_validator(mode="after")
    def _facility_psus(self) -> Scenario:
        if self.facility is None:
            return self
        power = self.facility.power
        psu = self.components.get(power.psu_class)
        if psu is None:
            raise _KeyedError(
                "facility.power.psu_class", f"a class of [components] ({sorted(self.components)})"
            )
        if power.psus_on_a > psu.count:
            raise _KeyedError(
                "facility.power.psus_on_a", f"at most components.{power.psu_class}.count "
                f"({psu.count})",
            )
        budget, full = self.facility.cap.budget, self.systems * self.system.power
        if budget is not None and budget < full * self.facility.cap.floor:
            raise _KeyedError(
                "facility.cap.budget", f"at least the hall at the floor fraction "
                f"({full * self.facility.cap.floor:g} kW)",
            )
        for i, outage in enumerate(self.facility.cooling.cdu.outages):
            if outage.row > self.hall.rows:
                raise _KeyedError(
                    f"facility.cooling.cdu.outages.{i}.row",
                    f"a row of the hall (1 to {self.hall.rows})",
                )
        return self

    @property
    def source(self) -> str:
        """The file it was loaded from ("scenario" when built in code)."""
        return self._source

    @property
    def systems(self) -> int:
        h = self.hall
        return h.rows * h.racks_per_row * h.systems_per_rack

    def document(self) -> dict[str, Any]:
        """The resolved scenario as plain data (units as canonical strings); a scenario
        without serving, package fatigue, a facility or a class's Arrhenius table has no
        such key, nor chillers the dry coolers' keys, nor a wafer-scale system its kind,
        nor an option below at its default (its document, and hash, as before); a GPU
        node has no wafer and no spare systems."""
        document = self.model_dump(mode="json", by_alias=True)
        for key in ("serving", "training", "package", "facility", "wafer", "spare_systems"):
            if document[key] is None:
                del document[key]
        _drop_defaults(document["system"], _SYSTEM_OPTIONS)
        for component in document["components"].values():
            _drop_defaults(component, _COMPONENT_OPTIONS)
        _drop_defaults(document["repair"], _REPAIR_OPTIONS)
        if "training" in document:
            _drop_defaults(document["training"], _TRAINING_OPTIONS)
        if "facility" in document:
            chillers = document["facility"]["cooling"]["chillers"]
            if chillers["kind"] == "chiller":
                for key in DRY_COOLER_KEYS:
                    del chillers[key]
        return document

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the resolved document (seed and horizon excluded)."""
        doc = self.document()
        doc.pop("run", None)
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# What a GPU node has in place of each wafer-scale table (docs/gpu.md).
_NO_WAFER = {
    "wafer": "a GPU node has no wafer (no core loss, remaps or wafer failures: its GPUs "
             "fail as component classes, twin.gpu_node)",
    "spare_systems": "a node is repaired in place, a part at a time; whole-node swaps are a "
                     "workload's (a training job's standbys, serving's failover)",
    "package": "package fatigue swaps a whole system through the wafer's path",
}


def _kind_of(data: dict[str, Any]) -> object:
    """The system kind raw scenario data asks for (validated with [system])."""
    system = data.get("system")
    if isinstance(system, SystemSpec):
        return system.kind
    return system.get("kind", "wafer") if isinstance(system, dict) else "wafer"


# Keys added after scenarios were stored, dropped from a document at their default (the
# behaviour before them) so that stored scenarios keep their hashes: the system kind,
# the Arrhenius table, the semantics other simulators assume (docs/model.md), and the
# training job's checkpointing and preemptible pool (docs/training.md).
_SYSTEM_OPTIONS: dict[str, Any] = {"kind": "wafer"}
_COMPONENT_OPTIONS: dict[str, Any] = {"arrhenius": None, "fix_bad_probability": None}
_REPAIR_OPTIONS: dict[str, Any] = {"auto_silent_failure_probability": 0.0}
_TRAINING_OPTIONS: dict[str, Any] = {
    "ageing": "always", "checkpointing": "periodic", "preemptible": None,
}


def _drop_defaults(table: dict[str, Any], options: dict[str, Any]) -> None:
    for key, default in options.items():
        if key in table and table[key] == default:
            del table[key]


class _KeyedError(ValueError):
    """A cross-field error that knows its key, relative to the table it is raised in."""

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(expected)
        self.key = key
        self.expected = expected


Origins = dict[str, str]  # dotted key -> the file (or "--set") that set it

_TOP_KEYS = frozenset(Scenario.model_fields)


def _display(path: Path) -> str:
    """A path as a user would write it: relative to the working folder when inside it."""
    try:
        return escaped(str(path.relative_to(Path.cwd())))
    except ValueError:
        return escaped(str(path))


def _note_origins(data: dict[str, Any], source: str, origins: Origins, prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = source
        if isinstance(value, dict):
            _note_origins(value, source, origins, f"{dotted}.")


def _read_toml(
    path: Path,
    text: str,
    shown: str,
    origins: Origins,
    root: Path | None,
    seen: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Parse `text`, read from `path`, and the bases it extends, noting which file set
    each key. A base must lie under `root` (the folder of the file named on the
    command line), anywhere when `root` is None."""
    if path in seen:
        cycle = " -> ".join(_display(p) for p in (*seen, path))
        raise ScenarioError(shown, "extends", "no cycle of extends", cycle)
    data = _parse_toml(text, shown, named=not seen)
    base = data.pop("extends", None)
    if seen and data and not data.keys() & _TOP_KEYS:
        # a base that is no scenario: say so without a word of what it holds
        raise ScenarioError(shown, "", "a scenario file (none of its keys is a scenario key)")
    if base is None:
        _note_origins(data, shown, origins)
        return data
    if not isinstance(base, str) or not base or any(
        unprintable(c) for c in base
    ):
        raise ScenarioError(
            shown, "extends", "a relative path to a base scenario", _brief(base)
        )
    base_path = (path.parent / base).resolve()
    if root is not None and not base_path.is_relative_to(root):
        raise ScenarioError(
            shown, "extends",
            f"a base scenario inside {_display(root)}, the folder of the scenario named on the "
            "command line (--allow-outside or TWIN_ALLOW_OUTSIDE=1 lifts this)", _brief(base),
        )
    try:
        base_text = _read_text(base_path, "base scenario file")
    except ValueError as exc:
        raise ScenarioError(shown, "extends", str(exc), _brief(base)) from None
    parent = _read_toml(
        base_path, base_text, _display(base_path), origins, root, (*seen, path)
    )
    parent.pop("name", None)
    parent.pop("description", None)
    _note_origins(data, shown, origins)
    return deep_merge(parent, data)


def _read_text(path: Path, what: str = "scenario file") -> str:
    """The text of a scenario file: a regular file of at most `MAX_SCENARIO_BYTES`,
    UTF-8 with or without a byte-order mark. Nothing else is opened (a FIFO, a
    device) or read (a pseudo-file of /proc or /sys, which may block or never end).
    Raises `ValueError` saying what was expected (`what`: the kind of file)."""
    too_big = f"a {what} of at most {MAX_SCENARIO_BYTES:,} bytes"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ValueError(f"an existing {what}") from None
    except OSError as exc:
        raise ValueError(f"a readable {what} ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"a {what} that is a regular file (not a folder, device, pipe or socket)")
    if info.st_size == 0 and info.st_dev in _pseudo_devices():
        raise ValueError(f"a {what} that is a regular file (not a pseudo-file of /proc or /sys)")
    if info.st_size > MAX_SCENARIO_BYTES:
        raise ValueError(too_big)
    try:
        # non-blocking: a file swapped for a FIFO since the check above opens at once
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"a {what} that is a regular file")
            raw = b""
            while chunk := os.read(fd, MAX_SCENARIO_BYTES + 1 - len(raw)):
                raw += chunk
                if len(raw) > MAX_SCENARIO_BYTES:
                    raise ValueError(too_big)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ValueError(f"a readable {what} ({exc.strerror})") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ValueError(f"a {what} in UTF-8 (byte {exc.start} is not UTF-8)") from None


def _pseudo_devices() -> set[int]:
    """Devices of the kernel's pseudo-filesystems, whose files claim a size of 0."""
    devices = set()
    for folder in ("/proc", "/sys"):
        try:
            devices.add(os.stat(folder).st_dev)
        except OSError:
            continue
    return devices


def _parse_toml(text: str, shown: str, named: bool) -> dict[str, Any]:
    """TOML `text` as data, nested at most `MAX_DEPTH` deep. The parser's message may
    quote a key or a character of the text: for a file not `named` on the command
    line (a base, maybe no scenario at all) only where the error is is shown."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at ([^()]*)\)$", str(exc))
        detail = str(exc) if named or where is None else f"error at {where[1]}"
        raise ScenarioError(shown, "", f"valid TOML ({detail})") from None
    except RecursionError:
        raise ScenarioError(shown, "", f"TOML nested at most {MAX_DEPTH} deep") from None
    if _depth(data) > MAX_DEPTH:
        raise ScenarioError(shown, "", f"TOML nested at most {MAX_DEPTH} deep")
    return data


def _depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """How deep tables and arrays nest in `value` (counting stops past `limit`)."""
    if limit == 0 or not isinstance(value, dict | list):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


def _origin_of(key: str, origins: Origins, default: str) -> str:
    """Which file (or ``--set``) is to blame for a problem at `key`."""
    probe = key
    while probe:
        if probe in origins:
            below = {src for k, src in origins.items() if k.startswith(f"{key}.")}
            return "--set" if "--set" in below else origins[probe]
        probe = probe.rpartition(".")[0]
    below = {src for k, src in origins.items() if k.startswith(f"{key}.")}
    if "--set" in below:
        return "--set"
    return default if default in below or not below else sorted(below)[0]


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=VALUE`` to raw scenario data; VALUE is a TOML value or a bare string."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ScenarioError(
            "--set", escaped(assignment), "KEY=VALUE with a dotted KEY such as hall.rows=4"
        )
    try:
        printable(assignment)
    except ValueError as exc:
        # a newline would end the TOML value early and the rest be silently dropped
        raise ScenarioError("--set", escaped(key), f"one line of {exc}") from None
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ScenarioError("--set", key, f"a value nested at most {MAX_DEPTH} deep") from None
    if _depth(value) > MAX_DEPTH - len(key.split(".")):
        raise ScenarioError("--set", key, f"a value nested at most {MAX_DEPTH} deep")
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ScenarioError("--set", key, f"'{part}' to be a table, not a value")
        node = child
    node[leaf] = value


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = [escaped(str(p)) for p in loc if not (isinstance(p, str) and p in _UNION_TAGS)]
    return ".".join(parts)


_UNION_TAGS = {"exponential", "weibull", "lognormal", "deterministic"}


def _explain(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "no such key (a typo, or a key of another table?)"
    if kind == "missing":
        return "this key to be given"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "a table of keys"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "a distribution with dist = exponential (mean), weibull (shape, scale), " \
            "lognormal (median, sigma) or deterministic (value)"
    msg = str(err["msg"]).replace("Input should be ", "")
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def parse_scenario(
    data: dict[str, Any], source: str, origins: Origins | None = None
) -> Scenario:
    """Validate raw scenario data; each error names the dotted key and where it was set
    (`origins`: dotted key -> file or ``--set``; `source` when unknown)."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            ctx = err.get("ctx") or {}
            inner = ctx.get("error")
            if isinstance(inner, _KeyedError):
                key = ".".join(k for k in (_dotted(err["loc"]), inner.key) if k)
                expected = inner.expected
            else:
                key, expected = _dotted(err["loc"]), _explain(err)
            origin = _origin_of(key, origins or {}, source)
            problems.append(ScenarioError(origin, key, expected, _shown(err)))
        first, *more = problems
        error = ScenarioError(first.source, first.key, first.expected, first.got, tuple(more))
        raise error from None
    scenario._source = source
    return scenario


def scale_scenario(scenario: Scenario, factor: int) -> Scenario:
    """`factor` copies of the hall with their support pooled: rows, crews, spare
    systems and every part's stock, reorder point and order quantity times
    `factor`; the rest (a system, its mechanisms, the shift, lead times) stays.
    A scaled value out of bounds is a `ScenarioError` from ``--scale``."""
    if factor == 1:
        return scenario
    document = scenario.document()
    document["hall"]["rows"] *= factor
    if document["repair"]["crews"] != UNLIMITED:
        document["repair"]["crews"] *= factor
    if "spare_systems" in document:
        document["spare_systems"]["count"] *= factor
    for part in document["spares"].values():
        for key in ("stock", "reorder_point", "order_quantity"):
            part[key] *= factor
    if "facility" in document:
        _scale_facility(document["facility"], factor)
    scaled = parse_scenario(document, "--scale")
    scaled._source = scenario.source
    return scaled


def _scale_facility(facility: dict[str, Any], factor: int) -> None:
    """The plant that serves the whole hall, `factor` times: generators, UPS energy and
    recharge, chillers, the facility water and the power budget (PDUs and CDUs come
    with the racks and rows)."""

    def times(table: dict[str, Any], key: str, dimension: str) -> None:
        if table[key] is not None:
            value = units.parse(table[key], dimension) * factor
            table[key] = units.format_quantity(value, dimension)

    power, cooling = facility["power"], facility["cooling"]
    for key in ("count", "required"):
        power["generators"][key] *= factor
    times(power["ups"], "energy", "energy")
    times(power["ups"], "recharge", "power")
    cooling["chillers"]["count"] *= factor
    times(cooling, "water_heat_capacity", "heat_capacity")
    times(facility["cap"], "budget", "power")


def run_option(key: str, value: object, source: str) -> Any:
    """A `[run]` key given outside the scenario (``--until``, ``--seed``), held to the
    schema's own bounds; a `ScenarioError` naming `source` and ``run.<key>`` if not."""
    try:
        return getattr(RunSpec.model_validate({key: value}), key)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioError(source, f"run.{key}", _explain(err), _shown(err)) from None


def _shown(err: Any) -> Any:
    """The offending value of a problem, as the error shows it: none for a table or for
    an unknown key (whose value may come from a file that is no scenario at all),
    cut short when long."""
    value = err.get("input")
    if isinstance(value, dict) or err["type"] == "extra_forbidden":
        return None
    return _brief(value)


def _brief(value: Any) -> Any:
    """`value`, or the start of its repr when that is long."""
    if len(repr(value)) > _SHOWN_CHARS:
        return _Cut(repr(value)[:_SHOWN_CHARS] + "...")
    return value


_SHOWN_CHARS = 80


class _Cut(str):
    """The start of a long value's repr, shown as it is."""

    def __repr__(self) -> str:
        return str(self)


def load_scenario(
    path: str | Path,
    overrides: tuple[str, ...] | list[str] = (),
    *,
    allow_outside: bool = False,
) -> Scenario:
    """Read, merge, override and validate a scenario file. An ``extends`` that leaves
    the file's folder (and the folders below it) is refused unless `allow_outside`."""
    path = Path(path)
    shown = escaped(str(path))
    origins: Origins = {}
    real = path.resolve()
    try:
        text = _read_text(real)
    except ValueError as exc:
        raise ScenarioError(shown, "", str(exc)) from None
    root = None if allow_outside else real.parent
    data = _read_toml(real, text, shown, origins, root)
    data.setdefault("name", path.stem)
    for assignment in overrides:
        apply_override(data, assignment)
        key = assignment.partition("=")[0].strip()
        origins[key] = "--set"
        value = data
        for part in key.split("."):
            value = value[part]
        if isinstance(value, dict):
            _note_origins(value, "--set", origins, f"{key}.")
    _inline_rate_files(data, real.parent, root, origins)
    _inline_outdoor_file(data, real.parent, root, origins)
    return parse_scenario(data, shown, origins)


def _inline_rate_files(
    data: dict[str, Any], folder: Path, root: Path | None, origins: Origins
) -> None:
    """Replace each tenant's ``rates_csv`` (a path relative to the scenario's folder)
    by the hourly rates it holds (``rates``, profile "rates"), so the resolved
    document, and its hash, carry the rates themselves."""
    serving = data.get("serving")
    tenants = serving.get("tenants") if isinstance(serving, dict) else None
    if not isinstance(tenants, dict):
        return
    for name, tenant in tenants.items():
        if not isinstance(tenant, dict) or "rates_csv" not in tenant:
            continue
        key = f"serving.tenants.{name}.rates_csv"
        tenant["rates"] = _hourly_file(
            tenant.pop("rates_csv"), key, folder, root, origins,
            _Column("requests_per_s", "requests per second", 0.0, MAX_REQUEST_RATE, "rates"),
        )
        tenant.setdefault("profile", "rates")
        origins[f"serving.tenants.{name}.rates"] = _origin_of(key, origins, "scenario")


def _inline_outdoor_file(
    data: dict[str, Any], folder: Path, root: Path | None, origins: Origins
) -> None:
    """Replace ``facility.cooling.outdoor.hourly_csv`` by the hourly temperatures it
    holds (``hourly``), as `_inline_rate_files` does for rates."""
    facility = data.get("facility")
    cooling = facility.get("cooling") if isinstance(facility, dict) else None
    outdoor = cooling.get("outdoor") if isinstance(cooling, dict) else None
    if not isinstance(outdoor, dict) or "hourly_csv" not in outdoor:
        return
    key = "facility.cooling.outdoor.hourly_csv"
    outdoor["hourly"] = _hourly_file(
        outdoor.pop("hourly_csv"), key, folder, root, origins,
        _Column("outdoor_c", "degrees C", MIN_OUTDOOR_C, MAX_OUTDOOR_C, "outdoor temperatures"),
    )
    origins["facility.cooling.outdoor.hourly"] = _origin_of(key, origins, "scenario")


@dataclass(frozen=True)
class _Column:
    """The value column of an hourly CSV file: header name, what a value is, bounds."""

    name: str
    what: str
    low: float
    high: float
    plural: str


def _hourly_file(
    given: object, key: str, folder: Path, root: Path | None, origins: Origins, column: _Column
) -> list[float]:
    """The hourly values of the CSV file `given` names (relative to `folder`, inside
    `root` unless None)."""
    source = _origin_of(key, origins, "scenario")
    if not isinstance(given, str) or not given or any(unprintable(c) for c in given):
        raise ScenarioError(source, key, "a relative path to a CSV file", _brief(given))
    csv_path = (folder / given).resolve()
    if root is not None and not csv_path.is_relative_to(root):
        raise ScenarioError(
            source, key, f"a CSV file inside {_display(root)}, the folder of the scenario "
            "(--allow-outside or TWIN_ALLOW_OUTSIDE=1 lifts this)", _brief(given),
        )
    try:
        text = _read_text(csv_path, f"CSV file of hourly {column.plural}")
    except ValueError as exc:
        raise ScenarioError(source, key, str(exc), _brief(given)) from None
    return _hourly_values(text, _display(csv_path), key, column)


def _hourly_values(text: str, shown: str, key: str, column: _Column) -> list[float]:
    """The values of a CSV file of lines ``hour,<column>`` after a header line, hours
    0, 1, 2, ... in order; a bad line is a `ScenarioError` naming it."""
    lines = text.splitlines()
    if not lines or [c.strip() for c in lines[0].split(",")] != ["hour", column.name]:
        raise ScenarioError(f"{shown}:1", key, f"a header line 'hour,{column.name}'")
    values: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        expected = f"'{len(values)},<{column.what} from {column.low:g} to {column.high:g}>'"
        try:
            hour, value = int(cells[0]), float(cells[1])
        except (ValueError, IndexError):
            raise ScenarioError(f"{shown}:{number}", key, expected, _brief(line)) from None
        if len(cells) != 2 or hour != len(values) or not column.low <= value <= column.high:
            raise ScenarioError(f"{shown}:{number}", key, expected, _brief(line))
        values.append(value)
    if not values:
        raise ScenarioError(shown, key, f"at least one hourly {column.plural[:-1]}")
    return values
