"""The mechanisms of the hall model, one SimPy process (or agenda) each.

`components` (failures of each component class, k-of-n), `repair` (crews,
diagnosis, automated and manual fixes), `spares` (part stock, reorders),
`wafer` (defects, core loss, wafer failure and system swap) and `thermal`
(first-order wafer temperature, governor, trips). `twin.engine` wires them.
"""
