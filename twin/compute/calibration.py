"""Calibration: fit each system's shared constants on a few published figures, check the rest.

A calibration file holds the inputs: the figures fitted (`[[fit]]`), the
out-of-sample figures (`[[check]]`), what every figure assumes unless it says
otherwise (`[assume]`) and the constants of the last fit (`[fitted]`), which
`twin.compute.hardware` loads. Two systems are calibrated (`TARGETS`):

- the wafer (`calibration.toml`, `Figure`): span_s, hop_s and efficiency on
  three single-user speeds (Llama 3.1 8B, Llama 3.3 70B, Llama 3.1 405B);
- the GPU node (`calibration_gpu.toml`, `GpuFigure`): hbm_efficiency,
  flops_efficiency, allreduce_s and step_s on NVIDIA's NIM concurrency curve of
  Llama 3.3 70B on two H100s and the single stream of Llama 3.1 8B on one.

`fit()` finds the constants minimising the squared log ratios of predicted to
published values within their bounds; `table()` gives every figure against its
prediction, misses included. Nothing else is tuned: the speculative decoding
defaults and the assumptions of each figure are inputs, documented in
docs/compute.md.

`twin calibrate` (cli/calibrate_command.py) refits and prints `report()`;
`--write` stores the constants, `--acceptance 0.7` and the like test the
sensitivity to a default.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from twin.compute.catalogue import ModelSpec, catalogue, draft_for
from twin.compute.hardware import (
    CALIBRATION_FILE,
    GPU_CALIBRATION_FILE,
    H100_PUBLISHED,
    PUBLISHED,
    GpuNode,
    Hardware,
)
from twin.compute.memory import kv_bytes, weight_bytes
from twin.compute.perf import DEFAULT_ACCEPTANCE, DEFAULT_DRAFT_TOKENS, Perf, Speculative, evaluate

__all__ = ["Figure", "GpuFigure", "Row", "Mechanisms", "Target", "TARGETS", "WAFER", "GPU_NODE",
           "load", "fit", "calibrated", "predict", "table", "markdown", "report", "write_fitted",
           "CONSTANTS"]


@dataclass(frozen=True)
class Mechanisms:
    """The documented defaults the calibration assumes; other values test its sensitivity."""

    draft_tokens: int = DEFAULT_DRAFT_TOKENS
    acceptance: float = DEFAULT_ACCEPTANCE
    core_share: float = 1.0


def _speculation(label: str, model: ModelSpec, draft: str | None, models: Mapping[str, ModelSpec],
                 mechanisms: Mechanisms) -> Speculative:
    """The figure's speculative decoding: its draft (the model's default unless named)."""
    drafter = models[draft] if draft else draft_for(model, models)
    if drafter is None:
        raise ValueError(f"{label}: no draft model for {model.name}")
    return Speculative(drafter, mechanisms.draft_tokens, mechanisms.acceptance)


def _describe_speculation(model: str, draft: str | None, mechanisms: Mechanisms) -> str:
    models = catalogue()
    drafter = models[draft] if draft else draft_for(models[model], models)
    return (f"speculative ({drafter.name if drafter else '?'}, {mechanisms.draft_tokens} "
            f"tokens, acceptance {mechanisms.acceptance:g})")


@dataclass(frozen=True)
class _Published:
    """A published value, perhaps a range (`high`; inf: "more than")."""

    @property
    def published(self) -> float:
        raise NotImplementedError

    high: float | None = None

    @property
    def centre(self) -> float:
        """The value a prediction is compared with: a range's geometric middle, a bound's bound."""
        if self.high is None or math.isinf(self.high):
            return self.published
        return math.sqrt(self.published * self.high)

    def shown(self) -> str:
        if self.high is None:
            return f"{self.published:,g}"
        if math.isinf(self.high):
            return f"more than {self.published:,g}"
        return f"{self.published:,g}-{self.high:,g}"


@dataclass(frozen=True)
class Figure(_Published):
    """A published speed of one wafer-scale replica and the configuration its prediction
    assumes."""

    label: str = ""
    model: str = ""
    source: str = ""  # section of docs/sources.md
    speculative: bool = False
    bits: float = 16.0
    batch: float = 1.0
    context: float = 2048.0
    prompt: float = 1000.0
    systems: int | None = None
    draft: str | None = None  # the draft model, if not the model's default (draft_for)
    user_tps: float | None = None  # published speed per user (the low end of a range)
    ttft_s: float | None = None  # published time to first token

    @property
    def published(self) -> float:
        value = self.user_tps if self.ttft_s is None else self.ttft_s
        assert value is not None
        return value

    @property
    def unit(self) -> str:
        return " s" if self.ttft_s is not None else " t/s"

    def predict(self, hardware: Any, mechanisms: Mechanisms) -> tuple[float, int]:
        """The predicted value and the systems of the replica."""
        perf = predict(self, hardware, mechanisms)
        return float(perf.user_tps if self.ttft_s is None else perf.ttft_s), int(perf.systems)

    def configuration(self, systems: int, mechanisms: Mechanisms) -> str:
        speculation = (_describe_speculation(self.model, self.draft, mechanisms)
                       if self.speculative else "no speculation")
        return f"{self.bits:g} bit, {systems} system{'' if systems == 1 else 's'}, {speculation}"


def predict(figure: Figure, hardware: Hardware, mechanisms: Mechanisms = Mechanisms()) -> Perf:
    """A wafer figure's replica, evaluated."""
    models = catalogue()
    model = models[figure.model]
    speculative = (_speculation(figure.label, model, figure.draft, models, mechanisms)
                   if figure.speculative else None)
    return evaluate(model, bits=figure.bits, batch=figure.batch, context=figure.context,
                    prompt=figure.prompt, speculative=speculative, systems=figure.systems,
                    hardware=hardware, core_share=mechanisms.core_share)


# what a GPU figure measures
_GPU_METRICS = {
    "throughput": " t/s",  # output tokens/s of all the requests in flight
    "itl": " s",  # inter-token latency: between two tokens of one request
    "ttft": " s",  # time to first token, queueing left out
    "user_tps": " t/s",  # one sequence's output tokens/s
}


@dataclass(frozen=True)
class GpuFigure(_Published):
    """A published serving figure of a model on H100 GPUs, measured by a client that
    keeps `concurrency` requests of `prompt` tokens in and `output` tokens out in
    flight (inf: as many as the engine takes, a maximum-load benchmark).

    Predicted as the serving layer serves (docs/serving.md, *Fluid serving*): the
    instance decodes b = min(concurrency, what its HBM holds at prompt + output
    tokens each) sequences and a request costs its prefill plus output / (b x
    tokens per step / step time) of the instance's time, so throughput = b x
    output / (b x prefill + output x step / tokens per step); the KV cache read by
    a step is at the mean context, prompt + output / 2. A request's inter-token
    latency is a step plus its share of the others' prefills, step / tokens per
    step + (b - 1) x prefill / output; its time to first token is its prefill plus
    one step (a queue for a free sequence slot is not modelled)."""

    label: str = ""
    model: str = ""
    source: str = ""  # section of docs/sources.md
    metric: str = "throughput"
    value: float = 0.0
    bits: float = 8.0
    kv_bits: float | None = None  # default: bits
    gpus: int = 1  # GPUs of the instance: tp within a node, whole nodes beyond
    prompt: float = 1000.0
    output: float = 1000.0
    concurrency: float = 1.0
    speculative: bool = False
    draft: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in _GPU_METRICS:
            raise ValueError(f"{self.label}: metric {self.metric!r} is not one of "
                             f"{sorted(_GPU_METRICS)}")

    @property
    def published(self) -> float:
        return self.value

    @property
    def unit(self) -> str:
        return _GPU_METRICS[self.metric]

    def predict(self, hardware: Any, mechanisms: Mechanisms) -> tuple[float, int]:
        """The predicted value and the instance's GPUs."""
        node: GpuNode = hardware
        models = catalogue()
        model = models[self.model]
        speculative = (_speculation(self.label, model, self.draft, models, mechanisms)
                       if self.speculative else None)
        kv = self.bits if self.kv_bits is None else self.kv_bits
        held = self.gpus * node.capacity - weight_bytes(model, np.asarray(self.bits))
        if speculative is not None:
            held -= weight_bytes(speculative.draft, np.asarray(self.bits))
        per_seq = kv_bytes(model, np.asarray(kv), np.asarray(self.prompt + self.output),
                           np.asarray(1.0))
        batch = max(1.0, min(self.concurrency, math.floor(float(held / per_seq))))
        perf = evaluate(model, bits=self.bits, kv_bits=kv, batch=batch,
                        context=self.prompt + self.output / 2.0, prompt=self.prompt,
                        speculative=speculative, hardware=node, gpus=self.gpus)
        prefill = self.prompt / float(perf.prefill_tps)
        per_token = float(perf.step_s / perf.tokens_per_step)
        value = {
            "throughput": batch * self.output / (batch * prefill + self.output * per_token),
            "itl": per_token + (batch - 1.0) * prefill / self.output,
            "ttft": float(perf.ttft_s),
            "user_tps": float(perf.user_tps),
        }[self.metric]
        return value, self.gpus

    def configuration(self, systems: int, mechanisms: Mechanisms) -> str:
        speculation = (f", {_describe_speculation(self.model, self.draft, mechanisms)}"
                       if self.speculative else "")
        kv = "" if self.kv_bits is None else f" (KV {self.kv_bits:g} bit)"
        load = "max load" if math.isinf(self.concurrency) else f"concurrency {self.concurrency:g}"
        return (f"{self.bits:g} bit{kv}, {systems} GPU{'' if systems == 1 else 's'}, "
                f"{self.prompt:g} in / {self.output:g} out, {load}{speculation}")


@dataclass(frozen=True)
class Row:
    figure: Any  # a Figure or a GpuFigure
    predicted: float
    systems: int  # the replica's systems (wafer) or GPUs (GPU node)

    @property
    def ratio(self) -> float:
        return self.predicted / self.figure.centre

    @property
    def within(self) -> bool:
        """The prediction lies in the published range (or above a published bound)."""
        f = self.figure
        return f.high is not None and f.published <= self.predicted <= f.high


@dataclass(frozen=True)
class Target:
    """A system the calibration fits: its constants with their scales (each of order one
    at the solution, for the optimiser), bounds and starting point, the published
    hardware they complete, its calibration file and the kind of figure it reads."""

    kind: str  # the scenario's system.kind
    path: Path
    constants: tuple[str, ...]
    scale: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    start: tuple[float, ...]
    base: Hardware | GpuNode
    figure: type[Figure] | type[GpuFigure]


WAFER = Target("wafer", CALIBRATION_FILE, ("span_s", "hop_s", "efficiency"),
               (1e-7, 1e-6, 1.0), (0.0, 0.0, 1e-3), (math.inf, math.inf, 1.0),
               (1.0, 1.0, 0.5), PUBLISHED, Figure)
GPU_NODE = Target("gpu_node", GPU_CALIBRATION_FILE,
                  ("hbm_efficiency", "flops_efficiency", "allreduce_s", "step_s"),
                  (1.0, 1.0, 1e-5, 1e-3), (1e-3, 1e-3, 0.0, 0.0), (1.0, 1.0, math.inf, math.inf),
                  (0.7, 0.5, 1.0, 1.0), H100_PUBLISHED, GpuFigure)
TARGETS = {target.kind: target for target in (WAFER, GPU_NODE)}
CONSTANTS = WAFER.constants


def load(path: Path | None = None, target: Target = WAFER) -> tuple[list[Any], list[Any]]:
    """The fitted and the out-of-sample figures of a calibration file (the target's own
    by default)."""
    with (target.path if path is None else path).open("rb") as handle:
        data = tomllib.load(handle)
    assume = data.get("assume", {})
    known = {f.name for f in fields(target.figure)}

    def figure(entry: Mapping[str, Any]) -> Any:
        given = {**assume, **entry}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"{entry.get('label', '?')}: unknown field {unknown[0]!r}")
        return target.figure(**given)

    return [figure(e) for e in data["fit"]], [figure(e) for e in data["check"]]


def calibrated(constants: Mapping[str, float], target: Target = WAFER) -> Any:
    """The target's published hardware completed with `constants`."""
    base: Any = target.base  # each target's constants are fields of its own hardware
    return replace(base, **{name: constants[name] for name in target.constants})


def fit(figures: list[Any], mechanisms: Mechanisms = Mechanisms(),
        target: Target = WAFER) -> dict[str, float]:
    """The constants minimising the squared log ratios predicted / published."""
    from scipy.optimize import least_squares  # only the fit needs scipy

    published = np.array([f.centre for f in figures])
    scale = np.array(target.scale)

    def residuals(x: np.ndarray) -> np.ndarray:
        hardware = calibrated(dict(zip(target.constants, x * scale, strict=True)), target)
        predicted = np.array([f.predict(hardware, mechanisms)[0] for f in figures])
        return np.log(predicted / published)

    lower, upper = np.array(target.lower), np.array(target.upper)
    found = least_squares(residuals, np.array(target.start), bounds=(lower, upper), xtol=1e-12,
                          ftol=1e-12, gtol=1e-12)
    # a constant the optimum pushes against its bound is that bound, exactly
    x = np.where(found.active_mask < 0, lower, np.where(found.active_mask > 0, upper, found.x))
    return {name: float(f"{value:.6g}")
            for name, value in zip(target.constants, x * scale, strict=True)}


def table(figures: list[Any], hardware: Any, mechanisms: Mechanisms = Mechanisms()) -> list[Row]:
    return [Row(f, *f.predict(hardware, mechanisms)) for f in figures]


def write_fitted(constants: Mapping[str, float], path: Path = CALIBRATION_FILE) -> None:
    """Replace the `[fitted]` table of a calibration file, keeping the rest as written."""
    text = path.read_text()
    body = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    new, count = re.subn(r"(?ms)^\[fitted\]\n.*?(?=^\s*$|^#|^\[)", f"[fitted]\n{body}", text,
                         count=1)
    if count != 1:
        raise ValueError(f"{path}: no [fitted] table to replace")
    path.write_text(new)


def markdown(rows: list[Row], mechanisms: Mechanisms = Mechanisms()) -> list[str]:
    """The rows as a Markdown table (docs/compute.md shows the default calibrations')."""
    lines = ["| figure | configuration | published | predicted | predicted / published |",
             "|---|---|---|---|---|"]
    for row in rows:
        f = row.figure
        value = f"{row.predicted:.3g}" if f.unit == " s" else f"{row.predicted:,.0f}"
        lines.append(f"| {f.label} | {f.configuration(row.systems, mechanisms)} | "
                     f"{f.shown()}{f.unit} | {value}{f.unit} | {row.ratio:.2f} |")
    return lines


def report(constants: Mapping[str, float], fitted: list[Any], checks: list[Any],
           mechanisms: Mechanisms = Mechanisms(), target: Target = WAFER) -> str:
    """The fit as text: the constants, then every figure against its prediction (what
    `twin calibrate` prints)."""
    hardware = calibrated(constants, target)
    parts = ["fitted: " + ", ".join(f"{k} = {v:.4g}" for k, v in constants.items())]
    for title, figures in (("fitted on", fitted), ("out of sample", checks)):
        parts.append(f"\n{title}:\n")
        parts.append("\n".join(markdown(table(figures, hardware, mechanisms), mechanisms)))
    return "\n".join(parts)
