"""A simulated AGC signal and how a battery follows it: the inputs of the regulation K factor.

Per interval the grid's automatic generation control asks for a regulation set-point (a
random walk within the awarded capacity, one value a second). The battery follows with a
response delay, a ramp limit and tracking noise. From the two traces:

* ``k1`` (ramp) = achieved ramp rate / required ramp rate (required from the market file);
* ``k2`` (delay) = 1 - measured delay / allowed delay, the delay found by cross-correlation;
* ``k3`` (accuracy) = 1 - mean |response - signal| / (allowed error x capacity).

Each clipped to [0, 5]; the K formula itself is the market file's
(:meth:`infra.scenario.model.RegulationRule.k_factor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infra.scenario.model import ExchangeSimulatorSettings


@dataclass(frozen=True)
class Follower:
    """How a resource follows AGC: delay (s), ramp limit (MW/s) and tracking noise (MW, 1 sigma)."""

    delay_s: int
    ramp_mw_per_s: float
    noise_mw: float = 0.0


@dataclass(frozen=True)
class AgcPerformance:
    k1: float
    k2: float
    k3: float
    mileage_mw: float
    delay_s: int


def battery_pool(capacity_mw: float) -> Follower:
    """How the park's battery pool follows AGC [assumption]: power electronics answer within 4 s,
    ramp the whole capacity in 2 s and track to 1 % of capacity (1 sigma)."""
    capacity = max(capacity_mw, 1.0)
    return Follower(delay_s=4, ramp_mw_per_s=capacity / 2, noise_mw=0.01 * capacity)


def agc_signal(capacity_mw: float, seconds: int, gen: np.random.Generator) -> np.ndarray:
    """A regulation request that moves in steps every 30-120 s within +-capacity."""
    out = np.zeros(seconds)
    t, level = 0, 0.0
    while t < seconds:
        hold = int(gen.integers(30, 121))
        level = float(np.clip(level + gen.normal(0, 0.5 * capacity_mw), -capacity_mw, capacity_mw))
        out[t : t + hold] = level
        t += hold
    return out


def follow(signal: np.ndarray, f: Follower, gen: np.random.Generator | None = None) -> np.ndarray:
    """The resource's output: the signal delayed by ``delay_s``, ramp-limited, with noise."""
    target = np.concatenate([np.full(f.delay_s, signal[0] if len(signal) else 0.0), signal])[: len(signal)]
    out = np.empty_like(target)
    level = target[0] if len(target) else 0.0
    for i, want in enumerate(target):
        level += float(np.clip(want - level, -f.ramp_mw_per_s, f.ramp_mw_per_s))
        out[i] = level
    if gen is not None and f.noise_mw > 0:
        out = out + gen.normal(0, f.noise_mw, len(out))
    return out


def measured_delay_s(signal: np.ndarray, response: np.ndarray, max_lag_s: int = 120) -> int:
    """The lag (s) at which the response best matches the signal."""
    s = signal - signal.mean()
    r = response - response.mean()
    best, best_err = 0, np.inf
    for lag in range(0, min(max_lag_s, len(s) - 1) + 1):
        err = float(np.mean((s[: len(s) - lag] - r[lag:]) ** 2))
        if err < best_err - 1e-12:
            best, best_err = lag, err
    return best


def performance(
    signal: np.ndarray, response: np.ndarray, capacity_mw: float, settings: ExchangeSimulatorSettings
) -> AgcPerformance:
    """k1, k2, k3 and mileage of one interval's AGC trace (one value per second)."""
    delay = measured_delay_s(signal, response)
    aligned = response[delay:]
    error = float(np.mean(np.abs(aligned - signal[: len(aligned)]))) if len(aligned) else 0.0
    steps = np.abs(np.diff(response))
    moving = steps[steps > 1e-6]
    achieved_ramp_per_min = float(np.percentile(moving, 90)) * 60 if len(moving) else 0.0
    required_per_min = settings.agc_required_ramp_fraction_per_min * capacity_mw
    k1 = achieved_ramp_per_min / required_per_min if required_per_min > 0 else 0.0
    k2 = 1 - delay / settings.agc_allowed_delay_s
    k3 = 1 - error / (settings.agc_allowed_error_fraction * capacity_mw) if capacity_mw > 0 else 0.0
    clip = lambda v: float(np.clip(v, 0.0, 5.0))  # noqa: E731
    return AgcPerformance(clip(k1), clip(k2), clip(k3), float(np.abs(np.diff(signal)).sum()), delay)
