"""Spare parts: stock per part type with an (s, Q) reorder policy and lead time.

`PartStock.take(served)` hands a part to `served`: at once when one is on
the shelf, else (a stockout, counted) when a delivery or a part given back
brings one, to the requests in the order they came. After every request it
reviews the stock position (on hand + on order - backorders); at or below
the reorder point it orders `order_quantity`, delivered after `lead_time`
(one timeout, whose callback serves the waiting requests).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import simpy

from twin.agenda import Wake
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
        self.on_hand = spec.stock  # parts on the shelf
        self._waiting: deque[Callable[[], None]] = deque()  # requests, first come first
        self.on_order = 0
        self.used = 0
        self.stockouts = 0
        self.orders = 0
        self.scope = f"{ROOT}.spares.{name}"

    @property
    def backorders(self) -> int:
        """Requests waiting for a part."""
        return len(self._waiting)

    def take(self, served: Callable[[], None]) -> None:
        """Take one part for `served`, called with it in hand: from within this call when
        the shelf has one, else when a delivery brings one."""
        if self.on_hand == 0:  # (a request waits only while the shelf is empty)
            self.stockouts += 1
            self.recorder.emit(self.env.now, self.scope, "stockout", self.name)
            self._waiting.append(served)
            self._review()
            return
        self.on_hand -= 1
        self._review()
        self.used += 1
        served()

    def withdraw(self, served: Callable[[], None]) -> None:
        """A request still waiting is called off (its repair was abandoned)."""
        self._waiting.remove(served)

    def give_back(self) -> None:
        """Return an unused part (its repair was overtaken by a system swap, or found
        nothing to replace); a request waiting for one gets it."""
        self.used -= 1
        self._put(1)

    def _put(self, quantity: int) -> None:
        """`quantity` parts on the shelf; the waiting requests get theirs, in order (one
        served may give its part back: the next one gets it)."""
        self.on_hand += quantity
        waiting = self._waiting
        while self.on_hand and waiting:
            self.on_hand -= 1
            self.used += 1
            waiting.popleft()()

    def _review(self) -> None:
        position = self.on_hand + self.on_order - len(self._waiting)
        if position <= self.spec.reorder_point:
            self.on_order += self.spec.order_quantity
            self.orders += 1
            Wake(self.env, self._delivered, self.spec.lead_time)

    def _delivered(self, _event: object) -> None:
        quantity = self.spec.order_quantity
        self.on_order -= quantity
        self.recorder.emit(self.env.now, self.scope, "restock", self.name, float(quantity))
        self._put(quantity)
