"""How sweeps and nightly verdicts are shown: tables, JSON, and the progress bar.

The table shows each KPI that is not zero in every replication (the rest
are counted in its caption) as mean ± 95 % half-width per level; with
several levels, a second table lists the paired differences that are
significant after Holm's correction. `twin compare` prints the headline
figures (`twin.experiments.headline`) before them: each level's mean ±
half-width, rounded to the half-width's second digit, and each pair's
difference and ratio. The progress bar (replications done,
rate, time left and the running half-width of the watched KPIs) is drawn on
stderr only when stderr is a terminal; otherwise nothing extra is printed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from storage.sweeps import StoredSweep
from twin.experiments.headline import Row
from twin.experiments.nightly import Verdict
from twin.experiments.sensitivity import Effect
from twin.experiments.stats import Summary
from twin.experiments.sweep import Progress, SweepResults

__all__ = [
    "progress_bar", "print_sweep", "sweep_json", "print_headline", "headline_json",
    "print_verdicts", "verdicts_json", "print_effects",
]

CORRECTION = "Holm over the level pairs of each KPI, family-wise alpha 0.05"
_REDRAW_S = 0.5  # the half-widths are recomputed at most this often


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "n": summary.n,
        "mean": _number(summary.mean),
        "sd": _number(summary.sd),
        "half_width": _number(summary.half_width),
        "low": _number(summary.low),
        "high": _number(summary.high),
    }


def sweep_json(sweep: StoredSweep, results: SweepResults) -> dict[str, Any]:
    """The one JSON object `twin sweep --json` prints (docs/sweeps.md lists its keys)."""
    names = results.kpi_names()
    levels = [
        {
            "level": level.index,
            "name": level.name,
            "assignments": list(level.assignments),
            "scenario_hash": level.scenario_hash,
            "replications": results.completed(level.index),
            "kpis": {kpi: _summary_json(results.summary(level.index, kpi)) for kpi in names},
        }
        for level in sweep.levels
    ]
    out: dict[str, Any] = {
        "sweep_id": sweep.id,
        "status": "completed",
        "seed": sweep.seed,
        "replications": results.replications,
        "record": sweep.record,
        "code_version": sweep.code_version,
        "label": sweep.label,
        "night": None if sweep.night is None else sweep.night.isoformat(),
        "factors": sweep.factors,
        "targets": sweep.settings.get("targets", []),
        "confidence": 0.95,
        "levels": levels,
    }
    if len(sweep.levels) > 1:
        out["correction"] = CORRECTION
        out["ranking"] = {kpi: results.ranking(kpi) for kpi in names}
        out["comparisons"] = [
            {
                "kpi": d.kpi, "level_a": d.level_a, "level_b": d.level_b, "n": d.summary.n,
                "mean_difference": _number(d.summary.mean),
                "half_width": _number(d.summary.half_width),
                "p_value": _number(d.p_value), "p_holm": _number(d.p_holm),
                "significant": d.significant,
            }  # fmt: skip
            for kpi in names
            for d in results.comparisons(kpi)
        ]
    return out


def _shown(summary: Summary) -> str:
    if math.isnan(summary.mean):
        return "-"
    if math.isnan(summary.half_width):
        return f"{summary.mean:,.6g}"
    return f"{summary.mean:,.6g} ± {summary.half_width:,.2g}"


def _varies(results: SweepResults, kpi: str) -> bool:
    return any(
        not math.isnan(v) and v != 0.0
        for level in results.levels
        for v in results.values(level.index, kpi)
    )


def print_sweep(sweep: StoredSweep, results: SweepResults) -> None:
    """The sweep as tables: KPIs by level, then the significant differences."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    names = results.kpi_names()
    shown = [kpi for kpi in names if _varies(results, kpi)]
    title = Text(f"sweep {sweep.id}: {results.replications} replications per level, seed "
                 f"{sweep.seed}, 95 % intervals")  # fmt: skip
    table = Table(title=title, caption=f"{len(names) - len(shown)} KPIs zero throughout not shown")
    table.add_column("KPI")
    for level in sweep.levels:
        header = ", ".join(level.assignments) or level.name
        table.add_column(Text(f"[{level.index}] {header}"), justify="right")
    for kpi in shown:
        table.add_row(kpi, *(_shown(results.summary(lvl.index, kpi)) for lvl in sweep.levels))
    console.print(table)
    if len(sweep.levels) > 1:
        _print_differences(console, results, shown)


def _print_differences(console: Any, results: SweepResults, names: Sequence[str]) -> None:
    from rich.table import Table

    table = Table(title="significant paired differences (level b - level a)",
                  caption=f"correction: {CORRECTION}")  # fmt: skip
    for column in ("KPI", "a", "b", "difference ± 95 %", "p (Holm)"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
    for kpi in names:
        for d in results.comparisons(kpi):
            if d.significant:
                table.add_row(kpi, str(d.level_a), str(d.level_b), _shown(d.summary),
                              f"{d.p_holm:.2g}")  # fmt: skip
    console.print(table if table.row_count else "no significant differences between levels "
                  f"({CORRECTION})")  # fmt: skip


def headline_json(rows: Sequence[Row]) -> dict[str, Any]:
    """The headline figures as `twin compare --json` gives them under ``headline``."""
    return {
        row.figure.name: {
            "label": row.figure.label,
            "unit": row.figure.unit,
            "levels": [_summary_json(summary) for summary in row.levels],
            "comparisons": [
                {
                    "level_a": d.level_a, "level_b": d.level_b,
                    "difference": _summary_json(d.summary),
                    "p_value": _number(d.p_value), "p_holm": _number(d.p_holm),
                    "significant": d.significant,
                    "ratio": _summary_json(ratio),
                }  # fmt: skip
                for d, ratio in zip(row.differences, row.ratios, strict=True)
            ],
        }
        for row in rows
    }


def _rounded(value: float, half_width: float, sign: str = "") -> str:
    """`value` ± `half_width`, both to the decimal of the half-width's second digit
    (6 significant digits without a half-width; ± 0 when nothing varied)."""
    if math.isnan(value):
        return "-"
    if math.isnan(half_width):
        return f"{value:{sign},.6g}"
    if half_width == 0.0:
        return f"{value:{sign},.6g} ± 0"
    decimals = min(max(1 - math.floor(math.log10(half_width)), -15), 15)
    places = max(decimals, 0)
    # + 0.0: a value that rounds to -0 shows as 0
    value, half_width = round(value, decimals) + 0.0, round(half_width, decimals)
    return f"{value:{sign},.{places}f} ± {half_width:,.{places}f}"


def _figure_cell(summary: Summary, replications: int) -> str:
    shown = _rounded(summary.mean, summary.half_width)
    if 0 < summary.n < replications:  # a wall time known where the job finished only
        shown += f" (n={summary.n})"
    return shown


def print_headline(sweep: StoredSweep, results: SweepResults, rows: Sequence[Row]) -> None:
    """The headline figures by level, with each pair's difference and ratio; a figure
    no level has is named in the caption instead of a row of "-"."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = [row for row in rows if any(s.n for s in row.levels)]
    absent = [row.figure.label for row in rows if row not in shown]
    pairs = [(d.level_a, d.level_b) for d in rows[0].differences]
    caption = ("* paired difference significant (Holm, family-wise 5 %); ratio of the "
               "means, delta-method interval")  # fmt: skip
    if absent:
        caption += f"; in no scenario: {', '.join(absent)}"
    table = Table(title=Text(f"headline: {results.replications} replications per scenario "
                             "paired by seed, 95 % intervals"), caption=caption)  # fmt: skip
    table.add_column("figure", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for level in sweep.levels:
        header = ", ".join(level.assignments) or level.name
        table.add_column(Text(f"[{level.index}] {header}"), justify="right", no_wrap=True)
    for a, b in pairs:
        table.add_column(f"[{b}] - [{a}]", justify="right", no_wrap=True)
        table.add_column(f"[{b}] / [{a}]", justify="right", no_wrap=True)
    for row in shown:
        cells = [_figure_cell(s, results.completed(i)) for i, s in enumerate(row.levels)]
        for d, ratio in zip(row.differences, row.ratios, strict=True):
            mark = " *" if d.significant else ""
            cells.append(_rounded(d.summary.mean, d.summary.half_width, "+") + mark)
            cells.append(_rounded(ratio.mean, ratio.half_width))
        table.add_row(row.figure.label, row.figure.unit, *cells)
    # wider than 80 columns: a pipe gets it whole rather than folded (as `twin query`)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def verdicts_json(night: date, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The one JSON object `twin nightly --json` prints."""
    return {
        "night": night.isoformat(),
        "regressed": any(v.regressed for v in verdicts),
        "kpis": [
            {
                "label": v.label, "kpi": v.kpi, "better": v.better, "status": v.status,
                "tonight": _summary_json(v.tonight),
                "previous": None if v.previous is None else _summary_json(v.previous),
                "change": _number(v.change), "allowed": _number(v.allowed),
            }  # fmt: skip
            for v in verdicts
        ],
    }


def print_verdicts(night: date, verdicts: Sequence[Verdict]) -> None:
    """Each watched KPI tonight and the night before, with the verdict."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nightly {night.isoformat()}: watched KPIs, 95 % intervals")
    for column in ("sweep", "KPI", "tonight", "previous", "change", "verdict"):
        table.add_column(column)
    for v in verdicts:
        previous = "-" if v.previous is None else _shown(v.previous)
        change = "-" if math.isnan(v.change) else f"{v.change:+,.3g}"
        style = "bold red" if v.regressed else None
        table.add_row(v.label, v.kpi, _shown(v.tonight), previous, change, v.status, style=style)
    regressed = sum(v.regressed for v in verdicts)
    Console().print(table)
    Console().print(f"{regressed} watched KPIs regressed" if regressed else "nothing regressed")


def print_effects(
    kpi: str, effects: Sequence[Effect], points: int, replications: int, noise: float,
    as_json: bool,
) -> None:  # fmt: skip
    """Morris statistics per parameter, strongest first, and the replication noise."""
    import json

    if as_json:
        print(json.dumps({
            "kpi": kpi, "method": "morris", "points": points, "replications": replications,
            "mean_point_half_width": _number(noise),
            "effects": [
                {"param": e.key, "mu_star": e.mu_star, "mu_star_conf": _number(e.mu_star_conf),
                 "mu": e.mu, "sigma": e.sigma}
                for e in effects
            ],
        }))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Morris elementary effects on {kpi}: {points} points x {replications} replications",
        caption=f"mean 95 % half-width of a point's {kpi}: {noise:.3g}",
    )
    for column in ("rank", "parameter", "mu* ± 95 %", "mu", "sigma"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for rank, e in enumerate(effects, 1):
        table.add_row(str(rank), e.key, f"{e.mu_star:.3g} ± {e.mu_star_conf:.2g}",
                      f"{e.mu:.3g}", f"{e.sigma:.3g}")  # fmt: skip
    Console().print(table)


@contextmanager
def progress_bar(watch: Sequence[str], where: str) -> Iterator[Progress | None]:
    """A `Progress` that draws a bar on stderr if it is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        TextColumn("{task.fields[widths]}"),
    )  # fmt: skip
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"replications ({where})", total=None, rate="", widths="")
        started = time.monotonic()
        last = [0.0]

        def update(done: int, planned: int, results: SweepResults) -> None:
            now = time.monotonic()
            rate = f"{done / max(now - started, 1e-9):.2f}/s"
            fields: dict[str, Any] = {"completed": done, "total": planned, "rate": rate}
            if now - last[0] > _REDRAW_S or done == planned:
                last[0] = now
                fields["widths"] = "  ".join(
                    f"{kpi} ±{results.summary(0, kpi).half_width:.2g}" for kpi in watch
                )
            bar.update(task, **fields)

        yield update
