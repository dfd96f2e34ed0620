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


def ar1_from(start: float, shocks: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) recursion ``x[i] = phi * x[i-1] + shocks[i]`` starting after ``start``."""
    out = np.empty(len(shocks))
    prev = float(start)
    for i, shock in enumerate(shocks):
        prev = phi * prev + shock
        out[i] = prev
    return out


def ar1_across_years(
    seed: int, key: str, year: int, n: int, n_previous: int, sigma: float, phi: float
) -> np.ndarray:
    """Stationary AR(1) noise for one calendar year that carries on from the previous year's.

    Each year draws its own shocks, so any year can be generated alone; it starts from where the
    previous year's series ends, so there is no jump at New Year. That end is recomputed from the
    previous year's shocks started at zero: after a year of intervals the start is forgotten
    (``phi ** n_previous`` is nil for any ``phi`` used here), so it equals the previous year's end.
    """
    scale = sigma * np.sqrt(1.0 - phi**2)
    previous = rng(seed, key, year - 1).normal(0.0, scale, n_previous)
    return ar1_from(ar1_from(0.0, previous, phi)[-1], rng(seed, key, year).normal(0.0, scale, n), phi)
