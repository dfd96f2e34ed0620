"""``parkvpp bench scale``: a whole market day for a generated park of many small devices.

The park is Datong's market and carbon settings with ``devices`` heterogeneous distributed
devices in many enterprises (:mod:`gateway.scale.park`); the day runs through the production
code of every service: registry, store, forecast, offer, bid, clearing (the exchange
simulator), disaggregation, dispatch chunks on a partitioned Kafka topic, delivery and
metering through the store, and settlement (:mod:`gateway.scale.bench`).
"""
