"""Fixtures shared by the scenario and CLI tests, and the Hypothesis profile of CI.

In CI (``CI`` set, as `.ci/run` runs) Hypothesis draws the same examples on
every run, so a submission's result does not depend on luck; on a developer's
machine it keeps exploring new ones (and replays any failure it found).
"""

from __future__ import annotations

import os

import click
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def twin() -> click.Group:
    """The `twin` click group, as installed for the console script."""
    from cli.main import cli

    return cli
