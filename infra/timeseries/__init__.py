"""The time-series store: telemetry, meter readings, market prices and weather, versioned.

Every service reads history through :func:`read`; every way in (meter messages, meter and
price files, the simulator's backfill) writes through :func:`write`.
"""

from infra.timeseries.store import (
    QUALITY_CODES,
    SeriesInfo,
    TimeSeriesError,
    WriteReport,
    catalogue,
    coverage,
    read,
    series_info,
    write,
    write_frame,
)

__all__ = [
    "QUALITY_CODES",
    "SeriesInfo",
    "TimeSeriesError",
    "WriteReport",
    "catalogue",
    "coverage",
    "read",
    "series_info",
    "write",
    "write_frame",
]
