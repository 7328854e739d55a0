"""The [serving] section of a scenario: what it accepts, and errors that name the
file (or CSV line), the dotted key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.scenario import load_scenario

HEAD = """
[hall]
rows = 1
racks_per_row = 4
[serving.deployments.chat]
model = "llama-3.3-70b"
bits = 8
batch = 16
replicas = 2
[serving.tenants.a]
deployment = "chat"
requests_per_s = 10.0
"""


def load(tmp_path: Path, text: str, *overrides: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(HEAD + text)
    return load_scenario(path, overrides)


def error(tmp_path: Path, text: str, *overrides: str) -> str:
    with pytest.raises(ScenarioError) as err:
        load(tmp_path, text, *overrides)
    return str(err.value)


def test_a_valid_section_resolves_systems_per_replica(tmp_path):
    scenario = load(tmp_path, "")
    assert scenario.serving.systems_per_replica() == {"chat": 3}  # 70B at 8 bit: 3 systems
    assert scenario.serving.fidelity == "fluid"


def test_a_replica_too_small_names_the_key_and_the_bytes_missing(tmp_path):
    msg = error(tmp_path, "", "serving.deployments.chat.systems=1")
    assert "--set: serving.deployments.chat.systems: expected replicas that hold" in msg
    assert "bytes missing" in msg


def test_replicas_beyond_the_hall_are_refused(tmp_path):
    msg = error(tmp_path, "", "serving.deployments.chat.replicas=4", "serving.hot_spares=1")
    assert "serving.deployments: expected replicas x systems per replica + hot_spares " \
        "within the hall's 12 systems, not 12 (chat 4 x 3) + 1" in msg


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ('serving.tenants.a.deployment="chot"', "serving.tenants.a.deployment",
         "a deployment of serving.deployments (chat), not 'chot'"),
        ('serving.deployments.chat.model="gpt-9"', "serving.deployments.chat.model",
         "a model of the catalogue"),
        ('serving.deployments.chat.model="gpt-9"', "serving.deployments.chat.model",
         "qwen3-32b), not 'gpt-9'"),
        ("serving.deployments.chat.bits=5", "serving.deployments.chat.bits", "16, 8 or 4"),
        ('serving.placement="random"', "serving.placement", "one of ['pack', 'spread']"),
        ("serving.tenants.a.reserved=3", "serving.tenants.a.reserved",
         "at most the 2 replicas of deployment chat not reserved by tenants before it (it "
         "has 2, 0 reserved), not 3"),
        ('serving.tenants.a.profile="rates"', "serving.tenants.a.profile",
         'profile = "rates" exactly when hourly rates are given'),
        ('serving.tenants.a.ttft="2"', "serving.tenants.a.ttft", "a time"),
        ("serving.tenants.a.requests_per_s=-1.0", "serving.tenants.a.requests_per_s",
         "greater than or equal to 0"),
    ],
)
def test_bad_values_name_their_key(tmp_path, override, key, expected):
    msg = error(tmp_path, "", override)
    assert f"--set: {key}: expected" in msg or f"s.toml: {key}: expected" in msg, msg
    assert expected in msg


def test_a_tenant_name_must_fit_in_a_kpi_name(tmp_path):
    msg = error(tmp_path, '[serving.tenants."a b"]\ndeployment = "chat"\nrequests_per_s = 1.0\n')
    assert "serving.tenants.a b.[key]: expected a name of 1 to 64 letters, digits" in msg


def test_hourly_rates_come_from_a_csv_next_to_the_scenario(tmp_path):
    (tmp_path / "rates.csv").write_text("hour,requests_per_s\n0,1.5\n1,2.5\n2,0\n")
    scenario = load(tmp_path, '[serving.tenants.b]\ndeployment = "chat"\n'
                    'requests_per_s = 0.0\nrates_csv = "rates.csv"\n')
    tenant = scenario.serving.tenants["b"]
    assert tenant.profile == "rates" and tenant.rates == [1.5, 2.5, 0.0]
    assert "rates_csv" not in str(scenario.document())  # the document holds the rates


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        ("hours,rate\n0,1\n", "rates.csv:1", "a header line 'hour,requests_per_s'"),
        ("hour,requests_per_s\n0,1\n2,1\n", "rates.csv:3", "'1,<requests per second"),
        ("hour,requests_per_s\n0,1\n1,-4\n", "rates.csv:3", "'1,<requests per second"),
        ("hour,requests_per_s\n0,x\n", "rates.csv:2", "'0,<requests per second"),
        ("hour,requests_per_s\n", "rates.csv", "at least one hourly rate"),
    ],
)
def test_a_bad_csv_names_its_file_and_line(tmp_path, text, where, expected):
    (tmp_path / "rates.csv").write_text(text)
    msg = error(tmp_path, '[serving.tenants.b]\ndeployment = "chat"\nrequests_per_s = 0.0\n'
                'rates_csv = "rates.csv"\n')
    assert f"{where}: serving.tenants.b.rates_csv: expected {expected}" in msg, msg


def test_a_csv_outside_the_scenario_folder_is_refused(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "rates.csv").write_text("hour,requests_per_s\n0,1\n")
    with pytest.raises(ScenarioError, match="a CSV file inside"):
        load(inner, '[serving.tenants.b]\ndeployment = "chat"\nrequests_per_s = 0.0\n'
             'rates_csv = "../rates.csv"\n')
    with pytest.raises(ScenarioError, match="an existing CSV file"):
        load(inner, '[serving.tenants.b]\ndeployment = "chat"\nrequests_per_s = 0.0\n'
             'rates_csv = "none.csv"\n')


@pytest.mark.parametrize("name", ["serving", "serving-reservation", "serving-long-context"])
def test_a_serving_scenario_written_back_as_toml_reloads_the_same(name, tmp_path):
    # what `twin show RUN --scenario` prints re-runs the run exactly, serving included
    import tomllib

    from cli.scenario_toml import scenario_toml
    from twin.scenario import parse_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / f"{name}.toml")
    again = parse_scenario(tomllib.loads(scenario_toml(scenario.document())), "x")
    assert again == scenario and again.digest() == scenario.digest()


def test_rates_from_a_csv_survive_the_round_trip(tmp_path):
    import tomllib

    from cli.scenario_toml import scenario_toml
    from twin.scenario import parse_scenario

    (tmp_path / "rates.csv").write_text("hour,requests_per_s\n0,1.5\n1,2.5\n")
    scenario = load(tmp_path, '[serving.tenants.b]\ndeployment = "chat"\n'
                    'requests_per_s = 0.0\nrates_csv = "rates.csv"\n')
    again = parse_scenario(tomllib.loads(scenario_toml(scenario.document())), "x")
    assert again.serving.tenants["b"].rates == [1.5, 2.5] and again == scenario


def test_reservations_beyond_the_deployment_name_the_tenant_that_goes_beyond(tmp_path):
    msg = error(tmp_path, '[serving.tenants.b]\ndeployment = "chat"\nrequests_per_s = 1.0\n'
                'reserved = 2\n', "serving.tenants.a.reserved=1")
    assert "serving.tenants.b.reserved: expected at most the 1 replicas of deployment chat " \
        "not reserved by tenants before it (it has 2, 1 reserved), not 2" in msg, msg
