"""Batteries: recursive state of charge with efficiencies, limits, a terminal state, wear cost.

Headroom (``up``/``down``) is what the fleet could add or take for one whole interval within
both its power limits and its state-of-charge window; the park model reserves frequency
regulation out of the batteries' headroom, because only storage follows the signal.

Flexibility bands (offer model, one scenario): ``up_band``/``down_band`` are extra discharge
or charge a battery offers per interval on top of its schedule. The state of charge must stay
in its window even if *every* up band (or every down band) is called, so any mix of calls the
market makes is deliverable; the bands are priced at the battery's marginal value of stored
energy, the dual of its state-of-charge balance.
"""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import CHECK_TOLERANCE, Build, Fleet, Profiles, Soft, column, identity, problem


class BatteryFleet(Fleet):
    kind = "battery"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        power_mw: np.ndarray,
        energy_mwh: np.ndarray,
        charge_efficiency: np.ndarray,
        discharge_efficiency: np.ndarray,
        soc_min_fraction: np.ndarray,
        soc_max_fraction: np.ndarray,
        soc_initial_fraction: np.ndarray,
        degradation_cny_per_mwh: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.band_scenario: int | None = None  # set by the offer model before build
        self.up_band: cp.Variable | None = None
        self.down_band: cp.Variable | None = None
        self.power_mw = np.asarray(power_mw, dtype=float)
        self.energy_mwh = np.asarray(energy_mwh, dtype=float)
        self.eta_c = np.asarray(charge_efficiency, dtype=float)
        self.eta_d = np.asarray(discharge_efficiency, dtype=float)
        self.soc_min = np.asarray(soc_min_fraction, dtype=float) * self.energy_mwh
        self.soc_max = np.asarray(soc_max_fraction, dtype=float) * self.energy_mwh
        self.soc_initial = np.asarray(soc_initial_fraction, dtype=float) * self.energy_mwh
        self.degradation = np.asarray(degradation_cny_per_mwh, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> BatteryFleet:
        return cls(
            *identity(assets),
            power_mw=column(assets, "power_mw"),
            energy_mwh=column(assets, "energy_mwh"),
            charge_efficiency=column(assets, "charge_efficiency"),
            discharge_efficiency=column(assets, "discharge_efficiency"),
            soc_min_fraction=column(assets, "soc_min_fraction"),
            soc_max_fraction=column(assets, "soc_max_fraction"),
            soc_initial_fraction=column(assets, "soc_initial_fraction"),
            degradation_cny_per_mwh=column(assets, "degradation_cny_per_mwh"),
        )

    def build(self, b: Build) -> None:
        self.b = b
        n, dt = self.n, b.dt_h
        p_max = b.column(self.power_mw)
        eta_c, eta_d = b.column(self.eta_c), b.column(self.eta_d)
        smin, smax = b.column(self.soc_min), b.column(self.soc_max)
        self.c, self.c_lo, self.c_hi = self.bounded(b, "battery_charge", "charge power limits")
        self.d, self.d_lo, self.d_hi = self.bounded(b, "battery_discharge", "discharge power limits")
        self.soc = cp.Variable((b.K * n, b.T + 1), name="battery_soc")
        self.soc0 = cp.Parameter(b.K * n, name="battery_soc0")
        self.soc_end = cp.Parameter(b.K * n, name="battery_soc_end")
        short = cp.Variable(b.K * n, nonneg=True, name="battery_terminal_short")
        net = self.d - self.c
        soc_next = self.soc[:, 1:]
        self.balance = (
            soc_next == self.soc[:, :-1] + (cp.multiply(eta_c, self.c) - cp.multiply(1 / eta_d, self.d)) * dt
        )
        self.constraints += [
            self.soc[:, 0] == self.soc0,
            self.balance,
            self.soc >= smin,
            self.soc <= smax,
            self.soc[:, b.T] + short >= self.soc_end,
        ]
        # Ending the day at the initial charge is a target: called flexibility bands may leave
        # a battery lower, which the market paid for at the energy's value.
        self.softs = [Soft("end-of-day charge below its initial level", short, "MWh", target=True)]
        self.power = net
        self.cost = cp.multiply(b.column(self.degradation) * dt, self.c + self.d)
        self.up = cp.minimum(p_max - net, cp.multiply(eta_d / dt, soc_next - smin))
        self.down = cp.minimum(p_max + net, cp.multiply(1 / (eta_c * dt), smax - soc_next))
        if self.band_scenario is not None:
            self._build_bands(b, net)
        self.set_profiles({})

    def _build_bands(self, b: Build, net: cp.Expression) -> None:
        """Bands on one scenario's rows; its headroom is what is left with every band called."""
        n, dt, s = self.n, b.dt_h, self.band_scenario
        rows = slice(s * n, (s + 1) * n)
        p_max, eta_c, eta_d = self.power_mw[:, None], self.eta_c[:, None], self.eta_d[:, None]
        smin, smax = self.soc_min[:, None], self.soc_max[:, None]
        self.up_band = cp.Variable((n, b.T), nonneg=True, name="battery_up_band")
        self.down_band = cp.Variable((n, b.T), nonneg=True, name="battery_down_band")
        # Energy the calls could take out (put in) by the end of each interval; discharge
        # losses are counted both ways, which over-states the charge added: the cautious side.
        drawn = cp.Variable((n, b.T + 1), nonneg=True, name="battery_band_drawn")
        added = cp.Variable((n, b.T + 1), nonneg=True, name="battery_band_added")
        soc = self.soc[rows]
        self.constraints += [
            drawn[:, 0] == 0,
            added[:, 0] == 0,
            drawn[:, 1:] == drawn[:, :-1] + cp.multiply(dt / eta_d, self.up_band),
            added[:, 1:] == added[:, :-1] + cp.multiply(dt / eta_d, self.down_band),
            soc - drawn >= smin,
            soc + added <= smax,
            net[rows] + self.up_band <= p_max,
            net[rows] - self.down_band >= -p_max,
        ]
        blocks_up, blocks_down = [], []
        for k in range(b.K):
            k_rows = slice(k * n, (k + 1) * n)
            if k == s:
                blocks_up.append(
                    cp.minimum(
                        p_max - net[rows] - self.up_band,
                        cp.multiply(eta_d / dt, soc[:, 1:] - drawn[:, 1:] - smin),
                    )
                )
                blocks_down.append(
                    cp.minimum(
                        p_max + net[rows] - self.down_band,
                        cp.multiply(1 / (eta_c * dt), smax - soc[:, 1:] - added[:, 1:]),
                    )
                )
            else:
                blocks_up.append(self.up[k_rows])
                blocks_down.append(self.down[k_rows])
        self.up = cp.vstack(blocks_up) if b.K > 1 else blocks_up[0]
        self.down = cp.vstack(blocks_down) if b.K > 1 else blocks_down[0]

    def band_offers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(up MW, up price, down MW, down price), each (n, T), after a solve.

        The value of one more MWh stored at the end of an interval is the sum over scenarios
        of the state-of-charge balance duals (each already weighted by its probability; their
        split between scenarios is arbitrary where the offer's monotonicity binds, their sum is
        not). Selling one more MWh costs 1/eta_d MWh of storage at that value plus wear;
        buying one stores eta_c MWh, less wear.
        """
        dual = np.asarray(self.balance.dual_value).reshape(self.b.K, self.n, self.b.T)
        value = dual.sum(axis=0)
        up_price = value / self.eta_d[:, None] + self.degradation[:, None]
        down_price = value * self.eta_c[:, None] - self.degradation[:, None]
        up = np.maximum(np.asarray(self.up_band.value), 0.0)
        down = np.maximum(np.asarray(self.down_band.value), 0.0)
        return up, up_price, down, down_price

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        p_max = b.rows(np.repeat(self.power_mw[:, None], b.T, axis=1))
        self.c_lo.value = np.zeros_like(p_max)
        self.d_lo.value = np.zeros_like(p_max)
        self.c_hi.value = p_max.copy()
        self.d_hi.value = p_max.copy()
        self.soc0.value = b.rows(self.soc_initial)
        self.soc_end.value = b.rows(self.soc_initial)

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        b = self.b
        charge, discharge = b.rows(np.maximum(-previous, 0.0)), b.rows(np.maximum(previous, 0.0))
        for param, values in (
            (self.c_lo, charge),
            (self.c_hi, charge),
            (self.d_lo, discharge),
            (self.d_hi, discharge),
        ):
            v = param.value.copy()
            v[:, mask] = values[:, mask]
            param.value = v

    def soc_trajectory(self, setpoints: np.ndarray, dt_h: float) -> np.ndarray:
        """State of charge (n, T+1) implied by net set-points alone (no simultaneous charge and discharge)."""
        flow = (
            self.eta_c[:, None] * np.maximum(-setpoints, 0) - np.maximum(setpoints, 0) / self.eta_d[:, None]
        )
        return self.soc_initial[:, None] + np.concatenate(
            [np.zeros((self.n, 1)), np.cumsum(flow * dt_h, axis=1)], axis=1
        )

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        out = []
        hours = np.arange(setpoints.shape[1]) * dt_h
        soc = self.soc_trajectory(setpoints, dt_h)
        tol = CHECK_TOLERANCE
        for i, asset in enumerate(self.ids):
            over = np.abs(setpoints[i]) - self.power_mw[i]
            if np.any(over > tol):
                out.append(
                    f"{asset}: " + problem("power limit exceeded", over > tol, hours, over.max(), "MW")
                )
            low = self.soc_min[i] - soc[i, 1:]
            high = soc[i, 1:] - self.soc_max[i]
            if np.any(low > tol):
                out.append(
                    f"{asset}: "
                    + problem("state of charge below minimum", low > tol, hours, low.max(), "MWh")
                )
            if np.any(high > tol):
                out.append(
                    f"{asset}: "
                    + problem("state of charge above maximum", high > tol, hours, high.max(), "MWh")
                )
        return out

    def _sustained(self, scenario: int, hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Headroom each way sustainable for ``hours``, net of what the flexibility bands offer."""
        net = self.setpoints(scenario)
        soc = self.scenario_rows(self.soc.value, scenario)[:, 1:]
        up_band = 0.0 if self.up_band is None else np.maximum(np.asarray(self.up_band.value), 0.0)
        down_band = 0.0 if self.down_band is None else np.maximum(np.asarray(self.down_band.value), 0.0)
        up = np.minimum(
            self.power_mw[:, None] - net - up_band,
            (soc - self.soc_min[:, None]) * self.eta_d[:, None] / hours,
        )
        down = np.minimum(
            self.power_mw[:, None] + net - down_band,
            (self.soc_max[:, None] - soc) / (self.eta_c[:, None] * hours),
        )
        return np.maximum(up, 0.0), np.maximum(down, 0.0)

    def peak_cut(self, scenario: int, hours: float, reference_price: float) -> tuple[np.ndarray, np.ndarray]:
        """Discharging more now costs wear twice and the recharge losses at the reference price."""
        rte = self.eta_c * self.eta_d
        cost = self.degradation * (1 + 1 / rte) + reference_price * (1 / rte - 1)
        return self._sustained(scenario, hours)[0], cost

    def valley_fill(
        self, scenario: int, hours: float, reference_price: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Charging more now costs wear twice and the losses when the energy is used later."""
        rte = self.eta_c * self.eta_d
        cost = 2 * self.degradation + reference_price * (1 - rte)
        return self._sustained(scenario, hours)[1], cost
