"""Pooled batteries: one virtual battery per cluster whose every schedule splits into feasible member schedules.

Member i takes the share ``a_i`` of every virtual set-point, so its state of charge moves by
``a_i`` times the virtual change; the virtual battery is limited by the tightest member per
share (power, room below and above the start) and counts its charge with the lowest
efficiencies against its floor and with the highest against its ceiling
(:class:`VirtualBatteryFleet`). Members whose starts sit at the same place in their windows
lose nothing to the shares; members whose starts differ would leave part of their windows
unused (the room below the start of the emptiest member bounds the whole pool).

So a cluster whose starts differ by more than :data:`REALIGN_SPREAD` of the window
*realigns* (:func:`realignment`): in its first intervals, the members above the pool's common
level discharge into those below (net zero at the grid, each at its own power and
efficiencies) until every member sits at the same fraction ``sigma0`` of its window; the
virtual battery, idle meanwhile, then has the members' whole summed window with shares in
proportion to their windows. The day's last intervals realign back from a level ``sigma_end``
(a little above ``sigma0``, to pay the transfers' losses) to every member's own start, so each
ends the day where it began if the virtual battery does. The transfers are fixed parts of the
split (:class:`~aggregator.devices.cluster.Cluster` offsets), their wear and losses are
counted in every member's schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from aggregator.devices.base import Build, FleetSolution, Part, Profiles, Soft, param
from aggregator.devices.calls import Budgets
from aggregator.devices.cluster import Cluster, Resolution, Virtual, bins, group, identity
from aggregator.devices.storage import BatteryFleet

# Spread of start positions (fraction of the window) above which a cluster realigns: below
# it, the transfers' idle intervals and losses cost more than the unused window.
REALIGN_SPREAD = 0.05
# Longest realignment (hours) at each end of the day; a cluster that would need longer keeps
# its members' own starts.
MAX_REALIGN_H = 2.0
# Lines kept per bound of a pool (more are replaced by chords inside them).
PIECES = 3


def envelope(intercept: np.ndarray, slope: np.ndarray, span: float, pieces: int = PIECES) -> np.ndarray:
    """Lines (pieces, 2) of intercept and slope whose minimum is at most ``min_i intercept_i +
    slope_i x`` for every x in [0, span]; equal to it if at most ``pieces`` lines of it are active
    there, else chords of it between its breakpoints (which lie below a concave function)."""
    order = np.lexsort((intercept, -slope))  # slope descending: the lines in order of x
    hull: list[int] = []

    def cross(a: int, b: int) -> float:  # x where lines a and b meet (slope_a > slope_b)
        return (intercept[b] - intercept[a]) / (slope[a] - slope[b])

    for i in order:
        if hull and slope[hull[-1]] == slope[i]:
            continue  # same slope, higher intercept: never the minimum
        while len(hull) >= 2 and cross(hull[-2], i) <= cross(hull[-2], hull[-1]):
            hull.pop()
        hull.append(i)
    starts = [-np.inf, *(cross(a, b) for a, b in pairwise(hull))]
    ends = [*starts[1:], np.inf]
    active = [h for h, s, e in zip(hull, starts, ends, strict=True) if e >= 0 and s <= span]
    lines = np.array([[intercept[i], slope[i]] for i in active])
    if len(lines) > pieces:
        breaks = np.array([0.0, *(cross(a, b) for a, b in pairwise(active)), span])
        knots = np.unique(breaks[np.linspace(0, len(breaks) - 1, pieces + 1).round().astype(int)])
        values = np.min(intercept[:, None] + slope[:, None] * knots[None, :], axis=0)
        chords = np.diff(values) / np.maximum(np.diff(knots), 1e-12)
        lines = np.column_stack([values[:-1] - chords * knots[:-1], chords])
    return np.vstack([lines, np.full((pieces - len(lines), 2), np.nan)])  # NaN: no such line


@dataclass(frozen=True, eq=False, kw_only=True)
class VirtualBatteryFleet(BatteryFleet):
    """Pools of batteries. A *lined* pool (``lines[i]`` not all zero) keeps its members inside
    their own windows by lines in its cumulative charge C and discharge D (MWh at the grid):
    ``D <= floor``, ``-D <= ceiling``, at the end of the day ``D <= end`` (a target) and
    ``-D <= end_max`` (each the minimum of up to ``PIECES`` lines ``intercept + slope C``, NaN
    where a pool has fewer, :func:`envelope`).
    Other pools (members of one efficiency around their own starts) use the plain window. A
    realigning pool (``idle_intervals`` > 0) is idle at both ends of the day."""

    idle_intervals: np.ndarray = field(metadata=param(dtype=int))
    lined: np.ndarray = field(metadata=param(dtype=bool))
    lines: np.ndarray  # (n, 4, PIECES, 2): floor, ceiling, end, end_max
    # How far (MWh at the grid) a pool may end short of its end line: unlimited for a target,
    # limited for a realigning pool, whose fixed last transfers start from its end level.
    end_short_max: np.ndarray = field(metadata=param())

    def flows(self, part: Part) -> tuple[cp.Expression, cp.Expression, cp.Expression]:
        """A pool's variables are its cumulative charge C and discharge D (MWh at the grid by each
        interval's end), which its lines read; charge, discharge and state of charge are
        expressions of them, so a pool has no per-interval variables or balance rows beyond
        those (ECOS pays for every row on every pool, scenario and interval). No balance, so no
        value of stored energy: pools offer no flexibility bands (a pooled park's offer is an
        energy offer). A fleet with no lined pool (members of one efficiency, as in a catalogue)
        keeps the plain balance: its window rows would read two variables each, and ECOS took
        30 % longer on the catalogue portfolio's 114 pools that way."""
        b = part.b
        if b.band_scenario is not None:
            raise ValueError(
                "pooled batteries offer no flexibility bands: model a pooled park with reserves=False"
            )
        if not self.lined.any():
            return super().flows(part)
        charged = cp.Variable((part.rows, b.T), name="battery_charged")
        drawn = cp.Variable((part.rows, b.T), name="battery_discharged")
        step = (sp.eye(b.T) - sp.eye(b.T, k=1)).tocsc()  # (X @ step)[:, t] = X_t - X_{t-1}
        c = part.bounded("charge", "charge power limits", charged @ step / b.dt_h)
        d = part.bounded("discharge", "discharge power limits", drawn @ step / b.dt_h)
        eta_c, eta_d = b.column(self.charge_efficiency), b.column(self.discharge_efficiency)
        start = cp.reshape(part.params["soc0"], (part.rows, 1), order="C")
        soc = cp.hstack([start, start + cp.multiply(eta_c, charged) - cp.multiply(1 / eta_d, drawn)])
        part.outputs["charged"], part.outputs["drawn"] = charged, drawn
        return c, d, soc

    def soc_limits(self, part: Part, soc: cp.Expression) -> list[cp.Constraint]:
        plain = np.flatnonzero(~part.b.rows(self.lined))
        return self.window(part, soc, plain) if len(plain) else []

    def build(self, b: Build) -> Part:
        part = super().build(b)
        rows = np.flatnonzero(b.rows(self.lined))
        if len(rows) == 0:
            return part
        charged, drawn = part.outputs["charged"][rows], part.outputs["drawn"][rows]
        short = cp.Variable(part.rows, nonneg=True, name="battery_pool_end_short")  # used on lined rows
        lines = b.rows(self.lines)[rows]  # (L, 4, PIECES, 2)
        cons: list[cp.Constraint] = []
        end_short = short[rows]
        limited = np.flatnonzero(np.isfinite(b.rows(self.end_short_max)[rows]))
        if len(limited):
            cons.append(end_short[limited] <= b.rows(self.end_short_max)[rows][limited])
        held_up, held_down = (
            (drawn, -drawn)
            if not b.holds
            else (
                drawn + part.params["hold_up"][rows],
                -drawn + part.params["hold_down"][rows],
            )
        )
        for j in range(lines.shape[2]):
            floor, ceiling, end, end_max = (lines[:, k, j, :] for k in range(4))
            for line, lhs in ((floor, held_up), (ceiling, held_down)):
                on = np.flatnonzero(np.isfinite(line[:, 0]))
                if len(on):
                    cons.append(lhs[on] <= line[on, :1] + cp.multiply(line[on, 1:], charged[on]))
            for line, lhs in ((end, drawn[:, -1] - end_short), (end_max, -drawn[:, -1])):
                on = np.flatnonzero(np.isfinite(line[:, 0]))
                if len(on):
                    cons.append(lhs[on] <= line[on, 0] + cp.multiply(line[on, 1], charged[on, -1]))
        part.constraints += cons
        part.softs.append(Soft("pooled end-of-day charge below its initial level", short, "MWh", target=True))
        # What a lined pool could still deliver (take) is its members' room under their lines, not
        # the virtual charge, which counts every member at the pool's lowest efficiencies.
        plain = np.flatnonzero(~b.rows(self.lined))
        for name, line, sign in (("energy_up", 0, -1), ("energy_down", 1, 1)):
            virtual = getattr(part, name)
            room = _placed(part, rows, _line_room(lines[:, line], charged, sign * drawn))
            setattr(part, name, room + _placed(part, plain, virtual[plain]) if len(plain) else room)
        if b.band_scenario is None:  # headroom sustained from the same room (bands redefine it)
            p_max = b.column(self.power_mw)
            part.up = cp.minimum(p_max - part.power, part.energy_up / b.dt_h)
            part.down = cp.minimum(p_max + part.power, part.energy_down / b.dt_h)
        return part

    def _sustained(
        self, solution: FleetSolution, scenario: int, hours: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """A realigning pool has no headroom while its members realign."""
        up, down = super()._sustained(solution, scenario, hours)
        active = self._active(up.shape[1])
        return up * active, down * active

    def call_budgets(self, solution: FleetSolution, scenario: int, direction: str) -> Budgets:
        """A lined pool's room is its members' lines in its cumulative charge C and discharge D:
        a call adds to D (peak cut) or to C (valley fill) from its interval on."""
        plain = super().call_budgets(solution, scenario, direction)
        if not self.lined.any():
            return plain
        C, D = solution.rows("charged", scenario), solution.rows("drawn", scenario)
        lined = self.lined[:, None]
        if direction == "peak_cut":
            room = np.where(lined, _lowest(self.lines[:, 0], C) - D, plain.remaining_mwh)
            end = _lowest(self.lines[:, 2], C[:, -1:])[:, 0] + self.end_short_max - D[:, -1]
        else:
            room = np.where(lined, _lowest(self.lines[:, 1], C, D), plain.remaining_mwh)
            end = _lowest(self.lines[:, 3], C[:, -1:], D[:, -1:])[:, 0]
        end = np.where(self.lined, end, np.inf)
        return Budgets.state(room) + Budgets.daily(np.nan_to_num(end, nan=np.inf), C.shape[1])

    def _active(self, T: int) -> np.ndarray:
        """1 where a pool may move, 0 in a realigning pool's idle first and last intervals (n, T)."""
        active = np.ones((self.n, T))
        for i, k in enumerate(self.idle_intervals):
            if k > 0:
                active[i, :k] = active[i, T - k :] = 0.0
        return active

    def load(self, part: Part, profiles: Profiles) -> None:
        super().load(part, profiles)
        b = part.b
        p_max = b.rows(self.power_mw[:, None] * self._active(b.T))
        part.set("charge_hi", p_max)
        part.set("discharge_hi", p_max)
        # A lined pool's end-of-day target is one of its lines; its virtual charge gets the level a
        # whole day of discharge would leave, never binding (a huge number instead stalled ECOS).
        emptied = self.soc_initial - self.power_mw * b.T * b.dt_h / self.discharge_efficiency
        part.set("soc_end", b.rows(np.where(self.lined, emptied, self.soc_initial)))


def _line_room(lines: np.ndarray, charged: cp.Variable, drawn: cp.Expression) -> cp.Expression:
    """The least room ``intercept + slope C + drawn`` over each pool's lines (L, PIECES, 2); a
    missing line (NaN) repeats the first, which every pool has."""
    lines = np.where(np.isnan(lines), lines[:, :1], lines)
    rooms = [lines[:, j, :1] + cp.multiply(lines[:, j, 1:], charged) + drawn for j in range(lines.shape[1])]
    return cp.minimum(*rooms) if len(rooms) > 1 else rooms[0]


def _placed(part: Part, rows: np.ndarray, values: cp.Expression) -> cp.Expression:
    """``values`` (one per row of ``rows``) at those rows of a (K*n, T) expression, zero elsewhere."""
    place = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(part.rows, len(rows)))
    return place @ values


def _lowest(lines: np.ndarray, C: np.ndarray, D: np.ndarray | None = None) -> np.ndarray:
    """Per pool, the lowest of its lines (n, PIECES, 2) at cumulative charge ``C`` (n, T): a bound
    on D; given the discharge ``D``, instead the slack ``a + s C + D`` of the lines ``-D <= a + s C``
    (slopes below zero): what less discharge or more charge may still add (a grid MWh takes at
    most one of it, less discharge exactly one, more charge ``-s`` < 1: the cautious side)."""
    a, s = lines[:, :, 0][:, :, None], lines[:, :, 1][:, :, None]
    if D is not None:
        value = np.where(s < 0, a + s * C[:, None, :] + D[:, None, :], np.inf)
    else:
        value = a + s * C[:, None, :]
    return np.where(np.isnan(value), np.inf, value).min(axis=1)


def _moves(
    frm: np.ndarray, to: np.ndarray, window: np.ndarray, eta_c: np.ndarray, eta_d: np.ndarray
) -> np.ndarray:
    """Grid injection (MWh) that moves each member from fraction ``frm`` to ``to`` of its window."""
    stored = (to - frm) * window
    return np.where(stored > 0, -stored / eta_c, -stored * eta_d)


def _level(net: Callable[[float], float], lo: float, hi: float) -> float:
    """The root of a monotone ``net`` on [lo, hi] (bisection)."""
    rising = net(hi) > net(lo)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (net(mid) > 0) == rising:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def realignment(
    f: BatteryFleet, m: np.ndarray, T: int, dt_h: float
) -> tuple[float, float, int, np.ndarray] | None:
    """Common start level, end level, intervals and the members' transfers (m, T) of a cluster
    (None if it needs longer than :data:`MAX_REALIGN_H` at either end)."""
    window = (f.soc_max - f.soc_min)[m]
    pos = (f.soc_initial[m] - f.soc_min[m]) / window
    eta_c, eta_d = f.charge_efficiency[m], f.discharge_efficiency[m]
    lo, hi = float(pos.min()), float(pos.max())
    sigma0 = _level(lambda s: float(_moves(pos, np.full_like(pos, s), window, eta_c, eta_d).sum()), lo, hi)
    sigma_end = _level(lambda s: float(_moves(np.full_like(pos, s), pos, window, eta_c, eta_d).sum()), lo, hi)
    first = _moves(pos, np.full_like(pos, sigma0), window, eta_c, eta_d)
    last = _moves(np.full_like(pos, sigma_end), pos, window, eta_c, eta_d)
    k = max(1, int(np.ceil(np.max(np.maximum(np.abs(first), np.abs(last)) / (f.power_mw[m] * dt_h)) - 1e-9)))
    if k * dt_h > MAX_REALIGN_H:
        return None
    # Zero-sum to the last bit: the member with the largest transfer takes the rounding.
    for moves in (first, last):
        moves[np.argmax(np.abs(moves))] -= moves.sum()
    transfers = np.zeros((len(m), T))
    transfers[:, :k] = (first / (k * dt_h))[:, None]
    transfers[:, T - k :] = (last / (k * dt_h))[:, None]
    return sigma0, sigma_end, k, transfers


def pool_batteries(f: BatteryFleet, T: int, dt_h: float, resolution: Resolution) -> Virtual:
    """Batteries at one node in the same bins of power-to-energy ratio, round-trip efficiency
    and initial charge; clusters whose starts differ realign (:func:`realignment`)."""
    energy = f.energy_mwh
    frac0 = f.soc_initial_fraction
    # Bins of what the inner approximation loses most on; the state-of-charge window, the
    # split between the two efficiencies and wear are absorbed exactly or by the envelope.
    shape = [f.power_mw / energy, f.charge_efficiency, f.discharge_efficiency]
    keys = zip(
        f.nodes,
        *(bins(x, resolution.ratio_bins) for x in shape),
        bins(frac0, resolution.state_bins),
        strict=True,
    )
    window = f.soc_max - f.soc_min
    rte = f.charge_efficiency * f.discharge_efficiency
    clusters: list[Cluster] = []
    rows: list[tuple[float, ...]] = []  # power, energy, floor, ceiling, start, idle, lined, end short
    lines: list[np.ndarray] = []
    for c in group(list(keys), energy):
        m = c.members
        pos = (f.soc_initial[m] - f.soc_min[m]) / window[m]
        plan = realignment(f, m, T, dt_h) if len(m) > 1 and np.ptp(pos) > REALIGN_SPREAD else None
        if plan is None:  # shares of energy around each member's own start
            total = energy[m].sum()
            f0 = c.shares @ frac0[m]
            lined = bool(np.ptp(f.charge_efficiency[m]) > 1e-12 or np.ptp(f.discharge_efficiency[m]) > 1e-12)
            clusters.append(c)
            power = total * np.min(f.power_mw[m] / energy[m])
            floor = f0 + np.max(f.soc_min_fraction[m] - frac0[m])
            ceiling = f0 + np.min(f.soc_max_fraction[m] - frac0[m])
            rows.append((power, total, floor, ceiling, f0, 0, lined, np.inf))
            below = (f.soc_initial[m] - f.soc_min[m]) / c.shares
            above = (f.soc_max[m] - f.soc_initial[m]) / c.shares
            need, room = np.zeros(len(m)), np.full(len(m), np.inf)
        else:
            sigma0, sigma_end, k, transfers = plan
            W = window[m].sum()
            clusters.append(Cluster(m, window[m] / W, transfers))
            power = W * np.min(f.power_mw[m] / window[m])
            # Ending below sigma_end by s, every member ends s below its own start after the
            # last transfers: s may reach the lowest start, no further (at the least efficient discharge).
            short_max = float(np.min(f.discharge_efficiency[m]) * np.min(pos) * W)
            rows.append((power, W, 0.0, 1.0, sigma0, k, True, short_max))
            below, above = np.full(len(m), sigma0 * W), np.full(len(m), (1 - sigma0) * W)
            need = np.full(len(m), (sigma_end - sigma0) * W)
            room = np.full(len(m), (sigma_end - sigma0 + np.min(1 - pos)) * W)
        # Member i stays in its window while eta_c C - D / eta_d (times its share) does.
        eta_d, span = f.discharge_efficiency[m], power * T * dt_h
        lines.append(
            np.stack([
                envelope(eta_d * below, rte[m], span),
                envelope(eta_d * above, -rte[m], span),
                envelope(-eta_d * need, rte[m], span),
                envelope(eta_d * room, -rte[m], span) if np.all(np.isfinite(room)) else np.full((PIECES, 2), np.nan),
            ])
        )  # fmt: skip
    power, total, floor, ceiling, start, idle, lined, short_max = (
        np.array(col) for col in zip(*rows, strict=True)
    )

    def tightest(values: np.ndarray, pick: Callable[[np.ndarray], float]) -> np.ndarray:
        return np.array([pick(values[c.members]) for c in clusters])

    virtual = VirtualBatteryFleet(
        **identity("vbat", f, clusters),
        power_mw=power,
        energy_mwh=total,
        charge_efficiency=tightest(f.charge_efficiency, np.min),
        discharge_efficiency=tightest(f.discharge_efficiency, np.min),
        soc_min_fraction=floor,
        soc_max_fraction=ceiling,
        soc_initial_fraction=start,
        degradation_cny_per_mwh=[c.shares @ f.degradation_cny_per_mwh[c.members] for c in clusters],
        idle_intervals=idle,
        lined=lined,
        lines=np.array(lines),
        end_short_max=short_max,
    )
    return Virtual(virtual, tuple(clusters), {})
