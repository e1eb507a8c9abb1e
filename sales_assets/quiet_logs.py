"""The warnings the project's commands silence or show once, each named with its reason.

MLflow warns on every `mlflow.sklearn.log_model` in the cloudpickle format (seven models, seven warnings
per training). The project logs cloudpickle on purpose (MLFLOW_PICKLE_REASON; measured by
`bench/bench_model_formats.py`, BENCHMARKS.md "Model format in MLflow"): skops can store every default
pipeline, the project's own estimator included once trusted, but at 2.3x the bytes (29.6 MB against 13.2 MB
a training on the real file, so 16 MB more in the MLflow store at every refresh) and 6 s more to save, and
MLflow 3.17 gives no safety for it in return: it loads a skops model only behind the same
MLFLOW_ALLOW_PICKLE_DESERIALIZATION switch as a pickle, the trusted types being read from the model itself.
Step processes install the filter (`install`) once.

Dagster marks the CLI commands the project runs (`dagster dev`, `dagster job execute`, `dagster asset
materialize`) superseded by `dg` and warns (SupersessionWarning, a FutureWarning) at every call;
`quiet_environment` filters exactly those, by message, in the processes a command starts
(SUPERSEDED_DAGSTER_COMMANDS gives each reason). `quiet_install_environment` does the same for the
notice setuptools prints on every editable install (SETUPTOOLS_EDITABLE_REASON). Standard library only: the quickstart imports it before
the virtual environment exists.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping

MLFLOW_PICKLE_WARNING = "Saving scikit-learn models in the pickle or cloudpickle format"
MLFLOW_PICKLE_REASON = (
    "cloudpickle on purpose: skops would store the same pipelines at 2.3x the bytes and MLflow 3.17 loads "
    "them behind the same MLFLOW_ALLOW_PICKLE_DESERIALIZATION switch (bench/bench_model_formats.py); only "
    "this project loads them"
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


# Dagster's function name of each superseded command the project runs -> why it runs it all the same.
SUPERSEDED_DAGSTER_COMMANDS = {
    "dev_command": (
        "`sales-dagster dev` passes `dagster dev`'s flags through (`-w workspace.yaml`, `-p PORT`) and filters "
        "its daemon's per-tick lines; `dg dev` (which takes neither) is documented beside it"
    ),
    "job_execute_command": (
        "the quickstart and the README run a named job in the calling process (`dagster job execute -j`), "
        "with its exit code; `dg launch --job` is documented beside it"
    ),
    "asset_materialize_command": (
        "the README's one-asset commands (`dagster asset materialize --select`) run in the calling process; "
        "`dg launch --assets` is documented beside it"
    ),
}


def superseded_command_filters() -> list[str]:
    """PYTHONWARNINGS entries (`action:message:category`, the message matched from its start) that hide the
    SupersessionWarning of each of SUPERSEDED_DAGSTER_COMMANDS and nothing else."""
    return [f"ignore:Function `{name}` is superseded:FutureWarning" for name in SUPERSEDED_DAGSTER_COMMANDS]


def quiet_environment(env: MutableMapping[str, str]) -> None:
    """Add `superseded_command_filters` to `env["PYTHONWARNINGS"]` (the environment of the processes a
    command starts), after the entries already there; idempotent."""
    _add_filters(env, superseded_command_filters())


def _add_filters(env: MutableMapping[str, str], filters: list[str]) -> None:
    entries = [entry for entry in env.get("PYTHONWARNINGS", "").split(",") if entry]
    entries += [entry for entry in filters if entry not in entries]
    env["PYTHONWARNINGS"] = ",".join(entries)


# setuptools' build backend warns on every editable install (pip >= 25 shows it, even with --quiet).
SETUPTOOLS_EDITABLE_NOTICE = "ignore:Editable installation:UserWarning"
SETUPTOOLS_EDITABLE_REASON = (
    "setuptools' InformationOnly notice that the flat layout's editable install goes through an import finder "
    "limited to sales_assets and sales_serving (as `[tool.setuptools.packages.find]` wants); information "
    "about every editable install, not a fault of this one"
)


def quiet_install_environment(env: MutableMapping[str, str]) -> None:
    """Add SETUPTOOLS_EDITABLE_NOTICE to `env["PYTHONWARNINGS"]` (pip passes it to the build backend);
    idempotent."""
    _add_filters(env, [SETUPTOOLS_EDITABLE_NOTICE])
