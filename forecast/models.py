"""The candidate models, all sktime forecasters, and how each is fitted and asked.

* ``seasonal_naive``: the value one day earlier (sktime ``NaiveForecaster``, ``sp`` = a day):
  the baseline every other model must beat.
* ``stl``: statistical; STL decomposition with a daily season, each part forecast on.
* ``linear_exog`` and ``gbm_exog``: reduction to regression (sktime ``YfromX``) on the
  exogenous features of :mod:`forecast.features`: a ridge regression and gradient-boosted trees.

sktime works on integer positions (intervals since :data:`EPOCH`) so time zones never
reach it. Every estimator is seeded, so the same data gives the same model.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infra.timeutil import MARKET_TZ

MODEL_CODE_VERSION = "fc1"
CANDIDATES = ("seasonal_naive", "stl", "linear_exog", "gbm_exog")
UNIVARIATE = ("seasonal_naive", "stl")
EPOCH = pd.Timestamp("2020-01-01", tz=MARKET_TZ)

# Tuning knobs (not domain numbers).
NAIVE_FIT_DAYS = 7
STL_FIT_DAYS = 14
GBM_PARAMS: dict[str, Any] = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}
RIDGE_ALPHA = 1.0


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One BLAS/OpenMP thread: parallelism comes from Ray across series, and on a shared
    2-core machine OpenMP threads in every worker oversubscribe the cores badly. Also keeps
    sktime's notice about a future default out of the logs."""
    import sklearn.ensemble  # noqa: F401  (load OpenMP before limiting it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), warnings.catch_warnings():
        # sktime 1.2 warns at every forecaster construction (its own clones included).
        warnings.filterwarnings("ignore", message=".*remember_data.*", category=FutureWarning)
        yield


def positions(index: pd.DatetimeIndex, interval: pd.Timedelta) -> pd.Index:
    return pd.Index(((index - EPOCH) // interval).astype("int64"))


def make_forecaster(name: str, per_day: int) -> Any:
    # sktime 1.2 warns on every construction about a future default (remember_data); the
    # models here keep their training window, which is what that default does today.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*remember_data.*", category=FutureWarning)
        return _make(name, per_day)


def _make(name: str, per_day: int) -> Any:
    from sktime.forecasting.compose import YfromX
    from sktime.forecasting.naive import NaiveForecaster

    if name == "seasonal_naive":
        return NaiveForecaster(strategy="last", sp=per_day)
    if name == "stl":
        from sktime.forecasting.trend import STLForecaster

        return STLForecaster(
            sp=per_day,
            forecaster_trend=NaiveForecaster(strategy="last"),
            forecaster_seasonal=NaiveForecaster(strategy="last", sp=per_day),
            forecaster_resid=NaiveForecaster(strategy="mean", window_length=per_day),
        )
    if name == "linear_exog":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return YfromX(make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=RIDGE_ALPHA)))
    if name == "gbm_exog":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return YfromX(HistGradientBoostingRegressor(**GBM_PARAMS))
    raise ValueError(f"model={name!r}: must be one of {', '.join(CANDIDATES)}")


@dataclass
class FittedModel:
    """A fitted sktime forecaster and what it was trained on."""

    name: str
    forecaster: Any
    trained_until: pd.Timestamp
    feature_names: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=5)

    @staticmethod
    def from_bytes(raw: bytes) -> FittedModel:
        return pickle.loads(raw)


def fit_univariate(name: str, y_known: pd.Series, per_day: int) -> FittedModel:
    """Fit a time-series model on the last days of ``y_known`` (all before the cut-off)."""
    days = NAIVE_FIT_DAYS if name == "seasonal_naive" else STL_FIT_DAYS
    y = y_known.iloc[-days * per_day :]
    interval = y.index[1] - y.index[0]
    forecaster = make_forecaster(name, per_day)
    forecaster.fit(pd.Series(y.to_numpy(), index=positions(y.index, interval)))
    return FittedModel(name, forecaster, y.index[-1])


def fit_exog(name: str, y: pd.Series, X: pd.DataFrame, per_day: int) -> FittedModel:
    interval = _interval(y.index, per_day)
    pos = positions(y.index, interval)
    forecaster = make_forecaster(name, per_day)
    forecaster.fit(pd.Series(y.to_numpy(), index=pos), X=X.set_axis(pos))
    return FittedModel(name, forecaster, y.index[-1], tuple(X.columns))


def predict(model: FittedModel, rows: pd.DatetimeIndex, X: pd.DataFrame | None, per_day: int) -> np.ndarray:
    """Point forecast at ``rows`` (after the model's training data)."""
    from sktime.forecasting.base import ForecastingHorizon

    interval = _interval(rows, per_day)
    pos = positions(rows, interval)
    fh = ForecastingHorizon(pos, is_relative=False)
    if model.name in UNIVARIATE:
        return np.asarray(model.forecaster.predict(fh), dtype=float)
    assert X is not None
    return np.asarray(model.forecaster.predict(fh, X=X[list(model.feature_names)].set_axis(pos)), dtype=float)


def _interval(index: pd.DatetimeIndex, per_day: int) -> pd.Timedelta:
    return pd.Timedelta(days=1) / per_day
