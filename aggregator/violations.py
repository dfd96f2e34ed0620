"""Constraint families the answer (or the data) breaks, named by device or grid node."""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices import Part
from aggregator.errors import InfeasibleError, Violation
from aggregator.portfolio import Grid

# Slack below this is solver noise, not a violation.
VIOLATION_TOLERANCE = 1e-3


def check_bounds(parts: Sequence[Part], starts_h: np.ndarray) -> None:
    """Lower bounds above upper bounds make the model infeasible before any solve: name them."""
    violations = []
    for p in parts:
        for family, lo, hi in p.bounds:
            gap = lo.value - hi.value
            bad = gap > VIOLATION_TOLERANCE
            if np.any(bad):
                row, t = np.argwhere(bad)[0]
                asset = p.fleet.ids[row % p.fleet.n]
                violations.append(Violation(asset, family, float(gap.max()), "MW", _hhmm(starts_h[t])))
    if violations:
        raise InfeasibleError("the park model", violations)


def slack_left(
    parts: Sequence[Part],
    grid_slacks: Sequence[tuple[str, str, cp.Variable, int]],
    grid: Grid,
    K: int,
    starts_h: np.ndarray,
    targets: bool,
) -> list[Violation]:
    """Slack left in the answer, per device (or grid node) and constraint family; with
    ``targets`` the missed planning targets instead."""
    out = []
    for p in parts:
        f = p.fleet
        for soft in p.softs:
            if soft.target != targets:
                continue
            value = np.maximum(np.asarray(soft.slack.value), 0.0) * soft.scale
            per_row = value.sum(axis=1) if value.ndim == 2 else value
            for i in range(f.n):
                rows = np.arange(K) * f.n + i
                amount = float(per_row[rows].max())
                if amount > VIOLATION_TOLERANCE:
                    first = 0
                    if value.ndim == 2:
                        first = int(np.flatnonzero(value[rows].max(axis=0) > VIOLATION_TOLERANCE / 10)[0])
                    out.append(Violation(f.ids[i], soft.family, amount, soft.unit, _hhmm(starts_h[first])))
    for kind, family, slack, per in grid_slacks if not targets else []:
        value = np.maximum(np.asarray(slack.value), 0.0)
        for j in range(per):
            rows = np.arange(K) * per + j
            peak = value[rows].max(axis=0)
            if peak.max() > VIOLATION_TOLERANCE:
                name = grid.nodes[j] if kind == "node" else f"grid connection {grid.connection}"
                first = int(np.flatnonzero(peak > VIOLATION_TOLERANCE)[0])
                out.append(Violation(name, family, float(peak.max()), "MW", _hhmm(starts_h[first])))
    return out


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
