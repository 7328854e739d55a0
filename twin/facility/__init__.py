"""The facility around the hall: the power chain (sources, UPS, generators, feeds,
rack PDUs) holding systems down through the fleet's reasons, the cooling chain
(chillers, facility water, CDUs) setting their inlet temperature, and the
facility's energy and PUE, and a power budget (capping).

Built in `twin.engine.build` only for a scenario with a ``[facility]`` section;
without one the twin runs exactly as before (docs/facility.md).
"""

from __future__ import annotations

from twin.facility.capping import POLICIES, apply_cap, caps
from twin.facility.cooling import CP_WATER, Cooling, loop_rise, rejection_share, time_to_gain
from twin.facility.domains import failure_domains
from twin.facility.energy import FacilityEnergy, facility_energy
from twin.facility.power import FEEDS, PowerChain, ride_through_h

__all__ = [
    "PowerChain", "FEEDS", "ride_through_h", "Cooling", "CP_WATER", "loop_rise", "time_to_gain",
    "rejection_share",
    "FacilityEnergy", "facility_energy", "POLICIES", "apply_cap", "caps", "failure_domains",
]
