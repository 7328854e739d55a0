"""`twin sweep`, `twin compare` and `twin nightly` through click's CliRunner.

A sweep prints one JSON object with each level's KPIs and intervals and, with
factors, the Holm-corrected paired comparisons; bad input exits 2 before the
store is touched; the nightly verdict flags a planted regression (pump life
halved) with exit code 3 and leaves an unchanged night alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from storage import open_store
from twin.experiments.nightly import REGRESSED

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SMALL = str(SCENARIOS / "small.toml")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWIN_DB", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/t.db"


def twin(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_a_factorial_sweep_prints_intervals_and_holm_comparisons(db: str) -> None:
    result = twin("sweep", SMALL, "--set", "run.until=20d", "-n", "3", "--workers", "1",
                  "--factor", "repair.crews=1,2", "--db", db, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["sweep_id"], out["replications"], out["seed"]) == (1, 3, 1)
    assert out["code_version"] and out["night"] is None
    assert [lv["assignments"] for lv in out["levels"]] == [["repair.crews=1"], ["repair.crews=2"]]
    availability = out["levels"][0]["kpis"]["availability"]
    assert availability["n"] == 3 and availability["low"] <= availability["mean"]
    assert out["correction"].startswith("Holm")
    pairs = [c for c in out["comparisons"] if c["kpi"] == "availability"]
    assert [(c["level_a"], c["level_b"]) for c in pairs] == [(0, 1)]
    assert sorted(out["ranking"]["availability"]) == [0, 1]
    with open_store(db) as store:
        runs = store.query("SELECT level, replication FROM runs ORDER BY level, replication")
        assert list(runs.itertuples(index=False, name=None)) == [
            (lv, i) for lv in (0, 1) for i in range(3)
        ]


def test_the_table_shows_each_kpi_with_its_interval(db: str) -> None:
    result = twin("sweep", SMALL, "--set", "run.until=20d", "-n", "2", "--workers", "1",
                  "--db", db)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "availability" in result.output and "±" in result.output
    assert "replications per level" in result.output


@pytest.mark.parametrize(
    "args, where",
    [
        (["--factor", "repair.crews"], "--factor"),
        (["--factor", "repair.crews=1,x"], "repair.crews"),
        (["--ci-width", "availability=wide"], "--ci-width"),
        (["--until", "-3d"], "run.until"),
        (["--max-replications", "30"], "--max-replications"),  # no target would use it
        (["-n", "10", "--ci-width", "availability=1%", "--max-replications", "5"],
         "--max-replications"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args: list[str], where: str, tmp_path: Path) -> None:
    result = twin("sweep", SMALL, "-n", "2", "--workers", "1", *args)
    assert result.exit_code == 2, result.output
    assert where in result.output
    assert not (tmp_path / "twin.db").exists()


def test_an_unknown_ci_width_kpi_is_refused(db: str) -> None:
    result = twin("sweep", SMALL, "--set", "run.until=5d", "-n", "2", "--workers", "1",
                  "--ci-width", "availabilty=1%", "--db", db)  # fmt: skip
    assert result.exit_code == 2 and "availabilty" in result.output


def test_compare_pairs_two_scenarios_by_seed(db: str) -> None:
    result = twin("compare", SMALL, str(SCENARIOS / "pump-stress.toml"), "-n", "3",
                  "--until", "20d", "--workers", "1", "--db", db, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [lv["name"] for lv in out["levels"]] == ["small", "pump-stress"]
    with open_store(db) as store:
        seeds = store.query("SELECT level, replication, seed FROM runs")
    assert (seeds.groupby("replication")["seed"].nunique() == 1).all()  # paired by seed
    assert seeds["seed"].nunique() == 3


def _nightly(config: Path, night: str, db: str) -> Result:
    return twin("nightly", str(config), "--night", night, "--workers", "1", "--db", db, "--json")


def test_nightly_flags_a_planted_regression_and_not_an_unchanged_night(
    tmp_path: Path, db: str
) -> None:
    for name in ("hall.toml", "small.toml"):
        shutil.copy(SCENARIOS / name, tmp_path / name)
    (tmp_path / "pumps-halved.toml").write_text(
        'extends = "small.toml"\nname = "small"\n[components.pump]\n'
        'failure = { dist = "weibull", shape = 1.5, scale = "50000 h" }\n'
    )
    for name, scenario in (("nightly.toml", "small.toml"), ("regressed.toml", "pumps-halved.toml")):
        (tmp_path / name).write_text(
            f'seed = 3\n[[sweep]]\nlabel = "small"\nscenario = "{scenario}"\n'
            'set = ["run.until=120d"]\nreplications = 20\n'
            'watch = { availability = "higher", "failures.pump" = "lower" }\n'
        )
    first = _nightly(tmp_path / "nightly.toml", "2026-11-29", db)
    assert first.exit_code == 0, first.output
    assert {k["status"] for k in json.loads(first.output)["kpis"]} == {"first night"}
    same = _nightly(tmp_path / "nightly.toml", "2026-11-30", db)
    assert same.exit_code == 0, same.output
    assert {k["status"] for k in json.loads(same.output)["kpis"]} == {"unchanged"}
    worse = _nightly(tmp_path / "regressed.toml", "2026-12-01", db)
    assert worse.exit_code == REGRESSED == 3, worse.output
    verdicts = {k["kpi"]: k for k in json.loads(worse.output)["kpis"]}
    assert verdicts["failures.pump"]["status"] == "REGRESSED"
    assert verdicts["failures.pump"]["change"] > verdicts["failures.pump"]["allowed"] > 0
    with open_store(db) as store:
        flags = store.query(
            "SELECT night, flagged FROM v_nightly_changes WHERE kpi = 'failures.pump' "
            "AND previous_sweep_id IS NOT NULL ORDER BY night"
        )
    assert flags["flagged"].tolist() == [0, 1]


def test_a_bad_nightly_config_exits_2_naming_the_key(tmp_path: Path, db: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[sweep]]\nlabel = "x"\nscenario = "small.toml"\nreplications = 1\n'
                      'watch = { availability = "up" }\n')  # fmt: skip
    result = _nightly(config, "2026-11-29", db)
    assert result.exit_code == 2 and "sweep.0.replications" in result.output
    config.write_text('[[sweep]]\nlabel = "x"\nscenario = "small.toml"\nreplications = 5\n'
                      'max_replications = 50\nwatch = { availability = "higher" }\n')  # fmt: skip
    result = _nightly(config, "2026-11-29", db)
    assert result.exit_code == 2 and "sweep.0.max_replications" in result.output


def test_sensitivity_ranks_the_parameter_that_moves_the_kpi_first() -> None:
    pytest.importorskip("SALib")
    result = twin(
        "sensitivity", SMALL, "--until", "60d", "--kpi", "failures.pump", "-r", "4", "-n", "3",
        "--param", "repair.crews=1:4", "--param", "components.pump.failure.scale=20000:200000 h",
        "--workers", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    first, second = out["effects"]
    assert first["param"] == "components.pump.failure.scale"
    assert first["mu"] < 0 < first["mu_star"]  # longer pump lives, fewer pump failures
    assert second["mu_star"] < first["mu_star"]
    assert out["points"] <= 4 * 3  # trajectories x (parameters + 1), repeats run once


def test_a_bad_param_range_exits_2() -> None:
    result = twin("sensitivity", SMALL, "--param", "repair.crews=4:1")
    assert result.exit_code == 2 and "--param" in result.output


def test_the_shipped_nightly_config_is_valid_and_its_scenarios_load() -> None:
    from twin.experiments.design import factorial
    from twin.experiments.nightly import load_config

    config_path = SCENARIOS.parent / "nightly.toml"
    config = load_config(config_path)
    for entry in config.sweep:
        (level,) = factorial(config_path.parent / entry.scenario, entry.set, ())
        assert level.scenario.name == Path(entry.scenario).stem


def test_progress_is_drawn_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from cli.sweep_output import progress_bar
    from twin.experiments.sweep import SweepResults

    with progress_bar(["availability"], "here") as progress:
        assert progress is None  # stderr is not a terminal under pytest

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    results = SweepResults((), 2, {(0, 0): {"availability": 0.9}, (0, 1): {"availability": 0.8}})
    with progress_bar(["availability"], "here") as progress:
        assert progress is not None
        progress(2, 4, results)
    drawn = screen.getvalue()
    assert "2/4" in drawn and "availability ±0.64" in drawn  # t(0.975, 1) x 0.0707 / 1.41


def test_a_sweep_too_big_for_memory_exits_2_before_the_store_is_touched(tmp_path: Path) -> None:
    endless = 'wafer.core_failures={dist="exponential", mean="1 s"}'
    result = twin("sweep", SMALL, "--set", endless, "--until", "100 y", "-n", "2")
    assert result.exit_code == 2, result.output
    assert "wafer.core_failures: expected a run that fits in memory" in result.output
    assert not (tmp_path / "twin.db").exists()


@pytest.mark.parametrize(
    "args, named",
    [
        (["-n", "50"], ["--replications"]),
        (["--record", "events", "--seed", "5"], ["--record", "--seed"]),
        ([SMALL, "--until", "9d"], ["SCENARIO", "--until"]),
    ],
)
def test_resume_refuses_an_option_that_would_change_the_sweep(
    db: str, args: list[str], named: list[str]
) -> None:
    # `--resume ID -n 50` used to run nothing more and say nothing: it looked like an extension
    first = twin("sweep", SMALL, "--set", "run.until=2d", "-n", "2", "--workers", "1",
                 "--db", db)  # fmt: skip
    assert first.exit_code == 0, first.output
    result = twin("sweep", "--resume", "1", "--workers", "1", "--db", db, *args)
    assert result.exit_code == 2, result.output
    assert "--resume" in result.output and all(flag in result.output for flag in named)
    assert twin("sweep", "--resume", "1", "--workers", "1", "--db", db).exit_code == 0


def test_a_bad_executor_choice_stores_no_sweep(db: str, tmp_path: Path) -> None:
    # --workers with --scheduler (or a scheduler that does not answer) is refused before
    # the sweep is stored: it used to leave a sweep 'running' forever, with no runs
    shipped = str(SCENARIOS.parent / "nightly.toml")
    for command in (["sweep", SMALL, "-n", "2"], ["compare", SMALL, SMALL], ["nightly", shipped]):
        result = twin(*command, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1",
                      "--db", db)  # fmt: skip
        assert result.exit_code == 2, (command, result.output)
        assert "--scheduler" in result.output
    assert not (tmp_path / "t.db").exists()


def test_a_resumed_sweep_prints_what_the_uninterrupted_one_printed(db: str) -> None:
    args = ("--workers", "1", "--db", db, "--json")
    whole = twin("sweep", SMALL, "--set", "run.until=5d", "-n", "3", "--factor",
                 "repair.crews=1,2", *args)  # fmt: skip
    assert whole.exit_code == 0, whole.output
    with open_store(db) as store, store.engine.begin() as conn:  # as if killed before the last
        conn.exec_driver_sql("DELETE FROM kpis WHERE run_id IN "
                             "(SELECT id FROM runs WHERE replication = 2)")  # fmt: skip
        conn.exec_driver_sql("DELETE FROM runs WHERE replication = 2")
    resumed = twin("sweep", "--resume", "1", *args)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output == whole.output  # KPIs read back come in another order
