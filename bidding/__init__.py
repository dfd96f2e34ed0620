"""Bidding: turns the aggregator's offers into bids that satisfy the province's market rules,
submits them to a market (here the clearly named exchange simulator; a real exchange adapter
later) and publishes bids and awards."""
