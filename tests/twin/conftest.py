"""Fixtures for the model tests (the builders themselves are in `twinkit`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twinkit import quiet_scenario

from twin.scenario import Scenario


@pytest.fixture
def quiet() -> Callable[..., Scenario]:
    """`quiet_scenario` as a fixture: a hall where nothing happens unless asked for."""
    return quiet_scenario
