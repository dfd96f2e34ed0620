"""Carbon: the park method (annual account), daily attribution, the ledger and indicators."""
