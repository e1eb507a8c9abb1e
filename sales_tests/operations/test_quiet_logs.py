"""A quiet log: MLflow's pickle warning once per run with the reason, the superseded-command and setuptools
notices filtered by message in the commands' processes, the daemon's per-tick line dropped, the install's
progress shown; and a quickstart-sized run printing no warning that is not named with its reason."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow.sklearn  # noqa: F401 - configures MLflow's loggers as a training step does
import pytest

from sales_assets import quiet_logs
from sales_assets.cli import PROJECT_ROOT, IdleSensorLines

QUICKSTART = PROJECT_ROOT / "scripts" / "quickstart.py"


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
    assert quiet_logs.MLFLOW_PICKLE_REASON in messages[0] and "once per run" in messages[0]
    assert messages[1] == "another warning"


# ---- commands' own warnings -------------------------------------------------------------------------


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_setuptools_editable_notice_is_filtered_by_its_message_only():
    """The notice as the build backend raises it (setuptools >= 77, which pip installs for the build in
    isolation; the venv's own setuptools is older): `SetuptoolsWarning.emit` calls `warnings.warn` with the
    summary first and its InformationOnly class, a UserWarning. Any other warning still shows."""
    emit = (
        "import warnings\n"
        "class InformationOnly(UserWarning): pass\n"
        "warnings.warn('Editable installation.\\n!!\\n\\n  Please be careful with folders ...', InformationOnly)\n"
        "warnings.warn('Another setuptools notice.', UserWarning)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    assert "Editable installation." in _python(emit, env).stderr
    quiet_logs.quiet_install_environment(env)
    quiet_logs.quiet_install_environment(env)  # idempotent
    assert env["PYTHONWARNINGS"] == quiet_logs.SETUPTOOLS_EDITABLE_NOTICE
    shown = _python(emit, env).stderr
    assert "Editable installation." not in shown and "Another setuptools notice." in shown


@pytest.mark.parametrize(
    "command",
    [
        ["job", "execute", "-m", "sales_tests.operations.no_such_module", "-j", "none"],
        ["asset", "materialize", "-m", "sales_tests.operations.no_such_module", "--select", "none"],
    ],
)
def test_dagster_superseded_commands_warn_only_without_the_filters(command):
    """The real `dagster` CLI: it warns that the command is superseded (then fails on the missing module);
    with `quiet_environment` the warning is gone and the failure still shows."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    loud = subprocess.run([dagster, *command], env=env, capture_output=True, text=True, timeout=300)
    assert "SupersessionWarning" in loud.stderr
    quiet_logs.quiet_environment(env)
    quiet = subprocess.run([dagster, *command], env=env, capture_output=True, text=True, timeout=300)
    assert "SupersessionWarning" not in quiet.stderr and "superseded" not in quiet.stderr
    assert quiet.returncode != 0 and "no_such_module" in quiet.stdout + quiet.stderr


def test_the_dagster_dev_filter_names_the_command_dagster_warns_about():
    from dagster._cli.asset import asset_materialize_command
    from dagster._cli.dev import dev_command
    from dagster._cli.job import job_execute_command

    for command in (dev_command, asset_materialize_command, job_execute_command):
        assert command.callback.__name__ in quiet_logs.SUPERSEDED_DAGSTER_COMMANDS


def test_the_daemon_tick_line_is_dropped_and_each_outcome_kept():
    idle = IdleSensorLines()
    stamp = b"2026-12-07 04:01:24 +0000 - dagster.daemon.SensorDaemon - INFO - "
    assert not idle.keep(stamp + b"Checking for new runs for sensor: segments_after_refresh\n")
    assert idle.keep(
        stamp + b"Sensor segments_after_refresh skipped: Sensor function returned an empty result\n"
    )
    assert not idle.keep(
        stamp + b"Sensor segments_after_refresh skipped: Sensor function returned an empty result\n"
    )
    assert idle.keep(stamp + b"Launching run for segments_after_refresh\n")


def _quickstart():
    import importlib.util

    spec = importlib.util.spec_from_file_location("quickstart_under_test", QUICKSTART)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_install_shows_progress_from_pip_output():
    """pip's lines (as pip 26 prints them without --quiet): a progress line every PROGRESS_EVERY packages
    resolved, one when the install proper starts and one when it ends; warnings and errors in full."""
    quickstart = _quickstart()
    progress = quickstart.PipProgress(started=100.0)
    names = [f"package{i}" for i in range(45)]
    lines = ["Obtaining file:///work/project"]
    for name in names:
        lines += [f"Collecting {name}>=1.0", f"  Downloading {name}-1.0-py3-none-any.whl (10 kB)"]
    lines += [
        "WARNING: Location 'file:///opt/simple/x/' is ignored: it is neither a file nor a directory.",
        "Installing collected packages: " + ", ".join(names),
        "Successfully installed " + " ".join(f"{name}-1.0" for name in names),
    ]
    shown = [s for i, line in enumerate(lines) if (s := progress.line(line + "\n", 100.0 + i)) is not None]
    assert shown == [
        "  [   1 s] resolving: 1 packages so far (now package0>=1.0)",
        "  [  41 s] resolving: 21 packages so far (now package20>=1.0)",
        "  [  81 s] resolving: 41 packages so far (now package40>=1.0)",
        "WARNING: Location 'file:///opt/simple/x/' is ignored: it is neither a file nor a directory.",
        "  [  92 s] installing 45 packages (the longest step: no output until it ends)",
        "  [  93 s] installed 45 packages",
    ]


# ---- a quickstart-sized run -------------------------------------------------------------------------

# A warning line: Dagster's and the logging module's `WARNING`, or Python's `SomethingWarning: message`.
WARNING_LINE = re.compile(r"\bWARNING\b|\b\w*Warning: ")
# Each warning a quickstart run may print, by a pattern of its line, with why the project leaves it.
ALLOWED_WARNINGS: dict[str, str] = {
    r"does not exist: generating the embedded sample there": (
        "the quickstart without a CSV runs on the generated sample by design (README); the warning tells the "
        "reader the figures are not of their data"
    ),
    # The three MLflow warnings of every training are being fixed at their cause by helper "speed" on its
    # branch (issue 27); allowed here while they still appear on this one.
    r"The specified dataset source can be interpreted in multiple ways": "MLflow training, fixed by 'speed'",
    r"Inferred schema contains integer column": "MLflow training, fixed by 'speed'",
    r"Saving scikit-learn models in the pickle or cloudpickle format": (
        "MLflow training: cloudpickle kept on purpose, once per run with its reason (MLFLOW_PICKLE_REASON)"
    ),
}
# The quickstart's materialisation (scripts/quickstart.py `materialize`) on the generated sample, with the
# small training of the UI tests and one time-series segment (the backfill's others print the same lines).
SMALL_RUN = {
    "SALES_ML__CV_FOLDS": "2",
    "SALES_ML__CV_REPEATS": "1",
    "SALES_ML__MODELS": '["linear_regression", "capped_price_residual"]',
    "SALES_ML__SHAP_ROWS": "60",
}


def _unexplained_warnings(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if WARNING_LINE.search(line) and not any(re.search(pattern, line) for pattern in ALLOWED_WARNINGS)
    ]


def test_the_warning_scan_finds_each_kind_of_warning_line():
    lines = [
        "2026-12-07 04:01:24 +0000 - dagster - WARNING - sales_assets - something",
        "/x/y.py:3: FutureWarning: something",
        "WARNING: something",
        "2026-12-07 04:01:24 +0000 - dagster - INFO - no warning here",
    ]
    assert _unexplained_warnings("\n".join(lines)) == lines[:3]


@pytest.mark.slow
def test_a_quickstart_sized_run_prints_no_warning_the_project_could_avoid(tmp_path, monkeypatch):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "SALES_DATA_DIR": str(data), **SMALL_RUN}.items():
        monkeypatch.setenv(name, value)
    for name in ("SALES_RAW_CSV", "SALES_RAW_DIR", "PYTHONWARNINGS"):
        monkeypatch.delenv(name, raising=False)
    quickstart = _quickstart()
    env = quickstart.pipeline_env()
    dagster = str(Path(sys.executable).with_name("dagster"))
    steps = [
        [dagster, "job", "execute", "-m", "sales_assets.definitions", "-j", "refresh_cheap_chain"],
        [dagster, "job", "execute", "-m", "sales_assets.definitions", "-j", "refresh_heavy"],
        [sys.executable, "-m", "sales_assets.timeseries.backfill", "--segment", "ALL"],
    ]
    output = []
    for step in steps:
        done = subprocess.run(
            step,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1800,
        )
        output.append(done.stdout)
        assert done.returncode == 0, done.stdout[-3000:]
    unexplained = _unexplained_warnings("\n".join(output))
    assert unexplained == [], "warnings not named in ALLOWED_WARNINGS:\n" + "\n".join(unexplained)
