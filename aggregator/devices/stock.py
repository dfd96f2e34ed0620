"""A stock that buffers production against demand: thermal tanks and hydrogen stores share it.

``level[t+1] = decay * level[t] + inflow[t] + unmet[t]`` between 0 and the capacity; the
level at midnight is the solver's choice (within a range the day's data may pin, e.g. to
resume intraday), and the day ends at least as full as it began, so tomorrow is not robbed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import CHECK_TOLERANCE, FleetSolution, Part


def add_stock(
    part: Part,
    name: str,
    capacity: np.ndarray,
    inflow: cp.Expression,
    decay: np.ndarray | None = None,
) -> cp.Variable:
    """The stock variable (K*n, T+1) with its balance, limits and start range; ``inflow`` (K*n, T)
    is what one interval adds (production less demand plus any unmet slack), ``decay`` the
    share kept per interval (per-row column; None keeps everything)."""
    R, T = part.rows, part.b.T
    level = cp.Variable((R, T + 1), name=f"{part.fleet.kind}_{name}")
    start_lo = part.parameter(f"{name}_start_lo", (R,))
    start_hi = part.parameter(f"{name}_start_hi", (R,))
    kept = level[:, :-1] if decay is None else cp.multiply(decay, level[:, :-1])
    part.constraints += [
        level[:, 1:] == kept + inflow,
        level >= 0,
        level <= capacity,
        level[:, T] >= level[:, 0],
        level[:, 0] >= start_lo,
        level[:, 0] <= start_hi,
    ]
    part.outputs[name] = level
    return level


def free_start(part: Part, name: str, capacity: np.ndarray) -> None:
    """Let the solver choose the start level anywhere in [0, capacity (n,)]."""
    part.set(f"{name}_start_lo", 0.0)
    part.set(f"{name}_start_hi", part.b.rows(capacity))


def start_state(solution: FleetSolution, name: str, key: str) -> dict[str, float]:
    """``{asset.key: start level}`` of the first scenario."""
    start = solution.rows(name, 0)[:, 0]
    return {f"{a}.{key}": float(start[i]) for i, a in enumerate(solution.fleet.ids)}


def restore_start(part: Part, name: str, key: str, ids: Sequence[str], state: Mapping[str, float]) -> None:
    """Pin the start level to a stored state when every asset has one."""
    start = np.array([state.get(f"{a}.{key}", np.nan) for a in ids])
    if np.all(np.isfinite(start)):
        part.set(f"{name}_start_lo", part.b.rows(start))
        part.set(f"{name}_start_hi", part.b.rows(start))


def storage_start_range(decay: float, inflow: np.ndarray, capacity: float) -> tuple[float, float]:
    """Initial levels s0 for which ``s[t+1] = decay * s[t] + inflow[t]`` stays in [0, capacity]
    and ends at least at s0; empty (lo > hi) when there is none."""
    T = len(inflow)
    powers = decay ** np.arange(1, T + 1)
    offsets = np.array([np.sum(inflow[: t + 1] * decay ** np.arange(t, -1, -1)) for t in range(T)])
    lo = float(np.max(np.concatenate([[0.0], -offsets / powers])))
    hi = float(np.min(np.concatenate([[capacity], (capacity - offsets) / powers])))
    # periodic: decay^T s0 + offset_T >= s0
    if powers[-1] < 1:
        hi = min(hi, offsets[-1] / (1 - powers[-1]))
    elif offsets[-1] < -CHECK_TOLERANCE:
        hi = -np.inf
    return lo, hi


def stock_feasible(decay: float, inflow: np.ndarray, capacity: float, tolerance: float) -> bool:
    """Whether some start level keeps the stock within its limits all day (plain numpy)."""
    lo, hi = storage_start_range(decay, inflow, capacity)
    return lo <= hi + tolerance
