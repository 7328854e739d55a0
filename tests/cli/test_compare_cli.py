"""`twin compare` prints the headline figures first: worked out here by hand from
the KPIs and horizons the store kept, their t-intervals, the paired difference
and ratio, "-" (null in JSON) where a scenario lacks a figure. Two small pairs:
serving halls in a facility (8 vs 16-bit weights) and training jobs (one of them
in a facility, with a longer checkpoint interval)."""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from cli.sweep_output import _figure_cell, _rounded
from storage import open_store
from twin.experiments.stats import Summary, t_quantile

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FIGURES = ["tokens_per_s", "training_wall_d", "training_goodput", "availability",
           "interruptions_per_day", "it_mw", "facility_mw", "it_kwh_per_mtok",
           "facility_kwh_per_mtok"]  # fmt: skip
SUMMARY = {"n", "mean", "sd", "half_width", "low", "high"}

SERVE_A = """name = "serve-a"
[run]
until = "2 d"
[hall]
rows = 1
racks_per_row = 4
[facility]
[serving.deployments.chat]
model = "llama-3.3-70b"
bits = 8
batch = 16
replicas = 2
[serving.tenants.a]
deployment = "chat"
requests_per_s = 30.0
[serving.tenants.b]
deployment = "chat"
requests_per_s = 10.0
"""
# the same systems at 16 bit: one replica of 6 systems instead of two of 3
SERVE_B = """extends = "serve-a.toml"
name = "serve-b"
[serving.deployments.chat]
bits = 16
replicas = 1
"""
TRAIN_A = """extends = "small.toml"
name = "train-a"
[run]
until = "10 d"
[training]
systems = 16
work = "3 d"
checkpoint_interval = "2 h"
checkpoint_cost = "5 min"
restart_cost = "20 min"
standbys = 2
host_selection = "30 min"
"""
TRAIN_B = """extends = "train-a.toml"
name = "train-b"
[training]
checkpoint_interval = "6 h"
[facility]
"""

Kpis = Mapping[str, float]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWIN_DB", raising=False)
    for name in ("hall.toml", "small.toml"):
        shutil.copy(SCENARIOS / name, tmp_path / name)
    for name, text in (("serve-a.toml", SERVE_A), ("serve-b.toml", SERVE_B),
                       ("train-a.toml", TRAIN_A), ("train-b.toml", TRAIN_B)):  # fmt: skip
        (tmp_path / name).write_text(text)


def compare(tmp_path: Path, a: str, b: str, *args: str) -> Result:
    db = f"sqlite:///{tmp_path}/t.db"
    result = CliRunner().invoke(cli, ["compare", a, b, "--workers", "1", "--db", db, *args])
    assert result.exit_code == 0, result.output
    return result


def stored(tmp_path: Path) -> dict[int, list[tuple[float, dict[str, float]]]]:
    """Per level, each replication's horizon (h) and KPIs as the store has them, in
    replication order."""
    with open_store(f"sqlite:///{tmp_path}/t.db") as store:
        rows = store.query("SELECT r.level, r.replication, r.until_h, k.name, k.value "
                           "FROM runs r JOIN kpis k ON k.run_id = r.id")  # fmt: skip
    out: dict[tuple[int, int], tuple[float, dict[str, float]]] = {}
    for level, rep, until_h, name, value in rows.itertuples(index=False, name=None):
        out.setdefault((level, rep), (until_h, {}))[1][name] = (
            math.nan if value is None else value
        )
    return {lv: [out[key] for key in sorted(out) if key[0] == lv] for lv in (0, 1)}


def served(k: Kpis) -> float:
    return sum(v for name, v in k.items() if name.startswith("serving.tokens.served."))


# Each figure of one replication, from its horizon and KPIs (docs/kpis.md, "Headline figures")
BY_HAND: dict[str, Callable[[float, Kpis], float]] = {
    "tokens_per_s": lambda h, k: served(k) / (h * 3600),
    "availability": lambda h, k: k["availability"],
    "it_mw": lambda h, k: k["power.it_mean_kw"] / 1000,
    "facility_mw": lambda h, k: k["energy.facility_mwh"] / h,
    "it_kwh_per_mtok": lambda h, k: k["energy.it_mwh"] * 1000 / (served(k) / 1e6),
    "facility_kwh_per_mtok": lambda h, k: k["energy.facility_mwh"] * 1000 / (served(k) / 1e6),
    "training_wall_d": lambda h, k: k["training.wall_h"] / 24,
    "training_goodput": lambda h, k: k["training.goodput"],
    "interruptions_per_day": lambda h, k: k["training.interruptions"] / (k["training.wall_h"] / 24),
}


def check_interval(summary: dict[str, Any], values: list[float]) -> None:
    """`summary` is the mean of `values` with its Student-t 95 % half-width."""
    n = len(values)
    assert summary["n"] == n
    assert summary["mean"] == pytest.approx(sum(values) / n, rel=1e-12)
    half = t_quantile(n - 1) * statistics.stdev(values) / math.sqrt(n)
    assert summary["half_width"] == pytest.approx(half, rel=1e-9, abs=1e-12)


def check_figure(out: dict[str, Any], runs: dict[int, list[tuple[float, dict[str, float]]]],
                 figure: str) -> None:  # fmt: skip
    """Both levels' summaries, the paired difference and the ratio of `figure`, by hand."""
    per_level = [[BY_HAND[figure](h, k) for h, k in runs[lv]] for lv in (0, 1)]
    entry = out["headline"][figure]
    for level in (0, 1):
        check_interval(entry["levels"][level], per_level[level])
    (pair,) = entry["comparisons"]
    assert (pair["level_a"], pair["level_b"]) == (0, 1)
    check_interval(pair["difference"], [b - a for a, b in zip(*per_level, strict=True)])
    ratio = sum(per_level[1]) / sum(per_level[0])
    assert pair["ratio"]["mean"] == pytest.approx(ratio, rel=1e-12)
    assert pair["ratio"]["low"] <= pair["ratio"]["mean"] <= pair["ratio"]["high"]


def check_lacking(out: dict[str, Any], figure: str, levels: tuple[int, ...] = (0, 1)) -> None:
    """`figure` is missing (n 0, nulls) in `levels`, so its comparison is missing too."""
    entry = out["headline"][figure]
    for level in levels:
        assert entry["levels"][level] == {"n": 0, **dict.fromkeys(SUMMARY - {"n"})}
    (pair,) = entry["comparisons"]
    assert pair["difference"]["n"] == 0 and pair["difference"]["mean"] is None
    assert pair["ratio"]["mean"] is None and pair["significant"] is False


def test_serving_halls_compare_tokens_power_and_energy_per_token(tmp_path: Path) -> None:
    out = json.loads(compare(tmp_path, "serve-a.toml", "serve-b.toml", "-n", "3", "--json").output)
    assert list(out["headline"]) == FIGURES
    for entry in out["headline"].values():  # the shape docs/sweeps.md gives
        assert set(entry) == {"label", "unit", "levels", "comparisons"}
        assert len(entry["levels"]) == 2 and all(set(s) == SUMMARY for s in entry["levels"])
        (pair,) = entry["comparisons"]
        assert set(pair) == {"level_a", "level_b", "difference", "p_value", "p_holm",
                             "significant", "ratio"}  # fmt: skip
        assert set(pair["difference"]) == set(pair["ratio"]) == SUMMARY
    assert out["levels"][0]["kpis"]["availability"]["n"] == 3  # what compare printed before
    runs = stored(tmp_path)
    assert {h for lv in (0, 1) for h, _ in runs[lv]} == {48.0}
    for figure in ("tokens_per_s", "availability", "it_mw", "facility_mw", "it_kwh_per_mtok",
                   "facility_kwh_per_mtok"):  # fmt: skip
        check_figure(out, runs, figure)
    for figure in ("training_wall_d", "training_goodput", "interruptions_per_day"):
        check_lacking(out, figure)
    tokens = out["headline"]["tokens_per_s"]["comparisons"][0]
    assert tokens["ratio"]["high"] < 1 and tokens["significant"]  # one 16-bit replica serves less


def test_training_jobs_compare_wall_time_goodput_and_interruptions(tmp_path: Path) -> None:
    out = json.loads(compare(tmp_path, "train-a.toml", "train-b.toml", "-n", "3", "--json").output)
    runs = stored(tmp_path)
    assert all(not math.isnan(k["training.wall_h"]) for lv in (0, 1) for _, k in runs[lv])
    for figure in ("training_wall_d", "training_goodput", "interruptions_per_day",
                   "availability", "it_mw"):  # fmt: skip
        check_figure(out, runs, figure)
    check_lacking(out, "facility_mw", levels=(0,))  # train-a has no facility
    facility = [BY_HAND["facility_mw"](h, k) for h, k in runs[1]]
    check_interval(out["headline"]["facility_mw"]["levels"][1], facility)
    for figure in ("tokens_per_s", "it_kwh_per_mtok", "facility_kwh_per_mtok"):
        check_lacking(out, figure)


def test_the_headline_table_comes_first_with_a_dash_for_what_a_scenario_lacks(
    tmp_path: Path,
) -> None:
    text = compare(tmp_path, "train-a.toml", "train-b.toml", "-n", "2").output
    assert text.index("headline: 2 replications per scenario") < text.index("sweep 1:")
    assert re.search(r"facility power +│ MW +│ +- │ +[\d.]+ ± [\d.]+ │ +- │ +- │", text), text
    assert re.search(r"training goodput +│ fraction +│ +0\.\d+ ± ", text), text
    caption = " ".join(text.split())  # as wrapped to the table's width
    assert "in no scenario: tokens served, IT energy per Mtok, facility energy per Mtok" in caption


def test_a_figure_is_rounded_to_the_second_digit_of_its_half_width() -> None:
    assert _rounded(6_411_304.4, 66.2) == "6,411,304 ± 66"
    assert _rounded(5_628_612.0, 1_312.0) == "5,628,600 ± 1,300"
    assert _rounded(0.9998412, 0.000234) == "0.99984 ± 0.00023"
    assert _rounded(-0.0004, 0.3, "+") == "+0.00 ± 0.30"  # not -0.00
    assert _rounded(1.0, 0.0) == "1 ± 0"  # nothing varied
    assert _rounded(2.5, math.nan) == "2.5"  # one replication
    assert _rounded(math.nan, math.nan) == "-"
    # a wall time the job reached in 3 of 5 replications says so
    assert _figure_cell(Summary(3, 5.2, 0.1, 0.25), 5) == "5.20 ± 0.25 (n=3)"
    assert _figure_cell(Summary(5, 5.2, 0.1, 0.25), 5) == "5.20 ± 0.25"
