"""Spare parts: stock per part type with an (s, Q) reorder policy and lead time.

`PartStock.take()` is a SimPy generator: it waits while the shelf is empty
(counting a stockout) and reviews the stock position (on hand + on order -
backorders) after every request; at or below the reorder point it orders
`order_quantity`, delivered after `lead_time`.
"""

from __future__ import annotations

import simpy

from twin.fleet import Recorder
from twin.hall import ROOT
from twin.scenario import SpareSpec

__all__ = ["PartStock"]


class PartStock:
    """One spare-part type on the hall's shelf."""

    def __init__(
        self, env: simpy.Environment, name: str, spec: SpareSpec, recorder: Recorder
    ) -> None:
        self.env, self.name, self.spec, self.recorder = env, name, spec, recorder
        self.shelf = simpy.Container(env, init=spec.stock)
        self.on_order = 0
        self.used = 0
        self.stockouts = 0
        self.orders = 0
        self.scope = f"{ROOT}.spares.{name}"

    def take(self):  # type: ignore[no-untyped-def]
        """Take one part, waiting for a delivery if the shelf is empty."""
        if self.shelf.level == 0:
            self.stockouts += 1
            self.recorder.emit(self.env.now, self.scope, "stockout", self.name)
        request = self.shelf.get(1)
        self._review()
        try:
            yield request
        except simpy.Interrupt:  # the repair was abandoned while waiting
            if request.triggered:
                self.shelf.put(1)
            else:
                request.cancel()
            raise
        self.used += 1

    def give_back(self) -> None:
        """Return an unused part (its repair was overtaken by a system swap)."""
        self.used -= 1
        self.shelf.put(1)

    def _review(self) -> None:
        position = self.shelf.level + self.on_order - len(self.shelf.get_queue)
        if position <= self.spec.reorder_point:
            quantity = self.spec.order_quantity
            self.on_order += quantity
            self.orders += 1
            self.env.process(self._deliver(quantity))

    def _deliver(self, quantity: int):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.spec.lead_time)
        self.on_order -= quantity
        self.recorder.emit(self.env.now, self.scope, "restock", self.name, float(quantity))
        yield self.shelf.put(quantity)
