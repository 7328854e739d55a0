"""Calibration: fit the three shared constants on three published speeds, check the rest.

`calibration.toml` (beside this module) holds the inputs: the figures fitted
(`[[fit]]`: Llama 3.1 8B, Llama 3.3 70B and Llama 3.1 405B, single user), the
out-of-sample figures (`[[check]]`), the configuration each assumes, and the
constants of the last fit (`[fitted]`) that `twin.compute.hardware.CS3`
loads. `fit()` finds span_s, hop_s and efficiency minimising the squared log
ratios of predicted to published speed (span_s, hop_s >= 0, efficiency in
(0, 1]); `table()` gives every figure against its prediction, misses
included. Nothing else is tuned: the speculative decoding defaults and the
assumptions of each figure are inputs, documented in docs/compute.md.

`twin calibrate` (cli/calibrate_command.py) refits and prints `report()`;
`--write` stores the constants, `--acceptance 0.7` and the like test the
sensitivity to a default.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from twin.compute.catalogue import catalogue, draft_for
from twin.compute.hardware import CALIBRATION_FILE, PUBLISHED, Hardware
from twin.compute.perf import DEFAULT_ACCEPTANCE, DEFAULT_DRAFT_TOKENS, Perf, Speculative, evaluate

__all__ = ["Figure", "Row", "Mechanisms", "load", "fit", "calibrated", "predict", "table",
           "markdown", "write_fitted"]

CONSTANTS = ("span_s", "hop_s", "efficiency")
# scales of the constants for the optimiser: each of order one at the solution
_SCALE = np.array([1e-7, 1e-6, 1.0])


@dataclass(frozen=True)
class Figure:
    """A published figure and the configuration its prediction assumes."""

    label: str
    model: str
    source: str  # section of docs/sources.md
    speculative: bool
    bits: float
    batch: float
    context: float
    prompt: float
    systems: int | None = None
    draft: str | None = None  # the draft model, if not the model's default (draft_for)
    user_tps: float | None = None  # published speed per user (the low end of a range)
    high: float | None = None  # top of a published range (inf: "more than user_tps")
    ttft_s: float | None = None  # published time to first token

    @property
    def published(self) -> float:
        value = self.user_tps if self.ttft_s is None else self.ttft_s
        assert value is not None
        return value

    @property
    def centre(self) -> float:
        """The value a prediction is compared with: a range's geometric middle, a bound's bound."""
        if self.high is None or math.isinf(self.high):
            return self.published
        return math.sqrt(self.published * self.high)


@dataclass(frozen=True)
class Row:
    figure: Figure
    predicted: float
    systems: int

    @property
    def ratio(self) -> float:
        return self.predicted / self.figure.centre

    @property
    def within(self) -> bool:
        """The prediction lies in the published range (or above a published bound)."""
        f = self.figure
        return f.high is not None and f.published <= self.predicted <= f.high


def load(path: Path = CALIBRATION_FILE) -> tuple[list[Figure], list[Figure]]:
    """The fitted and the out-of-sample figures of a calibration file."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    assume = data["assume"]

    def figure(entry: Mapping[str, Any]) -> Figure:
        return Figure(**{**assume, **entry})

    return [figure(e) for e in data["fit"]], [figure(e) for e in data["check"]]


@dataclass(frozen=True)
class Mechanisms:
    """The documented defaults the calibration assumes; other values test its sensitivity."""

    draft_tokens: int = DEFAULT_DRAFT_TOKENS
    acceptance: float = DEFAULT_ACCEPTANCE
    core_share: float = 1.0


def predict(figure: Figure, hardware: Hardware, mechanisms: Mechanisms = Mechanisms()) -> Perf:
    models = catalogue()
    model = models[figure.model]
    speculative = None
    if figure.speculative:
        draft = models[figure.draft] if figure.draft else draft_for(model, models)
        if draft is None:
            raise ValueError(f"{figure.label}: no draft model for {figure.model}")
        speculative = Speculative(draft, mechanisms.draft_tokens, mechanisms.acceptance)
    return evaluate(model, bits=figure.bits, batch=figure.batch, context=figure.context,
                    prompt=figure.prompt, speculative=speculative, systems=figure.systems,
                    hardware=hardware, core_share=mechanisms.core_share)


def _value(figure: Figure, perf: Perf) -> float:
    return float(perf.user_tps if figure.ttft_s is None else perf.ttft_s)


def calibrated(constants: Mapping[str, float], base: Hardware = PUBLISHED) -> Hardware:
    return replace(base, span_s=constants["span_s"], hop_s=constants["hop_s"],
                   efficiency=constants["efficiency"])


def fit(figures: list[Figure], base: Hardware = PUBLISHED,
        mechanisms: Mechanisms = Mechanisms()) -> dict[str, float]:
    """The constants minimising the squared log ratios predicted / published."""
    from scipy.optimize import least_squares  # only the fit needs scipy

    published = np.array([f.centre for f in figures])

    def residuals(x: np.ndarray) -> np.ndarray:
        hardware = calibrated(dict(zip(CONSTANTS, x * _SCALE, strict=True)), base)
        predicted = np.array([_value(f, predict(f, hardware, mechanisms)) for f in figures])
        return np.log(predicted / published)

    start = np.array([1.0, 1.0, 0.5])
    upper = np.array([np.inf, np.inf, 1.0])
    lower = np.array([0.0, 0.0, 1e-3])
    found = least_squares(residuals, start, bounds=(lower, upper), xtol=1e-12, ftol=1e-12,
                          gtol=1e-12)
    # a constant the optimum pushes against its bound is that bound, exactly
    x = np.where(found.active_mask < 0, lower, np.where(found.active_mask > 0, upper, found.x))
    return {name: float(f"{value:.6g}") for name, value in zip(CONSTANTS, x * _SCALE, strict=True)}


def table(figures: list[Figure], hardware: Hardware,
          mechanisms: Mechanisms = Mechanisms()) -> list[Row]:
    rows = []
    for f in figures:
        perf = predict(f, hardware, mechanisms)
        rows.append(Row(f, _value(f, perf), int(perf.systems)))
    return rows


def write_fitted(constants: Mapping[str, float], path: Path = CALIBRATION_FILE) -> None:
    """Replace the `[fitted]` table of a calibration file, keeping the rest as written."""
    text = path.read_text()
    body = "".join(f"{name} = {constants[name]!r}\n" for name in CONSTANTS)
    new, count = re.subn(r"(?ms)^\[fitted\]\n.*?(?=^\s*$|^#|^\[)", f"[fitted]\n{body}", text,
                         count=1)
    if count != 1:
        raise ValueError(f"{path}: no [fitted] table to replace")
    path.write_text(new)


def markdown(rows: list[Row], mechanisms: Mechanisms = Mechanisms()) -> list[str]:
    """The rows as a Markdown table (docs/compute.md shows the default calibration's)."""
    lines = ["| figure | configuration | published | predicted | predicted / published |",
             "|---|---|---|---|---|"]
    models = catalogue()
    for row in rows:
        f = row.figure
        unit = " s" if f.ttft_s is not None else " t/s"
        shown = (f"{f.published:,g}" if f.high is None
                 else f"more than {f.published:,g}" if math.isinf(f.high)
                 else f"{f.published:,g}-{f.high:,g}")
        draft = models[f.draft] if f.draft else draft_for(models[f.model], models)
        speculation = (f"speculative ({draft.name if draft else '?'}, "
                       f"{mechanisms.draft_tokens} tokens, acceptance {mechanisms.acceptance:g})"
                       if f.speculative else "no speculation")
        value = f"{row.predicted:.3g}" if f.ttft_s is not None else f"{row.predicted:,.0f}"
        systems = f"{row.systems} system{'' if row.systems == 1 else 's'}"
        lines.append(f"| {f.label} | {f.bits:g} bit, {systems}, {speculation} | "
                     f"{shown}{unit} | {value}{unit} | {row.ratio:.2f} |")
    return lines


def report(constants: Mapping[str, float], fitted: list[Figure], checks: list[Figure],
           mechanisms: Mechanisms = Mechanisms()) -> str:
    """The fit as text: the constants, then every figure against its prediction (what
    `twin calibrate` prints)."""
    hardware = calibrated(constants)
    parts = ["fitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in constants.items())]
    for title, figures in (("fitted on", fitted), ("out of sample", checks)):
        parts.append(f"\n{title}:\n")
        parts.append("\n".join(markdown(table(figures, hardware, mechanisms), mechanisms)))
    return "\n".join(parts)
