"""Experiments above the engine: sweeps of replications, what-ifs, nightly checks.

A sweep runs a scenario (and each level of its factors: the full factorial)
for N replications; replication i of every level takes the i-th seed of the
sweep's `SeedSequence` (`design`), so it is the same wherever and whenever
it runs, and the levels share their random numbers. Replications run on an
executor (`executors`: this process, a local process pool or a Dask
cluster) as `replication.run_replication` tasks; the sweep (`sweep`) hands
each outcome to a ledger (the store) as it arrives, adds replications until
the requested interval widths are met, and summarizes each KPI (`stats`);
`headline` derives from each replication's KPIs the figures `twin compare`
leads with (tokens/s, training wall time, MW, energy per million tokens).
`nightly` reads the nightly configuration and judges a night against the
previous one. The engine knows nothing of any of this: it is called once per
replication with a seed.
"""
