"""Inference serving: deployments of models on replicas, tenants and their demand.

Built in `twin.engine.build` when a scenario has a ``[serving]`` section:
`replicas.Replicas` places the replicas and keeps their speed as the fleet
changes (recovery included), `demand` gives each tenant's request rate, and
the serving fidelity (`fluid.FluidServing`, or the request-level model in
`requests`) turns both into tokens served, delays and SLO attainment
(docs/serving.md). The modules are imported where they are used: the scenario
schema imports `lengths` alone.
"""
