"""Speed of the compute core: a `twin perf` grid of 1,000 points.

Role: the measurement behind the "perf" section of `python -m bench`. The
grid is 4 precisions x 10 batch sizes x 25 contexts of Llama 3.3 70B with
speculative decoding, each point on the fewest systems that hold it:
the whole command (`twin perf ... --format csv`, parsed, computed and
written, through click's test runner), `perf_grid` (one vectorized
`evaluate` and the rows `twin perf` prints) and `evaluate` alone, in this
process, best and median of `repeats` after one warm-up. The issue's
target: under 0.1 s for the grid.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from click.testing import CliRunner

from cli.main import cli
from twin.compute import DEFAULT_ACCEPTANCE, DEFAULT_DRAFT_TOKENS, Speculative, catalogue, evaluate
from twin.compute.grid import perf_grid

__all__ = ["GridTiming", "grid_speed", "GRID"]

GRID = {
    "bits": [16.0, 8.0, 6.0, 4.0],
    "batch": [float(b) for b in 2 ** np.arange(10)],
    "context": [float(c) for c in np.geomspace(128, 131072, 25).round()],
}


@dataclass(frozen=True)
class GridTiming:
    label: str
    points: int
    walls: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    def as_dict(self) -> dict[str, object]:
        return {"points": self.points, "best_s": self.best, "median_s": self.median,
                "walls_s": list(self.walls)}


def _time(call: object, repeats: int) -> tuple[float, ...]:
    assert callable(call)
    call()
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
    return tuple(walls)


def grid_speed(repeats: int = 20) -> list[GridTiming]:
    models = catalogue()
    model = models["llama-3.3-70b"]
    spec = Speculative(models["llama-3.2-1b"], DEFAULT_DRAFT_TOKENS, DEFAULT_ACCEPTANCE)
    points = len(GRID["bits"]) * len(GRID["batch"]) * len(GRID["context"])
    b = np.asarray(GRID["bits"])[:, None, None]
    n = np.asarray(GRID["batch"])[None, :, None]
    c = np.asarray(GRID["context"])[None, None, :]
    args = ["perf", model.name, "--speculative", "--prompt", "1024", "--format", "csv"] + [
        item for key, option in (("bits", "--precision"), ("batch", "--batch"),
                                 ("context", "--context"))
        for item in (option, ",".join(f"{v:g}" for v in GRID[key]))]

    def command() -> None:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and result.output.count("\n") == points + 1, result.output

    return [
        GridTiming("twin perf --format csv", points, _time(command, repeats)),
        GridTiming("perf_grid (twin perf rows)", points, _time(
            lambda: perf_grid(model, **GRID, prompt=1024, speculative=spec), repeats)),
        GridTiming("evaluate alone", points, _time(
            lambda: evaluate(model, bits=b, batch=n, context=c, prompt=1024, speculative=spec),
            repeats)),
    ]
