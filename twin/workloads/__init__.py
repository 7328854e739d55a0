"""Workloads that run on the hall: what the systems are used for.

`serving` turns the fleet's running systems into model replicas that serve
tenants' tokens (fluid or request-level). A workload reads the fleet through
its hooks and the compute core (`twin.compute`); it never changes the fleet.
"""
