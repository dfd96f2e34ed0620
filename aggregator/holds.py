"""Forecast-error cover for a pooled offer: holds on each battery's own limits, raised between solves.

A pooled model cannot afford the park-wide cover rows of the per-device model (headroom per
interval, :func:`aggregator.uncertainty.energy_cover` over windows): they tie every battery's
charge at every scenario and interval together and ECOS's factorisation fills in
(aggregator/README.md "Pooled parks in production"). Even one extra row per battery and
interval made ECOS three times slower per iteration there. So the pooled offer keeps the cover
in rows its batteries already have:

* **energy**: a battery built with ``Build(holds=True)`` narrows its state-of-charge window (a
  lined pool, its lines) by parameters ``hold_up`` / ``hold_down``, the energy (MWh at the
  grid) it must still be able to deliver / take at each interval's end;
* **headroom**: its discharge (charge) limit in an interval is lowered below what the schedule
  discharged (charged) there, and its energy hold raised to sustain the headroom for the
  interval (:meth:`~aggregator.devices.storage.BatteryFleet.hold_headroom`).

Nothing is held at first. After a solve, what the schedule leaves uncovered by the cover rows'
own formulas (:func:`aggregator.uncertainty.uncovered`) is shared among the batteries by the
room each has that way (for energy, the energy it could take the other way; for headroom, its
power less the headroom it has) and held on top of the schedule, and the model is solved again,
:data:`HOLD_ROUNDS` times at most. Holds are hard limits (the penalised alternative is the extra
row ECOS is slow with); if raised holds make the model infeasible, the previous ones are
restored and their schedule kept. The dispatch keeps no holds: delivering the award comes first,
and it reports what it leaves uncovered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from aggregator.devices import Part
from aggregator.errors import SolverFailed

log = logging.getLogger(__name__)

# Tuning knobs (not domain numbers): re-solves with raised holds, and the shortfalls below which
# the schedule counts as covered (window energy in MWh, headroom in MW, any scenario and interval).
HOLD_ROUNDS = 3
HOLD_TOLERANCE_MWH = 0.01
HOLD_TOLERANCE_MW = 0.01


class Holds:
    """The holds of one model's storage parts, and the rounds that raise them."""

    def __init__(self, parts: Sequence[Part], per_scenario: Callable[[Part], sp.csr_matrix]) -> None:
        self.parts = [p for p in parts if "hold_up" in p.params]
        self._per_scenario = per_scenario

    def cover(self, shortfalls: Callable[[], dict[str, np.ndarray | None]], solve: Callable[[], None]) -> int:
        """Raise the holds by what each solve leaves uncovered and solve again; the number of solves."""
        solves = 0
        for _ in range(HOLD_ROUNDS if self.parts else 0):
            before = [{name: param.value.copy() for name, param in p.params.items()} for p in self.parts]
            if not self._raise(shortfalls()):
                break
            solves += 1
            try:
                solve()
            except SolverFailed as exc:
                log.info("raised holds not feasible (%s); keeping the previous ones", exc)
                for p, values in zip(self.parts, before, strict=True):
                    for name, value in values.items():
                        p.params[name].value = value
                solve()
                return solves + 1
        return solves

    def _raise(self, short: dict[str, np.ndarray | None]) -> bool:
        """Hold what the solved schedule leaves short, on top of it; False if nothing more can be held."""
        raised = False
        for direction, other in (("up", "down"), ("down", "up")):
            energy_short = short[f"energy_short_{direction}"]
            if energy_short is not None and np.max(energy_short, initial=0.0) > HOLD_TOLERANCE_MWH:
                # The window that needs most decides; room is the energy a battery could take the other way.
                rooms = [_value(p, f"energy_{other}") for p in self.parts]
                for p, more in zip(
                    self.parts, self._shared(np.max(energy_short, axis=0), rooms), strict=True
                ):
                    p.fleet.hold_energy(p, direction, _value(p, f"energy_{direction}") + more, more > 0)
                    raised = raised or bool(np.any(more > 0))
        up, down = short["short_up"], short["short_down"]
        if max(np.max(up, initial=0.0), np.max(down, initial=0.0)) > HOLD_TOLERANCE_MW:
            rooms = [p.fleet.headroom_room(p) for p in self.parts]
            more_up = self._shared(up, [r[0] for r in rooms])
            more_down = self._shared(down, [r[1] for r in rooms])
            for p, u, d in zip(self.parts, more_up, more_down, strict=True):
                p.fleet.hold_headroom(p, u, d)
                raised = raised or bool(np.any(u > 0) or np.any(d > 0))
        return raised

    def _shared(self, missing: np.ndarray, rooms: list[np.ndarray]) -> list[np.ndarray]:
        """``missing`` (K, T) shared among the parts by their ``rooms`` (K*n, T), each at most its room."""
        total = sum(self._per_scenario(p) @ room for p, room in zip(self.parts, rooms, strict=True))
        out = []
        for p, room in zip(self.parts, rooms, strict=True):
            n = p.fleet.n
            share = room / np.maximum(np.repeat(total, n, axis=0), 1e-9)
            out.append(np.minimum(share * np.repeat(np.maximum(missing, 0.0), n, axis=0), room))
        return out


def _value(p: Part, name: str) -> np.ndarray:
    """A part's solved energy_up or energy_down (K*n, T), never negative."""
    return np.maximum(np.asarray(getattr(p, name).value, dtype=float), 0.0)
