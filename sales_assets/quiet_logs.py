"""Log lines a run shows once, with the reason, instead of once per model.

MLflow warns on every `mlflow.sklearn.log_model` in the cloudpickle format (ten models, ten warnings per
training). The project logs cloudpickle on purpose: the pipelines hold the project's own estimators
(`sales_serving.contract.estimators`), which the safe `skops` format cannot load back, and the logged
models are read only by this project. Step processes install the filter (`install`) once.
"""

from __future__ import annotations

import logging

MLFLOW_PICKLE_WARNING = "Saving scikit-learn models in the pickle or cloudpickle format"
MLFLOW_PICKLE_REASON = (
    "cloudpickle on purpose: the pipelines hold the project's own estimators "
    "(sales_serving.contract.estimators), which skops cannot load; only this project loads them"
)


class OnceWithReason(logging.Filter):
    """Passes the first record whose message contains `marker`, with `reason` appended; drops the rest."""

    def __init__(self, marker: str, reason: str):
        super().__init__()
        self.marker, self.reason, self.seen = marker, reason, False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.marker not in message:
            return True
        if self.seen:
            return False
        self.seen = True
        record.msg, record.args = f"{message} [{self.reason}; shown once per run]", ()
        return True


def install() -> None:
    """Add the filters to their loggers once per process (idempotent)."""
    logger = logging.getLogger("mlflow.sklearn")
    if not any(isinstance(f, OnceWithReason) for f in logger.filters):
        logger.addFilter(OnceWithReason(MLFLOW_PICKLE_WARNING, MLFLOW_PICKLE_REASON))
