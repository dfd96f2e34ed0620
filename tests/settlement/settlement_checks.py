"""Checks shared by the settlement tests."""

from __future__ import annotations

import numpy as np

from infra.contracts import Settlement


def assert_reconciles(statements: list[Settlement]) -> None:
    """Settlement invariants and enterprise-vs-park reconciliation, all in whole fen."""
    fen = lambda x: round(x * 100)  # noqa: E731
    for st in statements:
        # exact as floats too: a consumer summing the lists sees the totals
        assert sum(st.interval_total_cny) == st.total_cny
        assert all(sum(ln.interval_amount_cny) == ln.amount_cny for ln in st.lines)
        assert fen(st.total_cny) == sum(fen(v) for v in st.interval_total_cny)
        for ln in st.lines:
            assert fen(ln.amount_cny) == sum(fen(v) for v in ln.interval_amount_cny)
        per_interval = np.sum([[fen(v) for v in ln.interval_amount_cny] for ln in st.lines], axis=0)
        assert per_interval.tolist() == [fen(v) for v in st.interval_total_cny]
    park = next(s for s in statements if s.account_id == "park")
    others = [s for s in statements if s.account_id != "park"]
    items = {ln.item for s in statements for ln in s.lines}
    for item in items:
        park_line = next((ln for ln in park.lines if ln.item == item), None)
        want = (
            [fen(v) for v in park_line.interval_amount_cny] if park_line else [0] * len(park.interval_starts)
        )
        got = np.sum(
            [[fen(v) for v in ln.interval_amount_cny] for s in others for ln in s.lines if ln.item == item],
            axis=0,
        ).tolist()
        assert got == want, item
    assert sum(fen(s.total_cny) for s in others) == fen(park.total_cny)
