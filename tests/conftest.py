"""Fixtures shared by the scenario and CLI tests."""

from __future__ import annotations

import click
import pytest


@pytest.fixture(scope="session")
def twin() -> click.Group:
    """The `twin` click group, as installed for the console script."""
    from cli.main import cli

    return cli
