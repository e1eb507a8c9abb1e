"""MLflow's pickle warning shows once per run, with the reason, however many models are logged."""

from __future__ import annotations

import logging

import mlflow.sklearn  # noqa: F401 - configures MLflow's loggers as a training step does

from sales_assets import quiet_logs


def test_the_pickle_warning_shows_once_with_the_reason(caplog):
    quiet_logs.install()
    quiet_logs.install()  # idempotent: one filter
    logger = logging.getLogger("mlflow.sklearn")
    assert sum(isinstance(f, quiet_logs.OnceWithReason) for f in logger.filters) == 1
    for f in logger.filters:
        if isinstance(f, quiet_logs.OnceWithReason):
            f.seen = False
    with caplog.at_level(logging.WARNING, logger="mlflow.sklearn"):
        for _ in range(10):
            logger.warning(quiet_logs.MLFLOW_PICKLE_WARNING + " requires exercising caution ...")
        logger.warning("another warning")
    messages = [r.getMessage() for r in caplog.records if r.name == "mlflow.sklearn"]
    assert len(messages) == 2
    assert "skops cannot load" in messages[0] and "once per run" in messages[0]
    assert messages[1] == "another warning"
