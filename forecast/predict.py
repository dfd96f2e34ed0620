"""One series' probabilistic forecast from its selected model (pure; runs inside a Ray task)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast import calibration as cal_mod
from forecast.backtest import LAG_MARGIN_DAYS
from forecast.features import build_features
from forecast.hygiene import HygieneReport, clean_values
from forecast.models import UNIVARIATE, FittedModel, fit_univariate, predict
from forecast.series import SeriesSpec
from infra.scenario.model import Scenario


def night_mask(ctx: pd.DataFrame, rows: pd.DatetimeIndex) -> np.ndarray:
    if "clearsky_ghi" not in ctx.columns:
        return np.zeros(len(rows), dtype=bool)
    return ctx["clearsky_ghi"].reindex(rows).to_numpy() <= 0.0


def forecast_series(
    spec: SeriesSpec,
    scenario: Scenario | None,
    raw: pd.Series,
    ctx: pd.DataFrame,
    model_name: str,
    fitted: FittedModel | None,
    calibration: cal_mod.Calibration,
    cutoff: pd.Timestamp,
    rows: pd.DatetimeIndex,
    intraday: bool = False,
) -> tuple[dict[float, np.ndarray], dict[str, int]]:
    """Quantiles at ``rows`` using only readings before ``cutoff``; returns them and the hygiene flags.

    Intraday adds the latest known error of the model, decayed by ``rho ** lead``, and takes
    its quantiles per lead from the intraday calibration.
    """
    per_day = int(pd.Timedelta(days=1) / (ctx.index[1] - ctx.index[0]))
    interval = ctx.index[1] - ctx.index[0]
    report = HygieneReport(spec.series_id)
    known = raw[raw.index < cutoff]
    y, report = clean_values(
        known, spec.series_id, 1440 // per_day, spec.lower, spec.upper, LAG_MARGIN_DAYS + 1, report
    )
    y = y.reindex(ctx.index)
    offsets = None
    if model_name in UNIVARIATE:
        model = fit_univariate(model_name, y[y.index < cutoff], per_day)
        point = predict(model, rows, None, per_day)
    else:
        assert fitted is not None, f"{spec.series_id}: model {model_name} has no fitted estimator"
        ask = rows
        last = y[y.index < cutoff].index[-1]
        if intraday:
            ask = pd.DatetimeIndex([last]).append(rows)
        X = build_features(spec, y, ctx, ask, pd.DatetimeIndex([cutoff] * len(ask)))
        point = predict(fitted, ask, X, per_day)
        if intraday:
            error_now = float(y[last]) - point[0]
            point = point[1:]
            leads = ((rows - last) // interval).to_numpy()
            point = point + error_now * calibration.rho**leads
            pooled = np.asarray(calibration.pooled)
            offsets = np.array([calibration.intraday.get(int(h), pooled) for h in leads], dtype=float)
    quantiles = cal_mod.quantile_forecast(spec, calibration, rows, point, night_mask(ctx, rows), offsets)
    return quantiles, report.as_dict()
