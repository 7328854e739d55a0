"""Delete a run: its row, and with it (foreign keys, ON DELETE CASCADE) its events,
metric series and KPIs, in one transaction.

A run that is still running is refused: its process would go on writing
rows of a run that no longer exists. The check and the delete are one
statement, so a run cannot start between them; a run whose process died is
marked interrupted when the store is opened (`Store.recover_interrupted`)
and can then be deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from storage import schema
from storage.query import db_message
from storage.read import check_run_id
from storage.store import Store
from twin.errors import StoreError

__all__ = ["delete_run"]


def delete_run(store: Store, run_id: int) -> None:
    """Delete run `run_id` with its records; a `StoreError` if unknown or running."""
    runs = schema.runs
    check_run_id(store, run_id)
    try:
        with store.engine.begin() as conn:
            gone = conn.execute(
                sa.delete(runs).where(runs.c.id == run_id, runs.c.status != "running")
            ).rowcount
            if gone:
                return
            status = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot delete run {run_id} from {store.url}: {db_message(exc)}") from exc
    if status is None:
        raise StoreError(f"no run {run_id} in {store.url}")
    raise StoreError(
        f"run {run_id} is running; it can be deleted once it has ended (or its process is gone)"
    )
