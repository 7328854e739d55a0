"""Training workloads: a gang job with checkpoint and restart under the hall's
failures (docs/training.md)."""

from twin.workloads.training.job import PHASES, TrainingJob, daly_interval, young_interval

__all__ = ["PHASES", "TrainingJob", "daly_interval", "young_interval"]
