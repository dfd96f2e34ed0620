"""Per-asset amounts computed block by block equal the amounts of every asset at once."""

from __future__ import annotations

import numpy as np
import pytest

from settlement import assets
from settlement.assets import AssetBook, settle_assets


def test_blocks_of_assets_give_the_amounts_of_the_whole_park(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    n, intervals = 1_000, 96
    book = AssetBook(
        asset_ids=tuple(f"a{i}" for i in range(n)),
        enterprise_ids=("operator", "tou", "flat"),
        enterprise_of=rng.integers(0, 3, n),
        operator=0,
        contracted=np.array([False, True, True]),
        flat_price=np.array([False, False, True]),
        fee_cny_per_mwh=np.array([0.0, 12.5, 33.3]),
        share_fraction=np.array([0.0, 0.3, 0.55]),
        degradation_cny_per_mwh=np.where(rng.random(n) < 0.3, rng.uniform(5, 50, n), 0.0),
        regulation_weight=np.where(rng.random(n) < 0.2, rng.uniform(0.1, 2, n), 0.0),
    )
    energy = rng.normal(0.0, 0.3, (n, intervals))
    baseline = energy + rng.normal(0.0, 0.1, (n, intervals))
    baseline[::7, 5] = np.nan  # meters without a baseline deliver nothing there
    dr_mw = np.where(rng.random(intervals) < 0.3, rng.uniform(-20, 20, intervals), 0.0)
    args = (
        rng.uniform(100, 900, intervals),
        dr_mw,
        rng.uniform(-1e4, 1e4, intervals),
        rng.uniform(0, 5e3, intervals),
    )

    whole = settle_assets(book, energy, baseline, *args)
    monkeypatch.setattr(assets, "BLOCK_ROWS", 64)  # 16 blocks, the last one short
    blocks = settle_assets(book, energy, baseline, *args)

    for item, fen in whole.items().items():
        assert fen.dtype == np.int64
        np.testing.assert_array_equal(blocks.items()[item], fen, err_msg=item)
    np.testing.assert_array_equal(blocks.delivered_mwh, whole.delivered_mwh)
    # The demand-response revenue is shared out over all blocks, not within each one.
    contracted = book.contracted[book.enterprise_of]
    assert np.abs(whole.flexibility_fen[contracted]).sum() > 0
