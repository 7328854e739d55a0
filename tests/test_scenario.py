"""Scenario files: defaults, `extends`, `--set`, the resolved document, its digest, errors.

Every invalid input is a `ScenarioError` whose message reads
``<file or --set>: <dotted key>: expected <what>``; the tests assert on that text
because it is what a user sees.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from twin.distributions import Exponential, Weibull
from twin.errors import ScenarioError
from twin.scenario import Scenario, apply_override, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def error_of(path: Path, *overrides: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    return caught.value


# --- defaults ------------------------------------------------------------------------


def test_an_empty_scenario_resolves_to_the_built_in_defaults() -> None:
    scenario = parse_scenario({}, "empty")
    assert scenario == Scenario()
    assert scenario.systems == 20 * 17 * 3 == 1020
    assert scenario.run.until == 8760.0 and scenario.run.seed == 1
    assert scenario.system.power == 23.0  # kW, the canonical unit
    assert sorted(scenario.components) == ["fan", "psu", "pump"]
    assert sorted(scenario.spares) == ["fan", "psu", "pump"]
    assert isinstance(scenario.components["pump"].failure, Weibull)


def test_a_file_without_a_name_is_named_after_the_file(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "quiet-hall.toml", "[hall]\nrows = 2\n"))
    assert scenario.name == "quiet-hall"
    assert scenario.hall.rows == 2
    assert scenario.hall.racks_per_row == 17  # the rest stays at the defaults


def test_hall_toml_is_exactly_the_built_in_defaults() -> None:
    """scenarios/hall.toml is the readable list of defaults: file and code cannot drift."""
    from_file = flat(load_scenario(SCENARIOS / "hall.toml").document())
    built_in = flat(Scenario().document())
    for key in ("name", "description"):
        from_file.pop(key), built_in.pop(key)
    differences = {k: (from_file.get(k), built_in.get(k)) for k in from_file.keys() | built_in}
    assert {k: v for k, v in differences.items() if v[0] != v[1]} == {}


def test_small_toml_differs_from_hall_only_in_the_keys_it_sets() -> None:
    hall = flat(load_scenario(SCENARIOS / "hall.toml").document())
    small = flat(load_scenario(SCENARIOS / "small.toml").document())
    changed = {key for key in hall if hall[key] != small[key]}
    assert changed == {
        "name", "description", "run.until", "hall.rows", "hall.racks_per_row",
        "repair.crews", "spare_systems.count",
    }


# --- extends -------------------------------------------------------------------------

BASE = """\
name = "base"
description = "the base"

[hall]
rows = 4
racks_per_row = 5

[components.pump]
thermal_factor = 1.2
failure = { dist = "weibull", shape = 2.0, scale = "5000 h" }
"""


def test_extends_deep_merges_and_the_child_wins(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", BASE)
    child = write(
        tmp_path, "child.toml",
        'extends = "base.toml"\n[hall]\nrows = 2\n[components.pump]\nescalate_probability = 0.5\n',
    )
    scenario = load_scenario(child)
    assert scenario.hall.rows == 2  # the child wins
    assert scenario.hall.racks_per_row == 5  # the base's sibling key survives
    pump = scenario.components["pump"]
    assert pump.escalate_probability == 0.5
    assert pump.thermal_factor == 1.2  # merged, not replaced
    assert pump.failure == Weibull(shape=2.0, scale="5000 h")
    assert pump.count == 2  # the built-in default under both files


def test_extends_replaces_a_distribution_table_whole(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", BASE)
    child = write(
        tmp_path, "child.toml",
        'extends = "base.toml"\n[components.pump]\n'
        'failure = { dist = "exponential", mean = "100 h" }\n',
    )
    # a merge would leave the base's shape and scale next to mean: an invalid exponential
    assert load_scenario(child).components["pump"].failure == Exponential(mean="100 h")


def test_extends_does_not_inherit_the_name_or_description(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", BASE)
    scenario = load_scenario(write(tmp_path, "child.toml", 'extends = "base.toml"\n'))
    assert scenario.name == "child"
    assert scenario.description == ""


def test_extends_is_relative_to_the_extending_file_and_chains(tmp_path: Path) -> None:
    write(tmp_path, "lib/base.toml", BASE)
    write(tmp_path, "lib/middle.toml", 'extends = "base.toml"\n[hall]\nsystems_per_rack = 2\n')
    top = write(tmp_path, "top.toml", 'extends = "lib/middle.toml"\n[hall]\nrows = 1\n')
    hall = load_scenario(top).hall
    assert (hall.rows, hall.racks_per_row, hall.systems_per_rack) == (1, 5, 2)


def test_extends_may_not_leave_the_folder_of_the_named_file_unless_allowed(
    tmp_path: Path,
) -> None:
    write(tmp_path, "lib/base.toml", BASE)
    top = write(tmp_path, "sites/top.toml", 'extends = "../lib/base.toml"\n[hall]\nrows = 1\n')
    error = error_of(top)
    assert (error.source, error.key, error.got) == (str(top), "extends", "../lib/base.toml")
    assert "expected a base scenario inside " in str(error)
    assert "--allow-outside" in str(error)
    hall = load_scenario(top, allow_outside=True).hall
    assert (hall.rows, hall.racks_per_row) == (1, 5)


def test_a_base_in_the_folder_tree_may_not_reach_outside_it_either(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", BASE)
    write(tmp_path, "sites/lib/middle.toml", 'extends = "../../base.toml"\n')
    top = write(tmp_path, "sites/top.toml", 'extends = "lib/middle.toml"\n')
    error = error_of(top)
    assert (error.source, error.key) == (str(tmp_path / "sites/lib/middle.toml"), "extends")


def test_an_absolute_or_symlinked_base_outside_the_folder_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/base.toml", BASE)
    absolute = write(tmp_path, "site/abs.toml", f'extends = "{outside}"\n')
    assert error_of(absolute).key == "extends"
    (tmp_path / "site/link.toml").symlink_to(outside)
    linked = write(tmp_path, "site/linked.toml", 'extends = "link.toml"\n')
    assert error_of(linked).key == "extends"
    inside = write(tmp_path, "site/inside.toml", f'extends = "{tmp_path}/site/lib.toml"\n')
    write(tmp_path, "site/lib.toml", BASE)
    assert load_scenario(inside).hall.rows == 4  # an absolute path inside the tree is fine


def test_a_file_that_extends_itself_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "loop.toml", 'extends = "loop.toml"\n')
    message = str(error_of(path))
    assert message.startswith(f"{path}: extends: expected no cycle of extends")


def test_a_cycle_of_extends_is_an_error_naming_the_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    b = write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    error = error_of(a)
    assert error.key == "extends"
    assert "expected no cycle of extends" in str(error)
    assert str(a) in str(error) and str(b) in str(error)


def test_a_missing_base_is_an_error_naming_it(tmp_path: Path) -> None:
    child = write(tmp_path, "child.toml", 'extends = "nowhere.toml"\n')
    message = str(error_of(child))
    assert "nowhere.toml" in message
    assert "expected an existing base scenario file" in message


def test_a_missing_base_names_the_extending_file_and_the_extends_key(tmp_path: Path) -> None:
    child = write(tmp_path, "child.toml", 'extends = "nowhere.toml"\n')
    assert str(error_of(child)).startswith(f"{child}: extends: ")


def test_extends_must_be_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.toml", "extends = 3\n")
    assert str(error_of(path)).startswith(f"{path}: extends: expected a relative path")


def test_an_error_in_a_base_file_names_the_base_file(tmp_path: Path) -> None:
    base = write(tmp_path, "base.toml", "[hall]\nrowz = 2\n")
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n')
    assert str(error_of(child)).startswith(f"{base.resolve()}: hall.rowz: ")


# --- --set overrides -----------------------------------------------------------------


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    return write(tmp_path, "minimal.toml", 'name = "minimal"\n')


@pytest.mark.parametrize(
    ("assignment", "read"),
    [
        ("hall.rows=4", lambda s: s.hall.rows == 4 and s.systems == 4 * 17 * 3),
        ("wafer.cores_per_failure=2.5", lambda s: s.wafer.cores_per_failure == 2.5),
        ("repair.wrong_unit_probability=0.1", lambda s: s.repair.wrong_unit_probability == 0.1),
        ("recording.events=false", lambda s: s.recording.events is False),
        ('thermal.inlet="35 C"', lambda s: s.thermal.inlet == 35.0),
        ("system.power=25 kW", lambda s: s.system.power == 25.0),  # a bare string
        ("description=a long night", lambda s: s.description == "a long night"),
        ("name=a=b", lambda s: s.name == "a=b"),  # split at the first '='
        (" hall.rows = 3 ", lambda s: s.hall.rows == 3),
        ('recording.scope_level="rack"', lambda s: s.recording.scope_level == "rack"),
        (
            'components.pump.failure={dist="exponential", mean="1000 h"}',
            lambda s: s.components["pump"].failure == Exponential(mean="1000 h"),
        ),
        (
            'components.pump.failure.scale="1000 h"',  # into a distribution, keeping the rest
            lambda s: s.components["pump"].failure == Weibull(shape=1.5, scale="1000 h"),
        ),
        (
            'components.psu.failover={dist="deterministic", value="2 min"}',  # a new nested table
            lambda s: s.components["psu"].failover.mean() == pytest.approx(2 / 60),
        ),
    ],
)
def test_set_overrides_any_key_with_a_toml_value_or_a_bare_string(
    minimal: Path, assignment: str, read: Any
) -> None:
    assert read(load_scenario(minimal, [assignment]))


def test_set_creates_nested_keys_a_new_component_class_and_its_spares(minimal: Path) -> None:
    scenario = load_scenario(
        minimal,
        [
            "components.valve.count=2",
            "components.valve.required=1",
            'components.valve.part="valve"',
            'components.valve.failure={dist="exponential", mean="50000 h"}',
            'components.valve.repair={dist="deterministic", value="1 h"}',
            'spares.valve={stock=4, reorder_point=1, order_quantity=4, lead_time="3 d"}',
        ],
    )
    assert sorted(scenario.components) == ["fan", "psu", "pump", "valve"]
    assert scenario.spares["valve"].lead_time == 72.0


def test_set_wins_over_the_file_and_its_base_and_the_last_set_wins() -> None:
    small = SCENARIOS / "small.toml"  # extends hall.toml and sets hall.rows = 2
    scenario = load_scenario(small, ["hall.rows=3", "thermal.inlet=33 C", "hall.rows=5"])
    assert scenario.hall.rows == 5
    assert scenario.thermal.inlet == 33.0
    assert scenario.hall.racks_per_row == 4  # from small.toml


def test_apply_override_builds_nested_tables_in_raw_data() -> None:
    data: dict[str, Any] = {"hall": {"rows": 1}}
    apply_override(data, "hall.racks_per_row=2")
    apply_override(data, "a.b.c=[1, 2]")
    assert data == {"hall": {"rows": 1, "racks_per_row": 2}, "a": {"b": {"c": [1, 2]}}}


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("hall.rows", "hall.rows"),  # no '='
        ("=3", "=3"),  # no key
        ("hall..rows=3", "hall..rows=3"),  # an empty part
        (".rows=3", ".rows=3"),
        ("hall.rows.x=1", "hall.rows.x"),  # a value used as a table
    ],
)
def test_a_malformed_set_is_an_error_naming_it(assignment: str, named: str) -> None:
    error = error_of(SCENARIOS / "hall.toml", assignment)
    assert error.source == "--set"
    assert str(error).startswith(f"--set: {named}: expected ")


# --- the resolved document and its digest --------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_resolved_document_reloads_to_an_equal_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    document = json.loads(json.dumps(scenario.document()))  # as stored with a run
    again = parse_scenario(document, "stored")
    assert again == scenario
    assert again.document() == scenario.document()
    assert again.digest() == scenario.digest()


@pytest.mark.parametrize(
    "assignment",
    [
        'wafer.remap_time="1e9 h"', 'run.until="100 y"', 'system.power="1 MW"',
        'wafer.area="1590 cm2"', 'thermal.inlet="-273.15 C"', "run.seed=9223372036854775807",
        'components.psu.failure={dist="exponential", mean="114155.25114155251 y"}',
    ],
)
def test_the_largest_accepted_values_write_a_document_that_reads_back(
    minimal: Path, assignment: str
) -> None:
    # a value that overflowed to inf used to be accepted and written as "inf h"
    scenario = load_scenario(minimal, [assignment])
    document = json.loads(json.dumps(scenario.document()))
    assert "inf" not in json.dumps(document)
    assert parse_scenario(document, "stored") == scenario


def test_the_document_holds_quantities_as_canonical_strings() -> None:
    document = Scenario().document()
    assert document["system"]["power"] == "23.0 kW"
    assert document["system"]["boot_time"] == "0.5 h"
    assert document["wafer"]["area"] == "462.25 cm2"
    assert document["components"]["psu"]["failure"] == {"dist": "exponential", "mean": "150000.0 h"}


def test_the_digest_ignores_the_seed_and_the_horizon() -> None:
    hall = SCENARIOS / "hall.toml"
    base = load_scenario(hall).digest()
    assert load_scenario(hall, ["run.seed=99", 'run.until="3 d"']).digest() == base
    assert re.fullmatch(r"[0-9a-f]{64}", base)


def _leaves(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.extend(_leaves(value, (*prefix, key)))
        elif key != "dist":  # a distribution's kind changes only with its parameters
            out.append((*prefix, key))
    return out


_QUANTITY = re.compile(r"^(\S+) (\S+)$")


def _candidates(value: Any) -> list[Any]:
    """Nearby values of the same kind, some of which the schema accepts."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 1.1 + 0.01, value * 0.9]
    if value is None:
        return [{"dist": "deterministic", "value": "1.0 h"}]
    match = _QUANTITY.match(value)
    if match:
        number, unit = float(match[1]), match[2]
        return [f"{number * 1.1 + 0.01!r} {unit}", f"{number * 0.9!r} {unit}"]
    return ["rack", "system", "fan", "psu", "new"]  # a scope level, a part name, a start age


def _parameters() -> list[str]:
    document = Scenario().document()
    return [".".join(leaf) for leaf in _leaves(document) if leaf[0] not in ("name", "description")]


@pytest.mark.parametrize("key", _parameters())
def test_the_digest_changes_when_any_parameter_changes(key: str) -> None:
    scenario = Scenario()
    document = scenario.document()
    *parents, leaf = key.split(".")
    current = flat(document)[key]
    for candidate in (c for c in _candidates(current) if c != current):
        changed = copy.deepcopy(document)
        node = changed
        for part in parents:
            node = node[part]
        node[leaf] = candidate
        try:
            other = parse_scenario(changed, "perturbed")
        except ScenarioError:
            continue
        if key.startswith("run."):
            assert other.digest() == scenario.digest()
        else:
            assert other != scenario
            assert other.digest() != scenario.digest()
        return
    pytest.fail(f"no valid nearby value for {key}")


# --- errors name the file (or --set), the dotted key and what was expected ------------

# (dotted key, TOML value, key named in the error, what the error says was expected);
# each is checked written in a file and given as --set
INVALID = [
    ("bogus", "1", "bogus", "no such key"),
    ("hall.rowz", "3", "hall.rowz", "no such key"),
    ("components.psu.cont", "3", "components.psu.cont", "no such key"),
    ("system.power", '"23 kelvin"', "system.power", "a power as a string like '<number> <unit>'"),
    ("system.power", "23", "system.power", "a power as a string like '<number> <unit>'"),
    ("thermal.inlet", '"30 K"', "thermal.inlet", "a temperature as a string like"),
    ("spares.psu.lead_time", "7", "spares.psu.lead_time", "a time as a string like"),
    ("run.until", '"-1 d"', "run.until", "a time above 0 h and at most 876000 h"),
    ("hall.rows", '"four"', "hall.rows", "a valid integer"),
    ("hall.rows", "0", "hall.rows", "greater than or equal to 1"),
    ("recording.events", '"maybe"', "recording.events", "a valid boolean"),
    ("recording.scope_level", '"galaxy"', "recording.scope_level",
     "'none', 'row', 'rack' or 'system'"),
    ("name", "3", "name", "a valid string"),
    (
        "components.psu.failure", '{dist = "gamma", mean = "1 h"}', "components.psu.failure",
        "a distribution with dist = exponential (mean), weibull (shape, scale), "
        "lognormal (median, sigma) or deterministic (value)",
    ),
    (
        "components.psu.failure", '{dist = "weibull", scale = "1 h"}',
        "components.psu.failure.shape", "this key to be given",
    ),
    (
        "components.psu.failure", '{dist = "weibull", shape = -1, scale = "1 h"}',
        "components.psu.failure.shape", "greater than or equal to 0.1",
    ),
    ("repair.wrong_unit_probability", "1.5", "repair.wrong_unit_probability",
     "a probability between 0 and 1"),
    ("wafer.bad_fraction", "-0.1", "wafer.bad_fraction", "a probability between 0 and 1"),
    ("components.fan.required", "5", "components.fan.required", "at most count (4)"),
    ("wafer.active_cores", "980000", "wafer.active_cores", "at most physical_cores (970000)"),
    ("wafer.defect_density", '"1000 /cm2"', "wafer.defect_density",
     "a defect density from 0 /cm2 to 100 /cm2"),
    ("thermal.min_power_fraction", "0", "thermal.min_power_fraction", "a fraction above zero"),
    ("components.psu.part", '"widget"', "components.psu.part",
     "a part named in [spares] (['fan', 'psu', 'pump'])"),
    (
        "components.valve",
        '{count = 2, required = 1, part = "valve", failure = {dist = "exponential", mean = "1 h"},'
        ' repair = {dist = "exponential", mean = "1 h"}}',
        "components.valve.part", "a part named in [spares]",
    ),
    ("components.valve", "{count = 2}", "components.valve.required", "this key to be given"),
]

# absurd numbers: integers are strict (no bools, no floats), nothing is infinite, and
# every quantity and count stays within its physical bounds (docs/scenarios.md)
OUT_OF_BOUNDS = [
    ("hall.rows", "true", "hall.rows", "a valid integer"),
    ("hall.rows", "2.0", "hall.rows", "a valid integer"),
    ("hall.rows", "1e26", "hall.rows", "a valid integer"),
    ("hall.rows", "100000", "hall.rows", "less than or equal to 10000"),
    ("hall.racks_per_row", "1001", "hall.racks_per_row", "less than or equal to 1000"),
    ("hall.systems_per_rack", "101", "hall.systems_per_rack", "less than or equal to 100"),
    ("run.seed", "9223372036854775808", "run.seed",
     "less than or equal to 9223372036854775807"),
    ("run.seed", "true", "run.seed", "a valid integer"),
    ("run.until", '"101 y"', "run.until", "a time above 0 h and at most 876000 h"),
    ("recording.events", "1", "recording.events", "a valid boolean"),
    ("wafer.cores_per_failure", "inf", "wafer.cores_per_failure", "a finite number"),
    ("wafer.cores_per_failure", "nan", "wafer.cores_per_failure", "a finite number"),
    ("wafer.cores_per_failure", "1e9", "wafer.cores_per_failure",
     "less than or equal to 100000000"),
    ("wafer.physical_cores", "9223372036854775807", "wafer.physical_cores",
     "less than or equal to 100000000"),
    ("wafer.min_active_fraction", "nan", "wafer.min_active_fraction", "a finite number"),
    ("wafer.bad_factor", "inf", "wafer.bad_factor", "a finite number"),
    ("wafer.remap_time", '"1e400 h"', "wafer.remap_time", "a time from 0 h to 1e+09 h"),
    ("wafer.remap_time", '"1e308 y"', "wafer.remap_time", "a time from 0 h to 1e+09 h"),
    ("wafer.area", '"2000 cm2"', "wafer.area", "an area above 0 cm2 and at most 1590 cm2"),
    ("wafer.defect_density", '"101 /cm2"', "wafer.defect_density",
     "a defect density from 0 /cm2 to 100 /cm2"),
    ("thermal.inlet", '"-400 C"', "thermal.inlet", "a temperature from -273.15 C to 1414 C"),
    ("thermal.trip", '"2000 degC"', "thermal.trip", "a temperature from -273.15 C to 1414 C"),
    ("thermal.resistance", '"1e-300 K/kW"', "thermal.resistance",
     "a thermal resistance from 0.001 K/kW to 1e+06 K/kW"),
    ("thermal.capacitance", '"0 J/K"', "thermal.capacitance",
     "a heat capacity from 0.001 kJ/K to 1e+06 kJ/K"),
    ("thermal.release_margin", '"2000 K"', "thermal.release_margin",
     "a delta temperature from 0 K to 1000 K"),
    ("system.power", '"2 MW"', "system.power", "a power from 0 kW to 1000 kW"),
    ("system.boot_time", '"-1 h"', "system.boot_time", "a time from 0 h to 1e+09 h"),
    ("components.psu.count", "1001", "components.psu.count", "less than or equal to 1000"),
    ("components.psu.thermal_factor", "101.0", "components.psu.thermal_factor",
     "less than or equal to 100"),
    ("components.psu.bad_factor", "1e10", "components.psu.bad_factor",
     "less than or equal to 1000000000"),
    ("components.psu.failure", '{dist = "lognormal", median = "1 h", sigma = 11}',
     "components.psu.failure.sigma", "less than or equal to 10"),
    ("components.psu.failure", '{dist = "weibull", shape = 0.01, scale = "1 h"}',
     "components.psu.failure.shape", "greater than or equal to 0.1"),
    ("components.psu.failure", '{dist = "weibull", shape = 21, scale = "1 h"}',
     "components.psu.failure.shape", "less than or equal to 20"),
    ("components.psu.failure", '{dist = "weibull", shape = true, scale = "1 h"}',
     "components.psu.failure.shape", "a valid number"),
    ("components.psu.failure", '{dist = "exponential", mean = "2e9 h"}',
     "components.psu.failure.mean", "a time above 0 h and at most 1e+09 h"),
    ("repair.crews", "10001", "repair.crews", "less than or equal to 10000"),
    ("spares.psu.stock", "1000001", "spares.psu.stock", "less than or equal to 1000000"),
    ("spares.psu.order_quantity", "1e6", "spares.psu.order_quantity", "a valid integer"),
    ("spare_systems.count", "1000001", "spare_systems.count", "less than or equal to 1000000"),
    ("recording.hall_bucket", '"0.5 s"', "recording.hall_bucket", "a time from 0.000277778 h"),
]

# cross-field checks of a whole table name the table
TABLE_LEVEL = [
    ("hall", "{rows = 10000, racks_per_row = 1000}", "hall",
     "at most 1,000,000 systems (rows x racks_per_row x systems_per_rack), not 30,000,000"),
    ("thermal.throttle", '"100 C"', "thermal", "inlet < restart < throttle < trip"),
    ("thermal.restart", '"25 C"', "thermal", "inlet < restart < throttle < trip"),
    ("repair.shift_start", '"25 h"', "repair", "shift_start < 24 h and shift_length <= 24 h"),
]


def _id(case: tuple[str, str, str, str]) -> str:
    return f"{case[0]}={case[1]}"


@pytest.mark.parametrize("case", INVALID + OUT_OF_BOUNDS + TABLE_LEVEL, ids=_id)
def test_an_invalid_file_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, case: tuple[str, str, str, str]
) -> None:
    key, value, named, wanted = case
    path = write(tmp_path, "bad.toml", f"{key} = {value}\n")
    error = error_of(path)
    assert (error.source, error.key) == (str(path), named)
    assert str(error).startswith(f"{path}: {named}: expected {wanted}")


@pytest.mark.parametrize("case", INVALID + OUT_OF_BOUNDS + TABLE_LEVEL, ids=_id)
def test_an_invalid_set_names_set_the_key_and_what_was_expected(
    minimal: Path, case: tuple[str, str, str, str]
) -> None:
    key, value, named, wanted = case
    error = error_of(minimal, f"{key}={value}")
    assert (error.source, error.key) == ("--set", named)
    assert str(error).startswith(f"--set: {named}: expected {wanted}")


def test_a_set_that_turns_a_value_into_a_table_is_blamed_on_set(minimal: Path) -> None:
    # minimal.toml does not set hall.rows, so the override builds {"rows": {"x": 1}}
    assert str(error_of(minimal, "hall.rows.x=1")).startswith("--set: hall.rows")


def test_the_offending_value_is_shown(minimal: Path) -> None:
    assert str(error_of(minimal, "hall.rows=0")).endswith(", got 0")
    assert str(error_of(minimal, 'system.power="23 kelvin"')).endswith(", got '23 kelvin'")


def test_every_problem_is_reported_on_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.toml", '[hall]\nrowz = 3\n[system]\npower = 23\n')
    lines = str(error_of(path, "repair.crews=0")).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}: hall.rowz: expected no such key")
    assert lines[1].startswith(f"{path}: system.power: expected a power")
    assert lines[2].startswith("--set: repair.crews: expected greater than or equal to 1")


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", "[hall\nrows = 2\n")
    assert str(error_of(path)).startswith(f"{path}: expected valid TOML (")


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert str(error_of(path)) == f"{path}: expected an existing scenario file"


def test_a_scenario_error_survives_being_rebuilt_from_its_args_and_pickled() -> None:
    # SimPy re-raises a process's error as type(e)(*e.args); a worker pickles it
    also = (ScenarioError("--set", "hall.rows", "an integer", "x"),)
    error = ScenarioError("a.toml", "wafer.area", "an area", "3 m", also)
    for rebuilt in (type(error)(*error.args), pickle.loads(pickle.dumps(error))):
        assert str(rebuilt) == str(error) == (
            "a.toml: wafer.area: expected an area, got '3 m'\n"
            "--set: hall.rows: expected an integer, got 'x'"
        )
        fields = (rebuilt.source, rebuilt.key, rebuilt.expected, rebuilt.got)
        assert fields == ("a.toml", "wafer.area", "an area", "3 m")


def test_where_a_scenario_was_read_from_is_kept_but_not_part_of_it(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", 'name = "s"\n')
    loaded = load_scenario(path)
    assert loaded.source == str(path) and Scenario(name="s").source == "scenario"
    assert loaded == Scenario(name="s") and loaded.digest() == Scenario(name="s").digest()
