"""Forecast uncertainty the schedule must stay deliverable for: per interval and over multi-hour windows.

* **Power** (``reserve_needs``): in every interval, headroom up and down for the P10-P90 range
  of load and renewables (ranges added across series: the cautious choice when only
  marginal quantiles are known).
* **Energy** (``energy_needs``): a forecast error rarely lasts one interval; a load above
  its median for four hours drains a battery four times as far. Error paths are built from
  the quantiles with an interval-to-interval correlation ``rho = exp(-dt / ERROR_MEMORY_H)``
  (AR(1)-like, as forecast errors of load, wind and sun persist for hours): the P90 energy
  of the error summed over a window of L hours is ``z90 * sqrt(sum_ij s_i s_j rho^|i-j|) * dt``
  with ``s_i`` the interval's P50-P90 half range divided by ``z90``. Series are added (as
  before). The model then keeps, for every window ending at each interval, enough *energy*
  headroom: what storage could still deliver (``Part.energy_up``/``energy_down``: its
  state of charge above the floor or below the ceiling at the window's end) plus the other
  fleets' power headroom over the window. A battery is therefore never counted for energy
  it will not have; the shortfall is paid at the reserve penalty per MWh and reported as
  energy at risk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from aggregator.devices import Build, Part, fleets_for
from aggregator.inputs import DayInputs
from aggregator.solution import frozen
from infra.scenario import Scenario

RISK_LOW, RISK_HIGH = 0.1, 0.9  # the forecast range the schedule must stay deliverable for
# Tuning knobs (not domain numbers): windows over which energy is covered, and how long a
# forecast error persists (e-folding time of its correlation). 3 h: errors of load and
# renewables outlast a weather front's passage but not a day.
ENERGY_WINDOWS_H = (2.0, 4.0)
ERROR_MEMORY_H = 3.0


def reserve_needs(scenario: Scenario, inputs: DayInputs) -> tuple[np.ndarray, np.ndarray]:
    """Headroom (MW) the schedule must keep up and down for the P10-P90 range of the forecasts.

    Consumption above its median or generation below it needs upward headroom, and the
    opposite downward. Heat and compute demand are buffered by their own tank and deferral,
    so their fleets declare no uncertainty.
    """
    up, down = _ranges(scenario, inputs)
    return up.sum(axis=0), down.sum(axis=0)


def _ranges(scenario: Scenario, inputs: DayInputs) -> tuple[np.ndarray, np.ndarray]:
    """Per uncertain series, its upward and downward P10-P90 half range (S, T)."""
    up, down = [np.zeros(inputs.T)], [np.zeros(inputs.T)]
    for fleet in fleets_for(scenario):
        for sid in fleet.forecast_series() if fleet.uncertainty else ():
            med = inputs.median(sid)
            above = inputs.quantile(sid, RISK_HIGH) - med
            below = med - inputs.quantile(sid, RISK_LOW)
            up.append(above if fleet.uncertainty > 0 else below)
            down.append(below if fleet.uncertainty > 0 else above)
    return np.stack(up), np.stack(down)


def window_energy(
    half_ranges: np.ndarray, dt_h: float, window_h: float, memory_h: float = ERROR_MEMORY_H
) -> np.ndarray:
    """P90 energy (MWh) of the error summed over the window of ``window_h`` ending at each interval (T,).

    ``half_ranges`` (S, T) are P50-P90 half ranges per series, ``z90`` standard deviations
    each; series add up (comonotone), intervals correlate with ``exp(-lag dt / memory_h)``.
    The P90 of the sum is ``z90`` of its deviation: ``sqrt(h' R h) * dt`` (fully correlated:
    the half ranges simply add up).
    """
    T = half_ranges.shape[1]
    L = max(1, round(window_h / dt_h))
    sigma = half_ranges.sum(axis=0)  # series comonotone: their ranges add
    lags = np.abs(np.subtract.outer(np.arange(L), np.arange(L)))
    rho = np.exp(-lags * dt_h / memory_h)
    out = np.zeros(T)
    for end in range(T):
        s = sigma[max(0, end - L + 1) : end + 1]
        k = len(s)
        out[end] = np.sqrt(max(s @ rho[:k, :k] @ s, 0.0)) * dt_h
    return out


def energy_needs(scenario: Scenario, inputs: DayInputs) -> tuple[np.ndarray, np.ndarray]:
    """Energy (MWh) to cover up and down, per window (W, T) of :data:`ENERGY_WINDOWS_H`."""
    up, down = _ranges(scenario, inputs)
    return (
        np.stack([window_energy(up, inputs.dt_h, w) for w in ENERGY_WINDOWS_H]),
        np.stack([window_energy(down, inputs.dt_h, w) for w in ENERGY_WINDOWS_H]),
    )


def window_sums(T: int, window_h: float, dt_h: float) -> sp.csr_matrix:
    """(T, T): column t sums the intervals of the window of ``window_h`` ending at t, (t-L, t]
    (cut at midnight): ``x @ window_sums(...)`` for the cover rows and for the check after a solve."""
    L = max(1, round(window_h / dt_h))
    return sp.csr_matrix(np.triu(np.tril(np.ones((T, T)), L - 1)))


@dataclass
class EnergyCover:
    """The window-energy rows of one model: parameters to fill, shortfalls to read and penalise."""

    need_up: cp.Parameter  # (W*K, T) MWh
    need_down: cp.Parameter
    short_up: cp.Variable  # (W*K, T) MWh, >= 0
    short_down: cp.Variable
    constraints: list[cp.Constraint]


def energy_cover(
    parts: Sequence[Part], b: Build, per_scenario: Callable[[Part], sp.csr_matrix]
) -> EnergyCover | None:
    """Window-energy rows: storage energy at the window's end plus others' headroom over it."""
    storage = [p for p in parts if p.energy_up is not None]
    if not storage:
        return None
    W, K, T, dt = len(ENERGY_WINDOWS_H), b.K, b.T, b.dt_h
    need_up = cp.Parameter((W * K, T), nonneg=True, name="energy_need_up")
    need_down = cp.Parameter((W * K, T), nonneg=True, name="energy_need_down")
    need_up.value = np.zeros((W * K, T))
    need_down.value = np.zeros((W * K, T))
    short_up = cp.Variable((W * K, T), nonneg=True, name="energy_short_up")
    short_down = cp.Variable((W * K, T), nonneg=True, name="energy_short_down")
    stored_up = sum(per_scenario(p) @ p.energy_up for p in storage)
    stored_down = sum(per_scenario(p) @ p.energy_down for p in storage)
    others = [p for p in parts if p.energy_up is None]
    power_up = [per_scenario(p) @ p.up for p in others if p.up is not None]
    power_down = [per_scenario(p) @ p.down for p in others if p.down is not None]
    cons = []
    # The other fleets' headroom per scenario and interval as one small variable, so the
    # window sums below stay K x T x L entries whatever the number of devices.
    head_up = cp.Variable((K, T), nonneg=True, name="energy_cover_head_up")
    head_down = cp.Variable((K, T), nonneg=True, name="energy_cover_head_down")
    cons += [head_up <= sum(power_up)] if power_up else [head_up == 0]
    cons += [head_down <= sum(power_down)] if power_down else [head_down == 0]
    for w, hours in enumerate(ENERGY_WINDOWS_H):
        window = window_sums(T, hours, dt)
        rows = slice(w * K, (w + 1) * K)
        up = stored_up + head_up @ window * dt
        down = stored_down + head_down @ window * dt
        cons += [up + short_up[rows] >= need_up[rows], down + short_down[rows] >= need_down[rows]]
    return EnergyCover(need_up, need_down, short_up, short_down, cons)


def shortfalls(
    up: np.ndarray, down: np.ndarray, energy_up: np.ndarray | None, energy_down: np.ndarray | None
) -> dict[str, np.ndarray | None]:
    """A solution's shortfalls, read-only and never negative: headroom (K, T) MW, window energy
    (W, K, T) MWh (None: the park has no storage to cover it)."""
    K, T = np.shape(up)

    def clean(v: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        return None if v is None else frozen(np.maximum(np.asarray(v, dtype=float), 0.0).reshape(shape))

    W = len(ENERGY_WINDOWS_H)
    return {
        "short_up": clean(up, (K, T)),
        "short_down": clean(down, (K, T)),
        "energy_short_up": clean(energy_up, (W, K, T)),
        "energy_short_down": clean(energy_down, (W, K, T)),
    }


def uncovered(
    parts: Sequence[Part],
    per_scenario: Callable[[Part], sp.csr_matrix],
    need_up: np.ndarray,
    need_down: np.ndarray,
    energy_need_up: np.ndarray | None,
    energy_need_down: np.ndarray | None,
    dt_h: float,
) -> dict[str, np.ndarray | None]:
    """What a schedule solved without the cover rows (a pooled park) leaves uncovered, from its
    values by the rows' own formulas: headroom short (K, T) MW up and down, and window energy
    short (W, K, T) MWh (None without storage), so the offer and the dispatch still report it."""

    def summed(name: str, on: Sequence[Part]) -> np.ndarray:
        """The parts' ``name`` (up, down, energy_up, energy_down) added up per scenario (K, T)."""
        out = np.zeros_like(need_up)
        for p in on:
            value = getattr(p, name)
            if value is not None:
                out = out + per_scenario(p) @ np.asarray(value.value, dtype=float)
        return out

    short_up = np.maximum(need_up - summed("up", parts), 0.0)
    short_down = np.maximum(need_down - summed("down", parts), 0.0)
    storage = [p for p in parts if p.energy_up is not None]
    if not storage:
        return shortfalls(short_up, short_down, None, None)
    others = [p for p in parts if p.energy_up is None]
    energy = []
    for direction, need in (("up", energy_need_up), ("down", energy_need_down)):
        stored, head = summed(f"energy_{direction}", storage), summed(direction, others)
        need = np.zeros((len(ENERGY_WINDOWS_H), need_up.shape[1])) if need is None else np.maximum(need, 0.0)
        head = np.maximum(head, 0.0)
        T = head.shape[1]
        energy.append(
            np.stack(
                [
                    np.maximum(need[w][None, :] - stored - (head @ window_sums(T, hours, dt_h)) * dt_h, 0.0)
                    for w, hours in enumerate(ENERGY_WINDOWS_H)
                ]
            )
        )
    return shortfalls(short_up, short_down, energy[0], energy[1])
