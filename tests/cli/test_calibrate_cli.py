"""`twin calibrate`: the refit printed from the CLI, stored only with --write."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from click.testing import CliRunner

from twin.compute import CS3
from twin.compute.calibration import CONSTANTS, load, markdown, table
from twin.compute.hardware import CALIBRATION_FILE, load_fitted


def _calibrate(twin: click.Group, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(twin, ["calibrate", *args], terminal_width=200)
    return result.exit_code, result.output


def test_it_prints_the_constants_and_every_figure_against_its_prediction(
    twin: click.Group,
) -> None:
    code, out = _calibrate(twin)
    assert code == 0, out
    assert out.startswith("fitted: span_s = ")
    fitted, checks = load()
    for figures in (fitted, checks):
        for line in markdown(table(figures, CS3)):
            assert line in out


def test_write_stores_the_refit_in_the_file_named(twin: click.Group, tmp_path: Path) -> None:
    copy = tmp_path / "calibration.toml"
    shutil.copy(CALIBRATION_FILE, copy)
    text = copy.read_text().replace("span_s = ", "span_s = 1e-3 # was ", 1)
    copy.write_text(text)
    assert load_fitted(copy)["span_s"] == 1e-3
    code, out = _calibrate(twin, "--file", str(copy), "--write")
    assert code == 0, out
    stored, shipped = load_fitted(copy), load_fitted()
    for name in CONSTANTS:
        assert abs(stored[name] - shipped[name]) <= 1e-4 * abs(shipped[name]) + 1e-12, name


def test_a_sensitivity_fit_is_printed_but_never_stored(twin: click.Group, tmp_path: Path) -> None:
    copy = tmp_path / "calibration.toml"
    shutil.copy(CALIBRATION_FILE, copy)
    before = copy.read_text()
    code, out = _calibrate(twin, "--file", str(copy), "--acceptance", "0.7")
    assert code == 0, out
    assert "acceptance 0.7" in out
    code, out = _calibrate(twin, "--file", str(copy), "--acceptance", "0.7", "--write")
    assert code == 2
    assert "--write" in out
    assert copy.read_text() == before


def test_the_gpu_node_is_calibrated_from_its_own_file(twin: click.Group, tmp_path: Path) -> None:
    from twin.compute import H100_NODE
    from twin.compute.calibration import GPU_NODE

    code, out = _calibrate(twin, "--system", "gpu_node")
    assert code == 0, out
    assert out.startswith("fitted: hbm_efficiency = ")
    fitted, checks = load(target=GPU_NODE)
    for figures in (fitted, checks):
        for line in markdown(table(figures, H100_NODE)):
            assert line in out
    copy = tmp_path / "calibration_gpu.toml"
    shutil.copy(GPU_NODE.path, copy)
    code, out = _calibrate(twin, "--system", "gpu_node", "--file", str(copy), "--write")
    assert code == 0, out
    assert load_fitted(copy) == load_fitted(GPU_NODE.path)
    code, out = _calibrate(twin, "--system", "gpu_node", "--core-share", "0.5")
    assert code == 2 and "--core-share" in out
