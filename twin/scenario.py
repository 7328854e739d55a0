"""Scenario files: a typed, fully resolved description of one hall and one run.

A scenario is TOML. `load_scenario` reads it, follows ``extends = "base.toml"``
(deep merge, the child wins), applies ``--set a.b.c=VALUE`` overrides and
validates the result against the schema below. Unknown keys and wrong units
are rejected with a `ScenarioError` naming the file, the dotted key and what
was expected. `Scenario.document()` is the resolved document, defaults
included, and `Scenario.digest()` its hash: both are stored with every run.

Built-in defaults are CS-3-like and come from ../shared/FACTS.md where a
figure is published; the rest are stated assumptions (marked ASSUMPTION).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from twin import units
from twin.distributions import Distribution
from twin.errors import ScenarioError
from twin.quantities import (
    Area,
    DefectDensity,
    DeltaTemperature,
    Duration,
    HeatCapacity,
    PositiveDuration,
    Power,
    Probability,
    Temperature,
    ThermalResistance,
    Unit,
)

__all__ = [
    "Scenario", "ComponentSpec", "load_scenario", "parse_scenario", "apply_override",
    "deep_merge",
]


def _dist(**params: Any) -> Any:
    """A distribution default, written as it would be in a scenario file."""
    return params


def _q(text: str) -> Any:
    """A quantity default, written as it would be in a scenario file."""
    return text


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, validate_default=True
    )


class RunSpec(_Model):
    """How long to simulate and with which seed (both overridable from the CLI)."""

    until: PositiveDuration = _q("365 d")
    seed: int = Field(default=1, ge=0)


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
    """Rows of racks of wafer-scale systems; three 15 RU systems fit a rack (FACTS A3)."""

    rows: int = Field(default=20, ge=1)
    racks_per_row: int = Field(default=17, ge=1)
    systems_per_rack: int = Field(default=3, ge=1)
    start_age: StartAge = "steady"  # see docs/model.md "Starting age"


class SystemSpec(_Model):
    """One wafer-scale system: ~23 kW at full load (FACTS A3, CS-3)."""

    power: Power = _q("23 kW")
    idle_power: Power = _q("2 kW")  # ASSUMPTION: pumps, fans and control while booting
    boot_time: Duration = _q("30 min")  # ASSUMPTION

    @model_validator(mode="after")
    def _idle_below_full(self) -> SystemSpec:
        if self.idle_power > self.power:
            raise _KeyedError("idle_power", f"at most power ({self.power} kW)")
        return self


class ComponentSpec(_Model):
    """A redundant component class in every system: `required` of `count` must run."""

    count: int = Field(ge=1)
    required: int = Field(ge=1)
    failure: Distribution
    repair: Distribution
    part: str
    bad_fraction: Probability = 0.0
    bad_factor: float = Field(default=1.0, ge=1.0)
    escalate_probability: Probability = 1.0
    thermal_factor: float = Field(default=1.0, ge=1.0)
    failover: Distribution | None = None
    failover_factor: float = Field(default=1.0, ge=1.0)

    @model_validator(mode="after")
    def _required_fits(self) -> ComponentSpec:
        if self.required > self.count:
            raise _KeyedError("required", f"at most count ({self.count})")
        return self


class WaferSpec(_Model):
    """The wafer: cores, spare pool, defects at manufacture, run-time core loss."""

    physical_cores: int = Field(default=970_000, ge=1)  # FACTS A2 (~970k physical)
    active_cores: int = Field(default=900_000, ge=1)  # FACTS A1/A2 (900k enabled)
    area: Area = _q("46225 mm2")  # 46,225 mm^2, FACTS A1
    defect_density: DefectDensity = _q("0.1 /cm2")  # D0 ~ 0.1 /cm^2 at TSMC 5 nm, FACTS A2
    core_failures: Distribution = _dist(dist="exponential", mean="2000 h")  # ASSUMPTION
    cores_per_failure: float = Field(default=4.0, ge=1.0)  # ASSUMPTION: mean cluster size
    min_active_fraction: Probability = 0.97  # ASSUMPTION: below this the wafer is failed
    remap_time: Duration = _q("15 min")  # ASSUMPTION: re-route around lost cores, restart
    failure: Distribution = _dist(dist="exponential", mean="200000 h")  # ASSUMPTION
    bad_fraction: Probability = 0.0
    bad_factor: float = Field(default=1.0, ge=1.0)

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

    inlet: Temperature = _q("30 C")  # ASSUMPTION: warm facility water (FACTS A3: not published)
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


class RepairSpec(_Model):
    """The repair pipeline: diagnosis, automated fix, manual repair by a crew."""

    crews: int = Field(default=2, ge=1)  # ASSUMPTION: two technicians on site, day and night
    shift_start: Duration = _q("0 h")  # hour of day the crews' shift starts
    shift_length: PositiveDuration = _q("24 h")  # 24 h = always on shift
    diagnosis: Distribution = _dist(dist="lognormal", median="20 min", sigma=0.6)
    wrong_unit_probability: Probability = 0.03  # ASSUMPTION: diagnosis blames a healthy unit
    auto_fix: Distribution = _dist(dist="deterministic", value="15 min")
    silent_failure_probability: Probability = 0.02  # ASSUMPTION: repair leaves it faulty
    detection_delay: Distribution = _dist(dist="exponential", mean="2 h")

    @model_validator(mode="after")
    def _shift_fits(self) -> RepairSpec:
        if self.shift_start >= 24.0 or self.shift_length > 24.0:
            raise _KeyedError("", "shift_start < 24 h and shift_length <= 24 h")
        return self


class SpareSpec(_Model):
    """Stock of one spare-part type with an (s, Q) reorder policy."""

    stock: int = Field(ge=0)
    reorder_point: int = Field(ge=0)
    order_quantity: int = Field(ge=1)
    lead_time: Duration


class SpareSystemsSpec(_Model):
    """Whole spare systems for wafer failures; a failed one goes to RMA and comes back."""

    # ASSUMPTION: ~45 wafer failures a year in 1,020 systems and 30 d in RMA keep 3.7
    # systems away on average (Poisson): with 10 a failure finds none 0.5 % of the time
    count: int = Field(default=10, ge=0)
    swap_time: Distribution = _dist(dist="lognormal", median="6 h", sigma=0.4)
    rma_time: Distribution = _dist(dist="deterministic", value="30 d")  # ASSUMPTION


class RecordingSpec(_Model):
    """What the run records: hall metrics per `hall_bucket`, one scope level per `scope_bucket`."""

    hall_bucket: PositiveDuration = _q("1 h")
    scope_level: Literal["none", "row", "rack", "system"] = "row"
    scope_bucket: PositiveDuration = _q("1 d")
    events: bool = True


# Component classes of a CS-3-like system: PSUs 6+6, internal pumps 1+1 and fans
# 3+1 (FACTS A3, CS-1 teardown). Lifetimes are ASSUMPTIONS (no sourced AFR for
# pumps and fans, FACTS C3); PSU MTBF in the range of vendor power modules. Pumps
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


class Scenario(_Model):
    """A fully resolved scenario: every mechanism's parameters, defaults included."""

    name: str = "scenario"
    description: str = ""
    run: RunSpec = Field(default_factory=RunSpec)
    hall: HallSpec = Field(default_factory=HallSpec)
    system: SystemSpec = Field(default_factory=SystemSpec)
    components: dict[str, ComponentSpec] = Field(default_factory=dict)
    wafer: WaferSpec = Field(default_factory=WaferSpec)
    thermal: ThermalSpec = Field(default_factory=ThermalSpec)
    repair: RepairSpec = Field(default_factory=RepairSpec)
    spares: dict[str, SpareSpec] = Field(default_factory=dict)
    spare_systems: SpareSystemsSpec = Field(default_factory=SpareSystemsSpec)
    recording: RecordingSpec = Field(default_factory=RecordingSpec)
    # where it was read from, for errors found only while it runs; not part of the
    # document or the hash
    _source: str = PrivateAttr(default="scenario")

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key, defaults in (("components", _DEFAULT_COMPONENTS), ("spares", _DEFAULT_SPARES)):
                given = data.get(key, {})
                if isinstance(given, dict):
                    data[key] = deep_merge(defaults, given)
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

    @property
    def source(self) -> str:
        """The file it was loaded from ("scenario" when built in code)."""
        return self._source

    @property
    def systems(self) -> int:
        h = self.hall
        return h.rows * h.racks_per_row * h.systems_per_rack

    def document(self) -> dict[str, Any]:
        """The resolved scenario as plain data (units as canonical strings)."""
        return self.model_dump(mode="json", by_alias=True)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the resolved document (seed and horizon excluded)."""
        doc = self.document()
        doc.pop("run", None)
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class _KeyedError(ValueError):
    """A cross-field error that knows its key, relative to the table it is raised in."""

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(expected)
        self.key = key
        self.expected = expected


Origins = dict[str, str]  # dotted key -> the file (or "--set") that set it


def _display(path: Path) -> str:
    """A path as a user would write it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _note_origins(data: dict[str, Any], source: str, origins: Origins, prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = source
        if isinstance(value, dict):
            _note_origins(value, source, origins, f"{dotted}.")


def _read_toml(
    path: Path, shown: str, origins: Origins, seen: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """Read `path` and the bases it extends, noting which file set each key."""
    if path in seen:
        cycle = " -> ".join(_display(p) for p in (*seen, path))
        raise ScenarioError(shown, "extends", "no cycle of extends", cycle)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(shown, "", "an existing scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(shown, "", f"valid TOML ({exc})") from None
    base = data.pop("extends", None)
    if base is None:
        _note_origins(data, shown, origins)
        return data
    if not isinstance(base, str):
        raise ScenarioError(shown, "extends", "a relative path to a base scenario", base)
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise ScenarioError(shown, "extends", "an existing base scenario file", base)
    parent = _read_toml(base_path, _display(base_path), origins, (*seen, path))
    parent.pop("name", None)
    parent.pop("description", None)
    _note_origins(data, shown, origins)
    return deep_merge(parent, data)


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
        raise ScenarioError("--set", assignment, "KEY=VALUE with a dotted KEY such as hall.rows=4")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ScenarioError("--set", key, f"'{part}' to be a table, not a value")
        node = child
    node[leaf] = value


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in _UNION_TAGS)]
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
            problems.append(ScenarioError(origin, key, expected, _shown(err.get("input"))))
        first, *more = problems
        error = ScenarioError(first.source, first.key, first.expected, first.got, tuple(more))
        raise error from None
    scenario._source = source
    return scenario


def _shown(value: Any) -> Any:
    return None if isinstance(value, dict) else value


def load_scenario(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Read, merge, override and validate a scenario file."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise ScenarioError(shown, "", "an existing scenario file")
    origins: Origins = {}
    data = _read_toml(path.resolve(), shown, origins)
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
    return parse_scenario(data, shown, origins)
