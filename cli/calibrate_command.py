"""`twin calibrate`: refit the throughput model's constants and print the fit.

Reads the figures of the system's calibration file (`--system wafer`:
`twin/compute/calibration.toml`, `--system gpu_node`:
`twin/compute/calibration_gpu.toml`; or `--file`), fits its shared
constants with `twin.compute.calibration.fit`, prints `report()` and, with
`--write`, stores them in that file. Other values of the documented
mechanisms (`--acceptance`, `--draft-tokens`, `--core-share`) show the
fit's sensitivity; they are never stored (exit code 2).
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["calibrate"]


@click.command()
@click.option("--system", "kind", type=click.Choice(["wafer", "gpu_node"]), default="wafer",
              show_default=True, help="The system whose constants to fit.")
@click.option("--write", is_flag=True, help="Store the refit constants in the file.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="TOML",
              help="Calibration file to read and write [default: the shipped one].")
@click.option("--draft-tokens", type=click.IntRange(min=1, max=64), metavar="N",
              help="Sensitivity: tokens drafted per verification [default: 4].")
@click.option("--acceptance", type=click.FloatRange(min=0, max=1), metavar="P",
              help="Sensitivity: chance a drafted token is accepted [default: 0.8].")
@click.option("--core-share", type=click.FloatRange(min=0, max=1, min_open=True), metavar="S",
              help="Sensitivity: share of a replica's cores its layers spread over [default: 1].")
def calibrate(kind: str, write: bool, path: Path | None, draft_tokens: int | None,
              acceptance: float | None, core_share: float | None) -> None:
    """Refit the throughput model's constants and print every figure against it.

    Fits the constants of a system (the wafer's span_s, hop_s and efficiency;
    the GPU node's hbm_efficiency, flops_efficiency, allreduce_s and step_s) on
    the fit figures of its calibration file, then prints each published
    figure, fitted and out of sample, with its prediction and the ratio
    (docs/compute.md, *Calibration* and *The GPU node*).

    Example:

    \b
        twin calibrate
        twin calibrate --acceptance 0.7
        twin calibrate --system gpu_node
    """
    from twin.compute.calibration import TARGETS, Mechanisms, fit, load, report, write_fitted

    defaults = Mechanisms()
    mechanisms = Mechanisms(
        defaults.draft_tokens if draft_tokens is None else draft_tokens,
        defaults.acceptance if acceptance is None else acceptance,
        defaults.core_share if core_share is None else core_share,
    )
    if write and mechanisms != defaults:
        raise click.UsageError("--write stores the fit of the documented defaults only")
    if kind != "wafer" and core_share is not None:
        raise click.UsageError("--core-share is a wafer's: a GPU node has no cores to share")
    target = TARGETS[kind]
    path = target.path if path is None else path
    fitted, checks = load(path, target)
    constants = fit(fitted, mechanisms, target)
    if write:
        write_fitted(constants, path)
    click.echo(report(constants, fitted, checks, mechanisms, target))
