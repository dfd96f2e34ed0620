"""Forecast service: probabilistic load, generation and price forecasts (sktime models on Ray).

Entry points: :func:`forecast.service.issue_forecast` (one issue, stored and published),
:func:`forecast.service.select_models` (rolling-origin model selection, cached),
:func:`forecast.worker.run_scheduler`, :func:`forecast.report.render_accuracy_html`.
"""
