"""Per-asset settlement: the vectorised stage that scales with the number of meters.

For every asset and interval (arrays ``(assets, intervals)``):

* ``energy_supply``: the enterprise buys (or sells) its metered energy from the operator at
  the day-ahead price of the interval (``tou_plus_share``: time-of-use) or at the day's
  mean day-ahead price (``fixed_plus_share``: a fixed price for the day);
* ``storage_degradation``: discharged energy x the battery's ``degradation_cny_per_mwh``;
* ``flexibility_payment``: delivered flexibility (metered change against the baseline in the
  direction of a demand-response award) x the contract's ``fixed_price_cny_per_mwh``, plus
  ``share_fraction`` of the exchange revenue attributed to the asset: demand-response revenue
  by its share of delivered energy, regulation revenue by its share of battery power.

Amounts are rounded to the fen per asset and interval, so enterprise figures are exact sums.
The operator's own assets carry no internal lines (it is the counterparty of them all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from infra.scenario.model import Scenario
from settlement.market import dr_delivered_mwh
from settlement.money import to_fen

# Gaps up to this many intervals between two readings are interpolated linearly; longer ones
# take the asset's baseline profile. Estimation knob, not a domain figure.
MAX_INTERPOLATED_INTERVALS = 4
# Assets settled at once: bounds the temporaries (a million meters at once held about 6 GB more).
BLOCK_ROWS = 20_000


@dataclass(frozen=True)
class AssetBook:
    """The static per-asset and per-enterprise facts of a park, as arrays."""

    asset_ids: tuple[str, ...]
    enterprise_ids: tuple[str, ...]
    enterprise_of: np.ndarray  # (assets,) index into enterprise_ids
    operator: int  # index of the operator enterprise
    contracted: np.ndarray  # (enterprises,) has revenue-sharing terms (not an operator)
    flat_price: np.ndarray  # (enterprises,) energy at the day's mean price
    fee_cny_per_mwh: np.ndarray  # (enterprises,)
    share_fraction: np.ndarray  # (enterprises,)
    degradation_cny_per_mwh: np.ndarray  # (assets,)
    regulation_weight: np.ndarray  # (assets,) battery power

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> AssetBook:
        ents = scenario.park.enterprises
        index = {e.id: i for i, e in enumerate(ents)}
        assets = scenario.park.assets
        return cls(
            asset_ids=tuple(a.id for a in assets),
            enterprise_ids=tuple(e.id for e in ents),
            enterprise_of=np.array([index[a.enterprise] for a in assets], dtype=np.int64),
            operator=next(i for i, e in enumerate(ents) if e.contract is None),
            contracted=np.array([e.contract is not None for e in ents]),
            flat_price=np.array(
                [e.contract is not None and e.contract.kind == "fixed_plus_share" for e in ents]
            ),
            fee_cny_per_mwh=np.array(
                [e.contract.fixed_price_cny_per_mwh if e.contract else 0.0 for e in ents]
            ),
            share_fraction=np.array([e.contract.share_fraction if e.contract else 0.0 for e in ents]),
            degradation_cny_per_mwh=np.array([getattr(a, "degradation_cny_per_mwh", 0.0) for a in assets]),
            regulation_weight=np.array([a.power_mw if a.type == "battery" else 0.0 for a in assets]),
        )

    @property
    def operator_id(self) -> str:
        return self.enterprise_ids[self.operator]


@dataclass(frozen=True)
class AssetAmounts:
    energy_supply_fen: np.ndarray
    flexibility_fen: np.ndarray
    degradation_fen: np.ndarray
    delivered_mwh: np.ndarray

    def items(self) -> dict[str, np.ndarray]:
        return {
            "energy_supply": self.energy_supply_fen,
            "flexibility_payment": self.flexibility_fen,
            "storage_degradation": self.degradation_fen,
        }


def settle_assets(
    book: AssetBook,
    energy_mwh: np.ndarray,
    baseline_mwh: np.ndarray,
    p_da_cny_per_mwh: np.ndarray,
    dr_mw: np.ndarray,
    dr_net_cny: np.ndarray,
    regulation_cny: np.ndarray,
) -> AssetAmounts:
    """Every asset's amounts, :data:`BLOCK_ROWS` assets at a time: only the interval totals of
    delivered flexibility are the park's, so the temporaries of a block, not of a million
    meters, are held at once (the amounts are the same element by element)."""
    n_assets = energy_mwh.shape[0]
    blocks = [slice(s, s + BLOCK_ROWS) for s in range(0, n_assets, BLOCK_ROWS)]
    delivered = np.empty_like(energy_mwh)
    for b in blocks:
        delivered[b] = dr_delivered_mwh(dr_mw[None, :], energy_mwh[b], baseline_mwh[b])
    delivered_total = delivered.sum(axis=0)
    weight = book.regulation_weight
    reg_share = weight / weight.sum() if weight.sum() > 0 else np.zeros_like(weight)
    energy_supply = np.empty(energy_mwh.shape, dtype=np.int64)
    flexibility = np.empty(energy_mwh.shape, dtype=np.int64)
    degradation = np.empty(energy_mwh.shape, dtype=np.int64)
    for b in blocks:
        ent = book.enterprise_of[b]
        internal = book.contracted[ent][:, None]
        price = np.where(book.flat_price[ent][:, None], p_da_cny_per_mwh.mean(), p_da_cny_per_mwh[None, :])
        energy_supply[b] = to_fen(energy_mwh[b] * price) * internal
        degradation[b] = -to_fen(np.maximum(energy_mwh[b], 0.0) * book.degradation_cny_per_mwh[b, None])
        share = np.divide(
            delivered[b], delivered_total, out=np.zeros_like(delivered[b]), where=delivered_total > 0
        )
        attributed = share * dr_net_cny[None, :] + reg_share[b, None] * regulation_cny[None, :]
        flexibility[b] = (
            to_fen(
                book.fee_cny_per_mwh[ent][:, None] * delivered[b]
                + book.share_fraction[ent][:, None] * attributed
            )
            * internal
        )
    return AssetAmounts(energy_supply, flexibility, degradation, delivered)


AssetStage = Callable[
    [AssetBook, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], AssetAmounts
]


def by_enterprise(book: AssetBook, fen: np.ndarray) -> np.ndarray:
    """Sum per-asset rows into per-enterprise rows (exact integer sums)."""
    out = np.zeros((len(book.enterprise_ids), fen.shape[1]), dtype=fen.dtype)
    order = np.argsort(book.enterprise_of, kind="stable")
    groups, starts = np.unique(book.enterprise_of[order], return_index=True)
    if len(order):
        out[groups] = np.add.reduceat(fen[order], starts, axis=0)
    return out


def fill_gaps(metered_mwh: np.ndarray, baseline_mwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate unmeasured intervals; returns the filled energy and the mask of estimates.

    Short interior gaps are interpolated between the readings either side; longer gaps and
    gaps at the day's edges take the baseline profile, or the nearest reading without one.
    A meter with no reading and no baseline is estimated at zero.
    """
    filled = metered_mwh.copy()
    estimated = np.isnan(metered_mwh)
    for i in np.flatnonzero(estimated.any(axis=1)):
        row, gap = filled[i], estimated[i]
        known = np.flatnonzero(~gap)
        if not len(known):
            base = baseline_mwh[i]
            filled[i] = np.where(np.isnan(base), 0.0, base)
            continue
        interpolated = np.interp(np.arange(len(row)), known, row[known])
        edges = np.diff(np.concatenate(([0], gap.astype(np.int8), [0])))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            interior = start > 0 and end < len(row)
            base = baseline_mwh[i, start:end]
            if (interior and end - start <= MAX_INTERPOLATED_INTERVALS) or np.isnan(base).any():
                row[start:end] = interpolated[start:end]
            else:
                row[start:end] = base
    return filled, estimated
