"""The exchange adapter protocol: the one interface the bidding service talks to a market through.

Implementations: the exchange simulator (``sim.exchange.ExchangeSimulator``, the simulated
world), :class:`bidding.recorded.RecordedResultsAdapter` (replays prices ingested into the
time-series store), and later a real exchange connection. All take the market clock's time
``at`` from the caller, refuse a submission, amendment or withdrawal at or after gate closure
with :class:`infra.contracts.ExchangeRefusal` (``code="gate_closed"``, naming both times), and
give results only after gate closure. ``tests/bidding/test_adapter_conformance.py`` is the
contract every implementation passes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from infra.contracts import Award, Bid, ExchangeRefusal, ExchangeStatus

__all__ = ["ExchangeAdapter", "ExchangeRefusal", "ExchangeStatus"]


@runtime_checkable
class ExchangeAdapter(Protocol):
    name: str

    def submit(self, bid: Bid, bid_id: str, at: datetime) -> ExchangeStatus:
        """Place a new bid; ``"open"`` until its gate closes."""
        ...

    def amend(self, bid_id: str, bid: Bid, at: datetime) -> ExchangeStatus:
        """Replace an open bid's content (same market and day)."""
        ...

    def withdraw(self, bid_id: str, at: datetime) -> ExchangeStatus:
        """Take an open bid back; ``"withdrawn"``."""
        ...

    def status(self, bid_id: str, at: datetime) -> ExchangeStatus:
        """open, withdrawn, closed (gate passed), cleared (results out) or rejected."""
        ...

    def results(self, bid_id: str, at: datetime) -> list[Award]:
        """The awards of a closed bid (empty for a withdrawn one)."""
        ...
