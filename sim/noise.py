"""Seeded random streams and the autocorrelated noise the simulator uses everywhere."""

from __future__ import annotations

import hashlib

import numpy as np


def rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across runs and processes)."""
    digest = hashlib.sha256("|".join(str(k) for k in (seed, *keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def ar1(gen: np.random.Generator, n: int, sigma: float, phi: float) -> np.ndarray:
    """Stationary AR(1) noise with standard deviation ``sigma`` and lag-1 correlation ``phi``."""
    shocks = gen.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
    out = np.empty(n)
    out[0] = gen.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def daily_offsets(gen: np.random.Generator, n_days: int, sigma: float, per_day: int) -> np.ndarray:
    """One random level per day, repeated for each interval of the day."""
    return np.repeat(gen.normal(0.0, sigma, n_days), per_day)
