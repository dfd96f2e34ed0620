"""The park's green certificates for one day (1 GEC = 1 MWh, DOMAIN.md §3).

Policy (what a zero-carbon park does with its certificates):

1. A certificate is issued for every MWh of PV and wind generation.
2. Green energy consumed in the park when it is generated is *direct green* supply; its
   certificates are cancelled for that claim. Exports are counted as green first (the
   conservative choice for the park's claim).
3. Imports under green-power contracts arrive with their certificates (*green-traded*).
4. Certificates of exported green energy cancel against the remaining grid imports
   (*certificate-covered*); what is left is sold at ``carbon.green_certificate_price_cny``.
5. Planning option only (``top_up=True``, off in settlement): if the clean share of the park's
   electricity is still below ``carbon.clean_energy_share_target``, the shortfall is bought at
   that price and cancelled. Settled days never invent purchases: real trades are records.

Quantities are daily pools spread over the intervals in proportion (sales to exported green
energy, cover and purchases to uncovered imports), so money lines have interval detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Certificates:
    """Per-interval MWh of green attributes and what was done with them."""

    issued: np.ndarray
    direct: np.ndarray
    exported_green: np.ndarray
    traded: np.ndarray
    covered_own: np.ndarray
    bought: np.ndarray
    sold: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        return self.covered_own + self.bought


def _spread(total: float, weights: np.ndarray) -> np.ndarray:
    s = weights.sum()
    return weights * (total / s) if s > 0 else np.zeros_like(weights)


def plan_certificates(
    green_mwh: np.ndarray,
    imported_mwh: np.ndarray,
    exported_mwh: np.ndarray,
    green_contract_mwh: np.ndarray,
    own_fossil_mwh: float,
    clean_share_target: float,
    top_up: bool = False,
    recorded_gec_mwh: np.ndarray | None = None,
) -> Certificates:
    """``green_contract_mwh`` includes recorded green-power trades (allocated to intervals);
    ``recorded_gec_mwh`` is recorded certificate purchases to cancel against imports."""
    direct = np.maximum(green_mwh - exported_mwh, 0.0)
    exported_green = green_mwh - direct
    traded = np.minimum(imported_mwh, green_contract_mwh)
    uncovered = imported_mwh - traded
    surplus = float(exported_green.sum())
    covered_own = min(surplus, float(uncovered.sum()))
    sold = surplus - covered_own
    consumption = float(imported_mwh.sum() + green_mwh.sum() + own_fossil_mwh - exported_mwh.sum())
    clean = float(direct.sum() + traded.sum()) + covered_own
    room = float(uncovered.sum()) - covered_own
    recorded = 0.0 if recorded_gec_mwh is None else float(recorded_gec_mwh.sum())
    bought = min(recorded, max(room, 0.0))
    if top_up:
        bought += min(
            max(clean_share_target * max(consumption, 0.0) - clean - bought, 0.0), max(room - bought, 0.0)
        )
    return Certificates(
        issued=green_mwh,
        direct=direct,
        exported_green=exported_green,
        traded=traded,
        covered_own=_spread(covered_own, uncovered),
        bought=_spread(bought, uncovered),
        sold=_spread(sold, exported_green),
    )
