"""What a dispatch's notes say about its deviations, demand-response events and reserves.

Each note names a span of intervals and the reason a trader needs: the award beyond the park's
reach, assets at their power limits, storage without the energy, or headroom short.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aggregator.inputs import DayInputs
from aggregator.solution import Solution
from aggregator.uncertainty import ENERGY_WINDOWS_H

DEVIATION_TOLERANCE_MW = 1e-3


def _ranges(mask: np.ndarray, inputs: DayInputs) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _span(inputs: DayInputs, start: int, end: int) -> str:
    last = inputs.starts[end - 1] + pd.Timedelta(minutes=inputs.interval_minutes)
    first = inputs.starts[start]
    return f"{first:%H:%M}-{'24:00' if last.date() > first.date() else f'{last:%H:%M}'}"


def _with_headroom(solution: Solution, direction: str, t0: int, t1: int) -> tuple[list[str], np.ndarray]:
    """Flexible assets with power headroom left in ``direction`` somewhere in intervals [t0, t1),
    and the park's headroom in that direction per interval (all of them together, MW)."""
    free, total = [], np.zeros(t1 - t0)
    for fs in solution.fleets:
        head = fs.up if direction == "up" else fs.down
        if head is not None:
            value = head[0][:, t0:t1]
            free += [fs.fleet.ids[i] for i in range(fs.fleet.n) if value[i].max() > 1e-3]
            total += value.sum(axis=0)
    return free, total


def deviation_notes(solution: Solution, inputs: DayInputs, deviation: np.ndarray) -> list[str]:
    notes = []
    for sign, direction, words in ((-1, "up", "short of"), (1, "down", "above")):
        mask = sign * deviation > DEVIATION_TOLERANCE_MW
        for t0, t1 in _ranges(mask, inputs):
            worst = float(np.max(np.abs(deviation[t0:t1])))
            free, room = _with_headroom(solution, direction, t0, t1)
            beyond = float(np.max(np.abs(deviation[t0:t1]) - room))
            if beyond > DEVIATION_TOLERANCE_MW:
                reason = (
                    f"the award is beyond the park's reach: the headroom all its flexible assets have left "
                    f"would still leave it {beyond:.3f} MW {words} the award"
                )
            elif not free:
                reason = "every flexible asset is at its power limit in that direction"
            else:
                reason = (
                    f"{', '.join(free[:4])}{', ...' if len(free) > 4 else ''} still have power but not the energy: "
                    "storage must end the day at its initial charge and daily energy limits bind"
                )
            notes.append(
                f"{_span(inputs, t0, t1)}: set-points are {words} the award by up to {worst:.3f} MW; {reason}"
            )
    return notes


def demand_response_notes(
    inputs: DayInputs, award: dict[str, np.ndarray], deviation: np.ndarray
) -> list[str]:
    """One note per demand-response event executed: its span, direction and MW, and how much the
    set-points deliver of it."""
    dr = award["demand_response_mw"]
    notes = []
    for sign, direction in ((1, "peak cut"), (-1, "valley fill")):
        for t0, t1 in _ranges(sign * dr > DEVIATION_TOLERANCE_MW, inputs):
            asked = float(np.max(np.abs(dr[t0:t1])))
            short = float(np.max(np.maximum(-sign * deviation[t0:t1], 0.0)))
            delivered = "in full" if short <= DEVIATION_TOLERANCE_MW else f"short by up to {short:.3f} MW"
            notes.append(
                f"{_span(inputs, t0, t1)}: demand response {direction} of {asked:.3f} MW executed on top of the "
                f"energy award ({delivered})"
            )
    return notes


def reserve_notes(solution: Solution, inputs: DayInputs) -> list[str]:
    notes = []
    if solution.regulation is not None:
        short = solution.regulation.short_mw
        for t0, t1 in _ranges(short > DEVIATION_TOLERANCE_MW, inputs):
            notes.append(
                f"{_span(inputs, t0, t1)}: batteries hold only part of the awarded regulation (short by up to "
                f"{short[t0:t1].max():.3f} MW)"
            )
    for direction, short in (("up", solution.short_up[0]), ("down", solution.short_down[0])):
        for t0, t1 in _ranges(short > DEVIATION_TOLERANCE_MW, inputs):
            notes.append(
                f"{_span(inputs, t0, t1)}: {direction}ward headroom for the forecast reserve is short by up to "
                f"{short[t0:t1].max():.3f} MW"
            )
    for direction, energy in (("up", solution.energy_short_up), ("down", solution.energy_short_down)):
        for w, hours in enumerate(ENERGY_WINDOWS_H if energy is not None else ()):
            short = energy[w, 0]
            for t0, t1 in _ranges(short > DEVIATION_TOLERANCE_MW * hours, inputs):
                notes.append(
                    f"{_span(inputs, t0, t1)}: energy for a {hours:g} h forecast error {direction}ward (windows ending "
                    f"then) is short by up to {short[t0:t1].max():.3f} MWh"
                )
    return notes
