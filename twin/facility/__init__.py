"""The facility around the hall: the power chain (sources, UPS, generators, feeds,
rack PDUs) as mechanisms that hold systems down through the fleet's reasons.

Built in `twin.engine.build` only for a scenario with a ``[facility]`` section;
without one the twin runs exactly as before (docs/facility.md).
"""

from __future__ import annotations

from twin.facility.power import FEEDS, PowerChain, ride_through_h

__all__ = ["PowerChain", "FEEDS", "ride_through_h"]
