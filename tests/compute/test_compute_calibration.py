"""Calibration: the stored constants are the fit of the stored figures, and fit them."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.compute import CS3
from twin.compute.calibration import CONSTANTS, fit, load, markdown, table
from twin.compute.hardware import load_fitted


def test_refitting_the_stored_figures_gives_the_stored_constants() -> None:
    fitted, _ = load()
    assert [f.model for f in fitted] == ["llama-3.1-8b", "llama-3.3-70b", "llama-3.1-405b"]
    refit, stored = fit(fitted), load_fitted()
    assert set(stored) == set(CONSTANTS)
    for name in CONSTANTS:
        assert refit[name] == pytest.approx(stored[name], rel=1e-4, abs=1e-12), name
        assert getattr(CS3, name) == stored[name]


def test_the_three_fitted_speeds_are_within_25_percent_of_the_published() -> None:
    fitted, _ = load()
    for row in table(fitted, CS3):
        assert 0.75 <= row.ratio <= 1.25, (row.figure.label, row.ratio)


def test_every_out_of_sample_figure_gets_a_prediction_and_none_is_fitted() -> None:
    fitted, checks = load()
    rows = table(checks, CS3)
    assert len(rows) == len(checks) >= 9
    assert all(row.predicted > 0 for row in rows)
    fitted_keys = {(f.model, f.published) for f in fitted}
    assert not fitted_keys & {(f.model, f.published) for f in checks}


def test_the_docs_show_the_calibration_the_code_computes() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "compute.md").read_text()
    fitted, checks = load()
    for figures in (fitted, checks):
        for line in markdown(table(figures, CS3)):
            assert line in text, f"docs/compute.md lacks the row {line!r}"
