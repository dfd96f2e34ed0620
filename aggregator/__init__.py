"""Aggregator: pools the park's assets into one carbon-aware VPP offer and splits awards into set-points.

Core logic is pure (``offer.build_offer``, ``dispatch.disaggregate``, ``dispatch.reoptimise``);
``worker.AggregatorWorker`` is the thin Kafka entry point. See README.md in this folder.
"""
