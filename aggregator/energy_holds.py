"""Window-energy cover for a pooled offer: holds on each battery's own limits, raised between solves.

A pooled model cannot afford the park-wide cover rows of :func:`aggregator.uncertainty.energy_cover`:
they tie every battery's charge at every scenario and interval to 2- and 4-hour window sums and
ECOS's factorisation fills in (aggregator/README.md "Pooled parks in production"). Even one
extra row per battery and interval made ECOS three times slower per iteration there. So the
pooled offer keeps the energy in rows it already has: a battery built with
``Build(holds=True)`` narrows its state-of-charge window (a lined pool, its lines) by
parameters ``hold_up`` and ``hold_down``: energy (MWh at the grid) it must still be able to
deliver or take at each interval's end.

The holds start at zero. After a solve, what the schedule leaves uncovered, by the cover rows'
own formulas (:func:`aggregator.uncertainty.uncovered`), is added to what each battery holds in
that schedule, shared by the room it has left that way (the energy it could take the other
way), and the model is solved again, :data:`HOLD_ROUNDS` times at most. Holds are hard limits
(the penalised alternative is the extra row ECOS is slow with); if raised holds make the model
infeasible, the previous ones are restored and kept. The dispatch keeps no holds: delivering
the award comes first, and it reports what it leaves uncovered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from aggregator.devices import Part
from aggregator.errors import SolverFailed

log = logging.getLogger(__name__)

# Tuning knobs (not domain numbers): re-solves with raised holds, and the window energy short
# (MWh, any window, scenario and interval) below which the schedule counts as covered.
HOLD_ROUNDS = 3
HOLD_TOLERANCE_MWH = 0.01
DIRECTIONS = (("up", "energy_up", "energy_down"), ("down", "energy_down", "energy_up"))


class EnergyHolds:
    """The holds of one model's storage parts, and the rounds that raise them."""

    def __init__(self, parts: Sequence[Part], per_scenario: Callable[[Part], sp.csr_matrix]) -> None:
        self.parts = [p for p in parts if "hold_up" in p.params]
        self._per_scenario = per_scenario

    def cover(self, shortfalls: Callable[[], dict[str, np.ndarray | None]], solve: Callable[[], None]) -> int:
        """Raise the holds by what each solve leaves uncovered and solve again; the number of solves."""
        solves = 0
        for _ in range(HOLD_ROUNDS if self.parts else 0):
            previous = self._raise(shortfalls())
            if previous is None:
                break
            solves += 1
            try:
                solve()
            except SolverFailed as exc:
                log.info("raised energy holds not feasible (%s); keeping the previous ones", exc)
                for p, values in zip(self.parts, previous, strict=True):
                    for direction, value in zip(("up", "down"), values, strict=True):
                        p.params[f"hold_{direction}"].value = value
                solve()
                return solves + 1
        return solves

    def _raise(self, short: dict[str, np.ndarray | None]) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Raise the holds by the worst window's shortfall per scenario and interval, on top of what
        each battery holds in the solved schedule; the holds before, None when nothing is short."""
        previous = [
            (p.params["hold_up"].value.copy(), p.params["hold_down"].value.copy()) for p in self.parts
        ]
        raised = False
        for direction, same, other in DIRECTIONS:
            energy_short = short[f"energy_short_{direction}"]
            if energy_short is None or float(np.max(energy_short, initial=0.0)) <= HOLD_TOLERANCE_MWH:
                continue
            missing = np.max(energy_short, axis=0)  # (K, T): the window that needs most decides
            rooms = [_value(p, other) for p in self.parts]
            total = sum(self._per_scenario(p) @ room for p, room in zip(self.parts, rooms, strict=True))
            for p, room in zip(self.parts, rooms, strict=True):
                n = p.fleet.n
                share = room / np.maximum(np.repeat(total, n, axis=0), 1e-9)
                more = np.minimum(share * np.repeat(missing, n, axis=0), room)
                hold = p.params[f"hold_{direction}"]
                hold.value = np.where(more > 0, np.maximum(hold.value, _value(p, same) + more), hold.value)
            raised = True
        return previous if raised else None


def _value(p: Part, name: str) -> np.ndarray:
    """A part's solved energy_up or energy_down (K*n, T), never negative."""
    return np.maximum(np.asarray(getattr(p, name).value, dtype=float), 0.0)
