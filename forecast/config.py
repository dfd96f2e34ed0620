"""Service settings (``PARKVPP_FORECAST_*``) and the forecast horizons.

These are operating and tuning choices of the forecast service, not domain numbers: the
market's gate closure and interval length come from the market rules of the scenario.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from infra.settings import SettingsError

HorizonName = Literal["day_ahead", "72h", "intraday"]
HORIZONS: tuple[HorizonName, ...] = ("day_ahead", "72h", "intraday")
DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class HorizonSpec:
    """How a horizon is trained and evaluated.

    ``k_train``: the models for this horizon are trained as if issued ``k_train`` days before
    the target day (day-ahead: the day before); ``days``: how many whole days are forecast.
    Intraday reuses the day-ahead models with a residual correction (see ``calibration``).
    """

    name: HorizonName
    model_horizon: HorizonName
    k_train: int
    days: int


HORIZON_SPECS: dict[str, HorizonSpec] = {
    "day_ahead": HorizonSpec("day_ahead", "day_ahead", k_train=1, days=1),
    "72h": HorizonSpec("72h", "72h", k_train=2, days=3),
    "intraday": HorizonSpec("intraday", "day_ahead", k_train=1, days=1),
}


def horizon_spec(name: str) -> HorizonSpec:
    if name not in HORIZON_SPECS:
        raise ValueError(f"horizon={name!r}: must be one of {', '.join(HORIZONS)}")
    return HORIZON_SPECS[name]


def _env(name: str) -> str | None:
    value = os.environ.get("PARKVPP_FORECAST_" + name)
    return value if value not in (None, "") else None


def _int(name: str, default: int, minimum: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit() or int(raw) < minimum:
        raise SettingsError(f"PARKVPP_FORECAST_{name}={raw!r}: expected a whole number >= {minimum}")
    return int(raw)


def parse_quantiles(raw: str, field: str = "quantiles") -> tuple[float, ...]:
    """``"0.1,0.5,0.9"`` -> (0.1, 0.5, 0.9); levels strictly between 0 and 1, 0.5 included."""
    try:
        levels = sorted({round(float(p), 4) for p in raw.split(",") if p.strip()})
    except ValueError as exc:
        raise ValueError(f"{field}={raw!r}: expected comma-separated numbers like 0.1,0.5,0.9") from exc
    if not levels or any(not 0 < q < 1 for q in levels):
        raise ValueError(f"{field}={raw!r}: every level must lie strictly between 0 and 1")
    if 0.5 not in levels:
        raise ValueError(f"{field}={raw!r}: must include the median 0.5")
    return tuple(levels)


@dataclass(frozen=True)
class ForecastConfig:
    """Resolved forecast settings; every field has a working default."""

    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    da_lead_minutes: int = 30
    reselect_days: int = 7
    backtest_days: int = 21
    refit_days: int = 7
    train_days: int = 100
    intraday_steps: int = 16
    use_ray: bool = True
    retries: int = 1
    schedule_72h: bool = True

    @classmethod
    def from_env(cls) -> ForecastConfig:
        d = cls()
        raw_q = _env("QUANTILES")
        raw_ray = (_env("RAY") or "1").lower()
        if raw_ray not in ("0", "1", "true", "false", "yes", "no"):
            raise SettingsError(f"PARKVPP_FORECAST_RAY={raw_ray!r}: expected 1 or 0")
        try:
            quantiles = parse_quantiles(raw_q, "PARKVPP_FORECAST_QUANTILES") if raw_q else d.quantiles
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        for required in (0.1, 0.5, 0.9):
            if required not in quantiles:
                raise SettingsError(f"PARKVPP_FORECAST_QUANTILES: must include {required}")
        return cls(
            quantiles=quantiles,
            da_lead_minutes=_int("DA_LEAD_MINUTES", d.da_lead_minutes, 0),
            reselect_days=_int("RESELECT_DAYS", d.reselect_days, 1),
            backtest_days=_int("BACKTEST_DAYS", d.backtest_days, 7),
            refit_days=_int("REFIT_DAYS", d.refit_days, 1),
            train_days=_int("TRAIN_DAYS", d.train_days, 28),
            intraday_steps=_int("INTRADAY_STEPS", d.intraday_steps, 1),
            use_ray=raw_ray in ("1", "true", "yes"),
            retries=_int("RETRIES", d.retries, 0),
            schedule_72h=(_env("SCHEDULE_72H") or "1").lower() in ("1", "true", "yes"),
        )
