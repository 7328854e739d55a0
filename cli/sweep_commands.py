"""`twin sweep`, `twin compare` and `twin nightly`: replications with intervals.

Thin over `twin.experiments` (plans, executors, statistics, the nightly
verdict) and `storage.sweeps` (a sweep is created in the store, then run by
`run_stored`, which is also what ``--resume`` does). Progress goes to
stderr, only when stderr is a terminal (`cli.sweep_output`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.options import db_option
from cli.run_commands import _parse_until, force_option, scenario_argument
from twin.errors import ScenarioError
from twin.scenario import MAX_SEED

__all__ = ["sweep", "compare", "nightly", "sensitivity"]

DEFAULT_REPLICATIONS = 20
DEFAULT_NIGHTLY = "nightly.toml"
RECORD_HELP = (
    "What each replication keeps besides its KPIs: kpis (the default, ~4 kB a "
    "replication), metrics (+ its metric series) or events (+ every event)."
)


def execution_options(func):  # type: ignore[no-untyped-def]
    """``--workers K`` | ``--scheduler ADDR``, ``--record``, ``--db`` and ``--json``."""
    func = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)
    func = db_option(func)
    func = click.option(
        "--record", type=click.Choice(["kpis", "metrics", "events"]), default="kpis",
        show_default=True, help=RECORD_HELP,
    )(func)
    func = click.option(
        "--scheduler", metavar="ADDR",
        help="Run on the Dask scheduler at ADDR (tcp://HOST:PORT) instead of local processes.",
    )(func)
    return click.option(
        "--workers", type=click.IntRange(min=1), metavar="K",
        help="Local worker processes (default: every core; 1 runs in this process).",
    )(func)


def _check_memory(levels: Sequence[Any], workers: int | None, scheduler: str | None,
                  record: str, source: str) -> None:  # fmt: skip
    """Refuse a sweep whose local workers, each running one replication, would not fit in
    the memory available (a Dask cluster's workers are not here to ask)."""
    if scheduler is not None:
        return
    from twin.budget import available_memory, check_memory
    from twin.experiments.executors import default_workers

    available = available_memory()
    if available is None:
        return
    share = available // (workers or default_workers())
    for level in levels:
        check_memory(level.scenario, None, stored=record != "kpis", source=source, limit=share)


def _executor(workers: int | None, scheduler: str | None):  # type: ignore[no-untyped-def]
    from twin.experiments.executors import executor

    if workers is not None and scheduler is not None:
        raise ScenarioError("--scheduler", scheduler, "either --workers or --scheduler, not both")
    return executor(workers, scheduler)


def _run(store: Any, sweep_id: int, pool: Any, watch: Sequence[str],
         source: str = "--watch") -> Any:  # fmt: skip
    from cli.sweep_output import progress_bar
    from storage.sweeps import run_stored

    with progress_bar(watch, pool.description) as progress:
        return run_stored(
            store, sweep_id, pool, progress=progress, check_kpis=_watch_check(watch, source)
        )


def _watch_check(watch: Sequence[str], source: str = "--watch"):  # type: ignore[no-untyped-def]
    def check(names: Sequence[str]) -> None:
        for kpi in watch:
            if kpi not in names:
                raise ScenarioError(source, kpi, f"a KPI of the scenario ({', '.join(names)})")

    return check


@click.command()
@scenario_argument
@click.option(
    "--replications", "-n", type=click.IntRange(min=2), default=DEFAULT_REPLICATIONS,
    show_default=True, help="Replications of each level (the first batch with --ci-width).",
)
@click.option(
    "--factor", "factors", multiple=True, metavar="KEY=V1,V2,...",
    help="A scenario key and its values; several make a full factorial (repeatable).",
)
@click.option(
    "--ci-width", "targets", multiple=True, metavar="KPI=X",
    help="Add replications until the 95 % half-width of KPI is at most X, or X% of its "
    "mean (repeatable).",
)
@click.option(
    "--max-replications", type=click.IntRange(min=2), metavar="M",
    help="Most replications per level with --ci-width (default: 10 x --replications).",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SEED),
    help="Entropy of the sweep's seed sequence (default: the scenario's run.seed).",
)
@click.option("--until", "until", metavar="DURATION", help="Simulated time of each replication.")
@click.option(
    "--watch", multiple=True, metavar="KPI",
    help="KPI whose running half-width the progress bar shows (default: the --ci-width "
    "KPIs, else availability).",
)
@click.option("--resume", type=click.IntRange(min=1), metavar="ID",
              help="Run what sweep ID still lacks (its own scenario and settings).")
@force_option
@execution_options
def sweep(
    scenario_path: Path,
    overrides: tuple[str, ...],
    allow_outside: bool,
    scale: int,
    replications: int,
    factors: tuple[str, ...],
    targets: tuple[str, ...],
    max_replications: int | None,
    seed: int | None,
    until: str | None,
    watch: tuple[str, ...],
    resume: int | None,
    force: bool,
    workers: int | None,
    scheduler: str | None,
    record: str,
    db_url: str,
    as_json: bool,
) -> None:
    """Run a scenario's replications (and factor levels) with 95 % intervals per KPI.

    Replication i of every level takes the i-th seed of the sweep's seed
    sequence (common random numbers), so levels are compared pairwise,
    with Holm's correction over each KPI's pairs. Each replication is
    committed to the store once, as it finishes; a sweep stopped at any
    moment is completed with --resume ID, which runs only what is missing.

    Example:

        twin sweep scenarios/hall.toml -n 50 --factor repair.crews=4,8
    """
    from storage import open_store
    from storage.sweeps import new_sweep
    from twin.experiments.design import factorial, parse_factor
    from twin.experiments.sweep import settings

    if resume is not None:
        _check_resume(resume)
    levels = None
    if resume is None:  # the whole sweep is validated before the store is touched
        levels = factorial(
            scenario_path, overrides, [parse_factor(text) for text in factors],
            allow_outside=allow_outside, until=_parse_until(until), scale=scale,
        )  # fmt: skip
        plan = settings(replications, max_replications, targets)
        if not force:
            _check_memory(levels, workers, scheduler, record, str(scenario_path))
    pool = _executor(workers, scheduler)  # a scheduler that does not answer stores nothing
    try:
        with open_store(db_url) as store:
            if resume is not None:
                sweep_id = resume
            else:
                assert levels is not None
                sweep_id = new_sweep(
                    store, levels, factors=_factor_table(factors), settings=plan, record=record,
                    seed=levels[0].scenario.run.seed if seed is None else seed,
                )  # fmt: skip
            results = _run(store, sweep_id, pool, _watched(watch, store, sweep_id))
            _show(store, sweep_id, results, as_json)
    finally:
        pool.close()


# what defines a sweep: a resumed sweep keeps its own, so none of these goes with --resume
_SWEEP_DEFINITION = {
    "scenario_path": "SCENARIO", "overrides": "--set", "scale": "--scale",
    "replications": "--replications", "factors": "--factor", "targets": "--ci-width",
    "max_replications": "--max-replications", "seed": "--seed", "until": "--until",
    "record": "--record",
}


def _check_resume(resume: int) -> None:
    """Refuse ``--resume ID`` with an option that would change the sweep (silently
    ignoring it would let ``--resume ID -n 50`` look like an extension)."""
    from click.core import ParameterSource

    context = click.get_current_context()
    given = [flag for name, flag in _SWEEP_DEFINITION.items()
             if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
    if given:
        expected = "no SCENARIO or option that defines the sweep: a resumed sweep keeps its own"
        raise ScenarioError("--resume", str(resume), expected, ", ".join(given))


def _factor_table(factors: Sequence[str]) -> dict[str, list[str]]:
    from twin.experiments.design import parse_factor

    return {f.key: list(f.values) for f in map(parse_factor, factors)}


def _watched(watch: Sequence[str], store: Any, sweep_id: int) -> list[str]:
    if watch:
        return list(watch)
    from storage.sweeps import load_sweep

    targets = load_sweep(store, sweep_id).settings.get("targets", [])
    return [text.partition("=")[0] for text in targets] or ["availability"]


def _show(store: Any, sweep_id: int, results: Any, as_json: bool,
          headline: bool = False) -> None:  # fmt: skip
    """The sweep's tables (or JSON); with `headline`, its headline figures first."""
    from cli.sweep_output import headline_json, print_headline, print_sweep, sweep_json
    from storage.sweeps import load_sweep
    from twin.experiments.headline import headline as headline_rows

    stored = load_sweep(store, sweep_id)
    rows = headline_rows(results) if headline else None
    if as_json:
        out = sweep_json(stored, results)
        if rows is not None:
            out["headline"] = headline_json(rows)
        click.echo(json.dumps(out))
        return
    if rows is not None:
        print_headline(stored, results, rows)
    print_sweep(stored, results)


@click.command()
@click.argument("first", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replications", "-n", type=click.IntRange(min=2), default=DEFAULT_REPLICATIONS,
    show_default=True, help="Replications of each scenario.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of both scenarios (repeatable).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED),
              help="Entropy of the seed sequence (default: the first scenario's run.seed).")
@click.option("--until", "until", metavar="DURATION", help="Simulated time of each replication.")
@click.option("--allow-outside", is_flag=True, envvar="TWIN_ALLOW_OUTSIDE",
              help="Let `extends` reach files outside each scenario's folder.")
@execution_options
def compare(
    first: Path,
    second: Path,
    replications: int,
    overrides: tuple[str, ...],
    seed: int | None,
    until: str | None,
    allow_outside: bool,
    workers: int | None,
    scheduler: str | None,
    record: str,
    db_url: str,
    as_json: bool,
) -> None:
    """Compare two scenarios replication by replication (paired by seed).

    The two scenarios are the two levels of one sweep: replication i of
    each takes the same seed. First the headline figures (tokens/s served,
    training wall time and goodput, availability, job interruptions per day,
    IT and facility MW, energy per million tokens; "-" where a scenario has
    no such thing), each with its 95 % interval and the paired difference and
    ratio of the two; then every KPI's, and the significant differences.

    Example:

        twin compare scenarios/hall.toml scenarios/pump-stress.toml -n 30 --json
    """
    from storage import open_store
    from storage.sweeps import new_sweep
    from twin.experiments.design import level_of
    from twin.experiments.sweep import settings
    from twin.scenario import load_scenario

    horizon = _parse_until(until)
    scenarios = [load_scenario(path, overrides, allow_outside=allow_outside)
                 for path in (first, second)]  # fmt: skip
    levels = [level_of(i, (), overrides, s, horizon) for i, s in enumerate(scenarios)]
    pool = _executor(workers, scheduler)
    try:
        with open_store(db_url) as store:
            sweep_id = new_sweep(
                store, levels, factors={"scenario": [str(first), str(second)]},
                seed=scenarios[0].run.seed if seed is None else seed,
                settings=settings(replications), record=record,
            )  # fmt: skip
            results = _run(store, sweep_id, pool, ["availability"])
            _show(store, sweep_id, results, as_json, headline=True)
    finally:
        pool.close()


@click.command()
@click.argument(
    "config_path", metavar="[CONFIG]", required=False, default=DEFAULT_NIGHTLY,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--night", metavar="YYYY-MM-DD",
              help="The night the sweeps are tagged with (default: today, UTC).")
@execution_options
def nightly(
    config_path: Path,
    night: str | None,
    workers: int | None,
    scheduler: str | None,
    record: str,
    db_url: str,
    as_json: bool,
) -> None:
    """Run the nightly sweeps and flag watched KPIs that changed since the previous night.

    Each sweep of CONFIG is tagged with its label, the night and the code
    version, and each watched KPI is compared with the latest completed night
    before it of the same label: changed when the means differ by more than the two
    95 % intervals explain, regressed when the change is for the worse.
    A sweep of tonight left unfinished (killed) is resumed, not restarted.
    Exit code 0 when nothing regressed, 3 when something did (2 bad input,
    1 internal error).

    Example:

        twin nightly nightly.toml --db nightly.db
    """
    from cli.sweep_output import print_verdicts, verdicts_json
    from storage import open_store
    from twin.experiments.nightly import REGRESSED, load_config

    config = load_config(config_path)
    date = _night(night)
    verdicts = []
    pool = _executor(workers, scheduler)
    try:
        with open_store(db_url) as store:
            for entry in config.sweep:
                verdicts.extend(_night_sweep(store, config_path, config.seed, entry, date, pool,
                                             record))  # fmt: skip
    finally:
        pool.close()
    if as_json:
        click.echo(json.dumps(verdicts_json(date, verdicts)))
    else:
        print_verdicts(date, verdicts)
    if any(v.regressed for v in verdicts):
        raise SystemExit(REGRESSED)


def _night(text: str | None) -> Any:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ScenarioError("--night", "", "a date YYYY-MM-DD", text) from None


def _night_sweep(
    store: Any, config_path: Path, seed: int, entry: Any, night: Any, pool: Any, record: str
) -> list[Any]:
    """Run (or finish) tonight's sweep of `entry` and judge its watched KPIs."""
    from storage.sweeps import committed_kpis, new_sweep, nightly_sweeps, previous_night
    from twin.experiments.design import factorial
    from twin.experiments.nightly import judge
    from twin.experiments.stats import summarize
    from twin.experiments.sweep import settings

    sweep_id = nightly_sweeps(store, night).get(entry.label)
    if sweep_id is None:
        levels = factorial(config_path.parent / entry.scenario, entry.set, ())
        plan = settings(entry.replications, entry.max_replications, entry.ci_width)
        plan["watch"] = dict(entry.watch)
        sweep_id = new_sweep(store, levels, seed=seed, settings=plan, record=record,
                             label=entry.label, night=night)  # fmt: skip
    source = f"{config_path}: sweep {entry.label!r} watch"
    results = _run(store, sweep_id, pool, list(entry.watch), source)
    tonight = results.summaries(0)
    before = previous_night(store, entry.label, night)
    previous = None
    if before is not None:
        kpis = committed_kpis(store, before)
        names = {name for values in kpis.values() for name in values}
        previous = {
            name: summarize([kpis[key].get(name, float("nan")) for key in sorted(kpis)
                             if key[0] == 0])
            for name in names
        }  # fmt: skip
    return judge(entry.label, entry.watch, tonight, previous)


@click.command()
@scenario_argument
@click.option(
    "--param", "params", multiple=True, required=True, metavar="KEY=LOW:HIGH",
    help="A scenario key and its range; a unit goes after both numbers, e.g. "
    "'components.pump.failure.scale=50000:150000 h' (repeatable).",
)
@click.option("--kpi", default="availability", show_default=True, help="The KPI to explain.")
@click.option("--trajectories", "-r", type=click.IntRange(min=2), default=10, show_default=True,
              help="Morris trajectories (each has one point more than there are parameters).")
@click.option("--grid", type=click.IntRange(min=2), default=4, show_default=True,
              help="Levels of each parameter's grid.")
@click.option("--replications", "-n", type=click.IntRange(min=2), default=5, show_default=True,
              help="Replications of each point (common seeds across points).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED),
              help="Seed of the design and of the replications (default: run.seed).")
@click.option("--until", "until", metavar="DURATION", help="Simulated time of each replication.")
@click.option("--workers", type=click.IntRange(min=1), metavar="K",
              help="Local worker processes (default: every core; 1 runs in this process).")
@click.option("--scheduler", metavar="ADDR", help="Run on the Dask scheduler at ADDR.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sensitivity(
    scenario_path: Path,
    overrides: tuple[str, ...],
    allow_outside: bool,
    scale: int,
    params: tuple[str, ...],
    kpi: str,
    trajectories: int,
    grid: int,
    replications: int,
    seed: int | None,
    until: str | None,
    workers: int | None,
    scheduler: str | None,
    as_json: bool,
) -> None:
    """Rank scenario parameters by their effect on a KPI (Morris elementary effects).

    SALib draws Morris trajectories over the --param ranges; each point is
    run for --replications replications on common seeds, and each parameter
    gets mu* (mean absolute elementary effect, in KPI units per whole range)
    with its 95 % bootstrap interval, mu and sigma. Nothing is stored.

    Example:

        twin sensitivity scenarios/small.toml --param repair.crews=1:4
    """
    import numpy as np

    from cli.sweep_output import print_effects
    from twin.experiments.design import levels_for
    from twin.experiments.sensitivity import morris_design, morris_effects, parse_param
    from twin.experiments.sweep import Plan, run_sweep

    parsed = [parse_param(text) for text in params]
    base = levels_for(scenario_path, overrides, [()], allow_outside=allow_outside, scale=scale)
    entropy = base[0].scenario.run.seed if seed is None else seed
    design = morris_design(parsed, trajectories, grid, entropy)
    points: dict[tuple[float, ...], int] = {}
    for row in design:
        points.setdefault(tuple(row.tolist()), len(points))
    combos = [[p.assignment(x) for p, x in zip(parsed, point, strict=True)] for point in points]
    levels = levels_for(scenario_path, overrides, combos, allow_outside=allow_outside,
                        until=_parse_until(until), scale=scale)  # fmt: skip
    plan = Plan(tuple(levels), entropy, replications, replications)
    pool = _executor(workers, scheduler)
    try:
        from cli.sweep_output import progress_bar

        with progress_bar([kpi], pool.description) as progress:
            results = run_sweep(plan, pool, progress=progress, check_kpis=_watch_check([kpi]))
    finally:
        pool.close()
    means = np.array([results.summary(points[tuple(row.tolist())], kpi).mean for row in design])
    effects = morris_effects(parsed, design, means, grid, entropy)
    noise = sum(results.summary(i, kpi).half_width for i in range(len(levels))) / len(levels)
    print_effects(kpi, effects, len(levels), replications, noise, as_json)
