"""A child process that writes one run, for the kill and concurrent-writer tests.

    python writer_proc.py URL MODE SEED EVENTS HOURS CHUNK [GO]

The run is `synthetic_run(EVENTS, HOURS, seed=SEED)`, written as the engine
does (events in batches of 500, then the metric series), in chunks of CHUNK.
MODE `hang`: flush everything, print "flushed RUN_ID", then wait to be killed.
MODE `complete`: wait for the file GO (if given) to exist, then write
everything and complete; print "completed RUN_ID".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from storage import open_store
from storage.testing import synthetic_run


def main(url: str, mode: str, seed: str, events: str, hours: str, chunk: str, *go: str) -> None:
    if go:
        while not Path(go[0]).exists():
            time.sleep(0.005)
    run = synthetic_run(int(events), float(hours), seed=int(seed), scenario_name=f"proc{seed}")
    store = open_store(url)
    writer = store.begin_run(**run.header, chunk_rows=int(chunk))  # type: ignore[arg-type]
    for start in range(0, len(run.events), 500):
        writer.write_events(run.events[start : start + 500])
    writer.write_series(run.series)
    if mode == "hang":
        writer.flush()
        print(f"flushed {writer.run_id}", flush=True)
        time.sleep(600)
    writer.complete(run.result)
    print(f"completed {writer.run_id}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
