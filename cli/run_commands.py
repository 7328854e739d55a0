"""`twin run` and `twin check`: validate a scenario, simulate it, store and print KPIs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from cli.options import db_option
from twin.budget import check_memory
from twin.errors import ScenarioError
from twin.records import RunResult, nest_kpis, run_name
from twin.scenario import MAX_SEED, Scenario, load_scenario, run_option, scale_scenario

__all__ = ["run", "check", "result_json"]

DEFAULT_SCENARIO = "scenarios/hall.toml"


def scenario_argument(func):  # type: ignore[no-untyped-def]
    """SCENARIO argument plus repeatable ``--set KEY=VALUE`` overrides, ``--scale N``
    and ``--allow-outside``."""
    func = click.option(
        "--scale", type=click.IntRange(min=1), default=1, metavar="N",
        help="N copies of the hall with pooled support: rows, crews, spare systems and "
        "part stocks, reorder points and order quantities times N (after --set).",
    )(func)
    func = click.option(
        "--allow-outside", is_flag=True, envvar="TWIN_ALLOW_OUTSIDE",
        help="Let `extends` reach files outside the scenario's folder (env TWIN_ALLOW_OUTSIDE).",
    )(func)
    func = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override any scenario key, e.g. --set hall.rows=4 (repeatable).",
    )(func)
    return click.argument(
        "scenario_path", metavar="[SCENARIO]", required=False, default=DEFAULT_SCENARIO,
        type=click.Path(dir_okay=False, path_type=Path),
    )(func)


def _load(
    scenario_path: Path, overrides: tuple[str, ...], allow_outside: bool, scale: int
) -> Scenario:
    """The scenario of the command line: file, --set overrides, then --scale."""
    scenario = load_scenario(scenario_path, overrides, allow_outside=allow_outside)
    return scale_scenario(scenario, scale)


def _with_fidelity(scenario: Scenario, fidelity: str | None) -> Scenario:
    """``--fidelity``: the scenario's serving simulated by that model."""
    if fidelity is None:
        return scenario
    if scenario.serving is None:
        raise ScenarioError("--fidelity", "serving.fidelity",
                            "a scenario with a [serving] section", fidelity)
    serving = scenario.serving.model_copy(update={"fidelity": fidelity})
    return scenario.model_copy(update={"serving": serving})


def _parse_until(value: str | None) -> float | None:
    """``--until``, held to the same bounds as ``run.until`` in a scenario."""
    return None if value is None else float(run_option("until", value, "--until"))


def force_option(func):  # type: ignore[no-untyped-def]
    """``--force``: skip the memory check."""
    return click.option(
        "--force", is_flag=True,
        help="Run even if the estimated memory of the run exceeds what is available.",
    )(func)


def _clean(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def result_json(result: RunResult, run_id: int | None, name: str) -> dict[str, Any]:
    """The one JSON object `twin run --json` prints (docs/kpis.md lists its keys; a
    run with serving also has `serving`); `name` is the name the run goes by
    (`twin.records.run_name`)."""
    out: dict[str, Any] = {
        "run_id": run_id,
        "name": name,
        "scenario": result.scenario_name,
        "scenario_hash": result.scenario_hash,
        "seed": result.seed,
        "simulated_days": result.until_h / 24.0,
        "wall_s": round(result.wall_s, 4),
        "systems": result.systems,
        "kpis": nest_kpis(result.kpis, clean=_clean),
        "warnings": list(result.warnings),
    }
    rows = tenant_rows(result.kpis)
    if rows:  # a run with serving: each tenant's summary
        out["serving"] = {
            tenant: {key: _clean(value) for key, value in row.items()}
            for tenant, row in rows.items()
        }
    return out


# The per-tenant summary of a run with serving: column -> KPI family (docs/kpis.md)
TENANT_COLUMNS = {
    "demanded_tokens": "serving.tokens.demanded",
    "served_tokens": "serving.tokens.served",
    "goodput_tokens": "serving.tokens.goodput",
    "slo_attainment": "serving.slo_attainment",
    "delay_p99_s": "serving.delay_p99_s",
}


def tenant_rows(kpis: dict[str, float]) -> dict[str, dict[str, float]]:
    """Goodput, SLO attainment and the rest of `TENANT_COLUMNS` per tenant (empty
    without serving)."""
    family = TENANT_COLUMNS["goodput_tokens"] + "."
    tenants = [name.removeprefix(family) for name in kpis if name.startswith(family)]
    return {
        tenant: {column: kpis[f"{prefix}.{tenant}"] for column, prefix in TENANT_COLUMNS.items()}
        for tenant in tenants
    }


_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_SECONDS = ((3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "\u00b5s"))


def tokens_cell(tokens: float) -> str:
    """``51.10 T``: tokens with an SI prefix, four significant digits."""
    if math.isnan(tokens):
        return "-"
    if tokens == 0.0:
        return "0"
    for scale, prefix in _PREFIXES:  # the largest prefix the rounded number reaches 1 in
        if abs(float(f"{tokens / scale:.4g}")) >= 1.0:
            return f"{f'{tokens / scale:#.4g}'.rstrip('.')} {prefix}"
    return f"{tokens:.4g}"


def share_cell(share: float) -> str:
    """``99.99998 %``: a share in per cent with the digits it takes to show a miss
    (only a share of exactly 1 prints as 100 %)."""
    if math.isnan(share):
        return "-"
    if share >= 1.0:
        return f"{100.0 * share:.6g} %"
    for digits in range(2, 16):
        shown = f"{100.0 * share:.{digits}f}"
        if float(shown) < 100.0:
            return f"{shown.rstrip('0').rstrip('.')} %"
    return f"{100.0 * share!r} %"  # unreachable: 1 - 1e-16 already shows


def seconds_cell(seconds: float) -> str:
    """``1.27 ms``: a duration with its unit, three significant digits (below a
    microsecond in ns)."""
    if math.isnan(seconds):
        return "-"
    if seconds == 0.0:
        return "0 s"
    scale, unit = next(((s, u) for s, u in _SECONDS if abs(seconds) >= s), (1e-9, "ns"))
    return f"{seconds / scale:.3g} {unit}"


# How each column of `TENANT_COLUMNS` is shown: its header and cell format
_TENANT_CELLS = {
    "demanded_tokens": ("demanded\ntokens", tokens_cell),
    "served_tokens": ("served\ntokens", tokens_cell),
    "goodput_tokens": ("goodput\ntokens", tokens_cell),
    "slo_attainment": ("SLO\nattainment", share_cell),
    "delay_p99_s": ("p99\ndelay", seconds_cell),
}


def _tenant_table(rows: dict[str, dict[str, float]]) -> Any:
    """The "serving by tenant" table: tokens with SI prefixes, attainment in per cent,
    the delay with its unit (the JSON has the exact numbers)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="serving by tenant")
    table.add_column("tenant", overflow="fold")
    for header, _ in _TENANT_CELLS.values():
        table.add_column(header, justify="right", no_wrap=True)
    for tenant, row in rows.items():
        cells = (fmt(row[column]) for column, (_, fmt) in _TENANT_CELLS.items())
        table.add_row(Text(tenant), *cells)
    return table


def _family(kpis: dict[str, float], prefix: str) -> dict[str, float]:
    """The KPIs named `prefix`.<member>, by member."""
    return {name.removeprefix(prefix): v for name, v in kpis.items() if name.startswith(prefix)}


def _training_lines(kpis: dict[str, float]) -> list[str]:
    """A training job's goodput, interruptions by cause and swaps by source, one line each."""
    interrupted = ", ".join(f"{cause} {n:g}" for cause, n in
                            _family(kpis, "training.interrupted_by.").items() if n)
    swaps = ", ".join(f"{source} {n:g}" for source, n in _family(kpis, "training.swaps.").items())
    return [
        f"training goodput {kpis['training.goodput']:.4g}",
        f"interruptions {kpis['training.interruptions']:g}"
        + (f" ({interrupted})" if interrupted else ""),
        f"swaps: {swaps}",
    ]


def _training_table(kpis: dict[str, float], horizon: float) -> Any:
    """Where a training job's wall time went: its useful work, then each cause of lost
    time, with its share of the wall time (of the horizon while unfinished: then also
    the work computed since the last checkpoint, neither saved nor lost yet)."""
    from rich.table import Table

    wall = kpis["training.wall_h"]
    finished = not math.isnan(wall)
    span = wall if finished else horizon
    title = "training wall time by cause" if finished else "training time by cause (unfinished)"
    table = Table(title=title)
    table.add_column("")
    table.add_column("hours", justify="right")
    table.add_column("share", justify="right")
    rows = {"work": kpis["training.goodput"] * span}  # useful work saved
    rows.update(_family(kpis, "training.lost_h."))
    if not finished:  # the lost hours run to the horizon: the rest is unsaved work
        rows["unsaved"] = max(span - sum(rows.values()), 0.0)
    for label, hours in rows.items():
        table.add_row(label, kpi_text(hours), f"{100.0 * hours / span:.1f} %")
    table.add_row("wall" if finished else "horizon", kpi_text(span), "100.0 %")
    return table


def kpi_text(value: float) -> str:
    """A KPI as the run's table shows it: '-' for NaN, whole digits with separators
    from a million up to 10^15 (a year's tokens: no exponent to decode), else 6 digits."""
    if math.isnan(value):
        return "-"
    if 1e6 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.6g}"


def _print_table(result: RunResult, run_id: int | None, name: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text: a name or label is shown as written, never read as rich markup
    title = Text(f"{name}: {result.systems} systems, {result.until_h / 24:g} days")
    stored = f"run {run_id}" if run_id is not None else "not stored"
    caption = f"seed {result.seed}, {stored}, {result.wall_s:.2f} s"
    table = Table(title=title, caption=caption)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in result.kpis.items():
        table.add_row(name, kpi_text(value))
    console = Console()
    console.print(table)
    rows = tenant_rows(result.kpis)
    if rows:
        console.print(_tenant_table(rows))
    if "training.goodput" in result.kpis:
        console.print(_training_table(result.kpis, result.until_h))
        for line in _training_lines(result.kpis):
            console.print(line, markup=False, highlight=False)
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)


@click.command()
@scenario_argument
@click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SEED), help="Seed of the run (default: run.seed)."
)
@click.option("--until", "until", metavar="DURATION", help="Simulated time, e.g. 365d or 48h.")
@click.option(
    "--fidelity", type=click.Choice(["fluid", "request"]),
    help="Serving model: fluid (a year in seconds) or request (each request, for short "
    "horizons); --set serving.fidelity=... for short.",
)
@db_option
@click.option("--no-store", is_flag=True, help="Do not write the run to the store.")
@click.option(
    "--label", metavar="TEXT",
    help="Name the run goes by in the store (default: the scenario's name, marked if "
    "--set or --scale changed it).",
)  # fmt: skip
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def run(
    scenario_path: Path,
    overrides: tuple[str, ...],
    seed: int | None,
    until: str | None,
    fidelity: str | None,
    db_url: str,
    no_store: bool,
    label: str | None,
    as_json: bool,
    allow_outside: bool,
    scale: int,
    force: bool,
) -> None:
    """Simulate a scenario, store the run and print its KPIs.

    The scenario is validated completely before anything is written, and
    the memory the run will take is estimated and checked against what is
    available (--force skips the check); the run's events and metrics are
    written in chunks while it runs, and the run is marked completed only at
    the end. A run made with --set or --scale is stored under its --label, or
    else under the scenario's name followed by + and the first 8 digits of its
    hash, so that it is never counted as the scenario it was derived from.

    Example:

        twin run scenarios/hall.toml --seed 7 --until 90d --set hall.rows=4 --json
        twin run scenarios/serving.toml --fidelity request --until 1min
    """
    scenario = _with_fidelity(_load(scenario_path, overrides, allow_outside, scale), fidelity)
    horizon = _parse_until(until)
    seed = scenario.run.seed if seed is None else seed
    horizon = scenario.run.until if horizon is None else horizon
    if not force:
        check_memory(scenario, horizon, stored=not no_store, source=str(scenario_path))
    changes = (*overrides, *([f"--scale {scale}"] if scale != 1 else []),
               *([f"--fidelity {fidelity}"] if fidelity else []))
    if no_store:
        from twin.engine import simulate  # here: `twin check` and `twin run -h` need no engine

        result, run_id = simulate(scenario, seed=seed, until=horizon), None
    else:
        from storage import open_store

        with open_store(db_url) as store:
            result, run_id = store.record(
                scenario, seed=seed, until=horizon, label=label, overrides=changes
            )
    name = run_name(result.scenario_name, result.scenario_hash, label, bool(changes))
    if as_json:
        click.echo(json.dumps(result_json(result, run_id, name)))
    else:
        _print_table(result, run_id, name)


@click.command()
@scenario_argument
@click.option("--resolved", is_flag=True, help="Print the resolved scenario as JSON.")
@force_option
def check(
    scenario_path: Path,
    overrides: tuple[str, ...],
    resolved: bool,
    allow_outside: bool,
    scale: int,
    force: bool,
) -> None:
    """Validate a scenario file without running it.

    Exit code 0 when valid, 2 with the file, dotted key and what was expected
    when not; a scenario whose stored run would not fit in the memory
    available here is not valid either (--force skips that check).

    Example:

        twin check scenarios/hall.toml --set thermal.inlet="35 C" --resolved
    """
    scenario = _load(scenario_path, overrides, allow_outside, scale)
    if not force:
        check_memory(scenario, None, stored=True, source=str(scenario_path))
    if resolved:
        click.echo(json.dumps(scenario.document(), indent=2))
    else:
        click.echo(
            f"{scenario_path}: valid ({scenario.name}, {scenario.systems} systems, "
            f"hash {scenario.digest()[:12]})"
        )
