"""The service workers parkvpp runs, by name (``parkvpp worker NAME``)."""

from __future__ import annotations

import importlib

from sqlalchemy import Engine

from infra.worker import Worker

WORKERS: dict[str, str] = {
    "aggregator": "aggregator.worker:AggregatorWorker",
    "bidding": "bidding.worker:BiddingWorker",
    "exchange-simulator": "sim.exchange_worker:ExchangeSimulatorWorker",
    "delivery-simulator": "sim.delivery:DeliveryWorker",
    "settlement": "settlement.worker:SettlementWorker",
    "telemetry": "infra.timeseries.metering:MeteringIngestWorker",
}


def make_worker(name: str, engine: Engine, kafka_bootstrap: str) -> Worker:
    if name not in WORKERS:
        raise KeyError(f"no worker named {name!r}; choose one of: {', '.join(WORKERS)}")
    module_name, class_name = WORKERS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(engine, kafka_bootstrap)
