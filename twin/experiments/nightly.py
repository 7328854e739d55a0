"""The nightly batch: its configuration file, and the verdict on a night.

The configuration (``nightly.toml`` is shipped) lists sweeps, each
with a `label` (what a night is compared under, from one night to the next,
whatever its scenario's hash), a scenario file (relative to the
configuration), optional ``--set`` overrides, a replication count, optional
interval targets, and the KPIs to watch, each with the direction that is
better (``higher`` or ``lower``). A watched KPI has *changed* when its mean
moved by more than the root sum of squares of the two nights' 95 %
half-widths (the interval of a difference of two independent means), and
*regressed* when it changed in the worse direction. `REGRESSED` is the exit
code of a night with any regression.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin.errors import ScenarioError
from twin.experiments.stats import Summary
from twin.experiments.sweep import settings

__all__ = ["REGRESSED", "NightlyConfig", "NightlySweep", "Verdict", "load_config", "judge"]

REGRESSED = 3  # exit code: a watched KPI got worse beyond its intervals


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class NightlySweep(_Model):
    """One sweep of the night."""

    label: str = Field(min_length=1, max_length=200)
    scenario: str = Field(min_length=1)
    set: list[str] = Field(default_factory=list)
    replications: int = Field(default=100, ge=2)
    max_replications: int | None = Field(default=None, ge=2)
    ci_width: list[str] = Field(default_factory=list)
    watch: dict[str, Literal["higher", "lower"]] = Field(min_length=1)


class NightlyConfig(_Model):
    """The nightly batch: the sweeps it runs, in order."""

    seed: int = Field(default=1, ge=0)
    sweep: list[NightlySweep] = Field(min_length=1)


def load_config(path: Path) -> NightlyConfig:
    """Read and validate a nightly configuration; a `ScenarioError` names the key."""
    shown = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        expected = f"a readable nightly configuration ({exc.strerror})"
        raise ScenarioError(shown, "", expected) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(shown, "", f"valid TOML ({exc})") from None
    try:
        config = NightlyConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        raise ScenarioError(shown, key, str(err["msg"]).removeprefix("Input should be ")) from None
    labels = [entry.label for entry in config.sweep]
    for label in labels:
        if labels.count(label) > 1:
            raise ScenarioError(shown, "sweep.label", "each label once", label)
    for index, entry in enumerate(config.sweep):
        settings(entry.replications, entry.max_replications, entry.ci_width, source=shown,
                 key=f"sweep.{index}.max_replications")  # fmt: skip
    return config


@dataclass(frozen=True)
class Verdict:
    """A watched KPI tonight against the previous night (None: no previous night)."""

    label: str
    kpi: str
    better: str
    tonight: Summary
    previous: Summary | None

    @property
    def change(self) -> float:
        return math.nan if self.previous is None else self.tonight.mean - self.previous.mean

    @property
    def allowed(self) -> float:
        """The change the two intervals explain (NaN without a previous night)."""
        if self.previous is None:
            return math.nan
        return math.hypot(_width(self.tonight), _width(self.previous))

    @property
    def changed(self) -> bool:
        return abs(self.change) > self.allowed  # False when either is NaN

    @property
    def regressed(self) -> bool:
        worse = self.change < 0 if self.better == "higher" else self.change > 0
        return self.changed and worse

    @property
    def status(self) -> str:
        if self.previous is None:
            return "first night"
        if self.regressed:
            return "REGRESSED"
        return "improved" if self.changed else "unchanged"


def _width(summary: Summary) -> float:
    # a KPI that did not vary has no spread to explain a change: its half-width is 0
    return 0.0 if summary.sd == 0.0 else summary.half_width


def judge(
    label: str,
    watch: Mapping[str, str],
    tonight: Mapping[str, Summary],
    previous: Mapping[str, Summary] | None,
) -> list[Verdict]:
    """A verdict for each watched KPI of one sweep."""
    missing = [kpi for kpi in watch if kpi not in tonight]
    if missing:
        raise ScenarioError(
            f"nightly sweep {label!r}", "watch", f"KPIs the scenario reports ({sorted(tonight)})",
            missing,
        )
    return [
        Verdict(label, kpi, better, tonight[kpi], None if previous is None else previous.get(kpi))
        for kpi, better in watch.items()
    ]
