"""Conformal residual quantiles: per bucket, with fall-back, covering at least their level."""

from __future__ import annotations

import numpy as np

from forecast.conformal import residual_quantiles, widened

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def test_bands_cover_at_least_their_level_on_fresh_errors_per_bucket() -> None:
    gen = np.random.default_rng(11)
    keys = np.repeat(np.arange(4), 200)  # four buckets of errors with different spreads
    residuals = gen.normal(0.0, 1.0 + keys, len(keys))
    offsets = residual_quantiles(residuals, LEVELS, [keys], [np.arange(4)], 30)
    fresh_keys = np.repeat(np.arange(4), 20_000)
    fresh = gen.normal(0.0, 1.0 + fresh_keys, len(fresh_keys))
    band = offsets[fresh_keys]
    inside = (fresh >= band[:, 1]) & (fresh <= band[:, 5])  # P10-P90
    assert 0.79 <= inside.mean() <= 0.84
    width = offsets[:, 5] - offsets[:, 1]
    assert (np.diff(width) > 0).all()  # a wider bucket gets a wider band


def test_a_small_bucket_borrows_the_coarser_one_and_the_tails_stay_finite() -> None:
    gen = np.random.default_rng(12)
    fine = np.r_[np.zeros(100, dtype=int), np.ones(5, dtype=int)]  # bucket 1: 5 residuals
    coarse = np.zeros(105, dtype=int)
    residuals = np.r_[gen.normal(0, 1, 100), np.full(5, 50.0)]
    # One origin doubles the spread of every level: several levels beyond a bucket's ranks.
    offsets = residual_quantiles(residuals, widened(LEVELS, 1), [fine, coarse], [np.array([0, 1, 2])] * 2, 30)
    assert np.isfinite(offsets).all()
    assert np.allclose(offsets[1], offsets[2])  # too small / unseen: the coarser bucket
    assert offsets[0].min() == residuals[:100].min() and offsets[0].max() == residuals[:100].max()
    assert (np.diff(offsets, axis=1) >= 0).all()


def test_no_residuals_give_zero_offsets_and_the_widening_is_by_days() -> None:
    assert not residual_quantiles(np.array([]), LEVELS, [np.array([])], [np.array([1, 2])], 30).any()
    assert np.allclose(widened((0.1, 0.5, 0.9), 20), (0.08, 0.5, 0.92))
