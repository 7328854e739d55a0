"""Start-up cost of the `twin` command: what a user waits for besides the simulation.

Role: the measurements behind the "Start-up" section of `python -m bench`.
Each command runs in a fresh interpreter, as a user types it (the console
script of this environment); the figure is the best and the median wall time
of `repeats` runs, after one run that is not counted. For `twin run
--no-store` the run's own `wall_s` (what `simulate` took) is subtracted,
leaving imports, validation and printing. Python writes and reads its
bytecode caches as it does for a user, even if PYTHONDONTWRITEBYTECODE is set
here (compiling the project's modules from source would add ~40 ms a run).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Startup", "startup", "COMMANDS", "twin_command"]

ROOT = Path(__file__).resolve().parent.parent
HALL = ROOT / "scenarios" / "hall.toml"

# label -> arguments of `twin` (None: a bare interpreter, the floor)
COMMANDS: dict[str, list[str] | None] = {
    "python -c pass": None,
    "twin --help": ["--help"],
    "twin check": ["check", str(HALL)],
    "twin run --no-store": ["run", str(HALL), "--no-store", "--json"],
}


@dataclass(frozen=True)
class Startup:
    """Wall seconds of repeated fresh runs of one command, less the simulation if any."""

    label: str
    walls: tuple[float, ...]
    simulated: tuple[float, ...]  # each run's own wall_s (0 for commands that do not run)

    @property
    def overheads(self) -> tuple[float, ...]:
        return tuple(w - s for w, s in zip(self.walls, self.simulated, strict=True))

    @property
    def best(self) -> float:
        return min(self.overheads)

    @property
    def median(self) -> float:
        return statistics.median(self.overheads)

    def as_dict(self) -> dict[str, object]:
        return {
            "command": self.label, "walls_s": list(self.walls),
            "simulation_s": list(self.simulated), "best_s": self.best, "median_s": self.median,
        }


def twin_command() -> list[str]:
    """The `twin` console script next to this interpreter, or the same entry point by -c."""
    script = Path(sys.executable).with_name("twin")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _once(argv: list[str], runs: bool) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=_ENV, check=True)
    wall = time.perf_counter() - started
    return wall, (json.loads(done.stdout)["wall_s"] if runs else 0.0)


def startup(repeats: int = 5) -> list[Startup]:
    """Each command of `COMMANDS` `repeats` times in a fresh interpreter."""
    out = []
    for label, args in COMMANDS.items():
        argv = [sys.executable, "-c", "pass"] if args is None else [*twin_command(), *args]
        runs = args is not None and args[0] == "run"
        _once(argv, runs)  # bytecode caches written, files in the page cache
        times = [_once(argv, runs) for _ in range(repeats)]
        out.append(Startup(label, tuple(w for w, _ in times), tuple(s for _, s in times)))
    return out
