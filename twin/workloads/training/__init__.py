"""Training workloads: a gang job with checkpoint and restart under the hall's
failures (docs/training.md)."""

from twin.workloads.training.job import (
    PHASES,
    SOURCES,
    TrainingJob,
    daly_interval,
    young_interval,
)
from twin.workloads.training.recovery import (
    HostSelection,
    PreemptiblePool,
    Recovery,
    Standbys,
    WaitForRepair,
)

__all__ = [
    "PHASES", "SOURCES", "TrainingJob", "daly_interval", "young_interval", "Recovery",
    "Standbys", "HostSelection", "PreemptiblePool", "WaitForRepair",
]
