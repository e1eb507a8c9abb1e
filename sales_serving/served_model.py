"""ModelHolder: which bundle is being served, and swapping in a new one when CURRENT moves.

A swap replaces one reference, so a request that already took the old model finishes on it; a bundle that
fails to load is refused and the old model keeps serving, with the reason kept for /health.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sales_serving import metrics
from sales_serving.contract.bundle import CURRENT_FILE, BundleError
from sales_serving.loading import LoadedModel, load_bundle, served_version
from sales_serving.settings import Backend

log = logging.getLogger(__name__)

HOW_TO_TRAIN = (
    "Train one by materialising `onnx_model` and everything upstream of it, from the project folder: "
    "`.venv/bin/sales-dagster asset materialize -m sales_assets.definitions --select '*onnx_model'` (or "
    "`python3 scripts/quickstart.py`, which also creates .venv, or the Dagster UI); the service picks the new bundle up without a restart. If one was trained into another data "
    "folder, set SALES_DATA_DIR (or SALES_SERVING_MODEL_DIR) to it."
)


@dataclass(frozen=True)
class HolderStatus:
    status: Literal["ok", "degraded", "no_model"]
    model: LoadedModel | None
    reason: str | None


class ModelHolder:
    """Holds the served LoadedModel; `refresh()` is cheap unless CURRENT changed since the last look."""

    def __init__(
        self, models_dir: Path, backend: Backend = "auto", check_interval_seconds: float = 1.0
    ) -> None:
        self.models_dir = models_dir
        self.backend = backend
        self.check_interval_seconds = check_interval_seconds
        self.model: LoadedModel | None = None
        self.last_error: str | None = None
        self.reloads = 0
        self.refusals = 0
        # A value no stat can give, so the first refresh always reads CURRENT.
        self._seen_stamp: tuple[int, int, int] | None | object = object()
        self._last_check = float("-inf")
        self._lock = threading.Lock()

    def status(self) -> HolderStatus:
        model, error = self.model, self.last_error
        if model is None:
            return HolderStatus(
                "no_model", None, f"{error or f'no bundle under {self.models_dir}'}. {HOW_TO_TRAIN}"
            )
        return HolderStatus("degraded" if error else "ok", model, error)

    def refresh(self, force: bool = False) -> LoadedModel | None:
        """Looks at CURRENT (at most once per interval unless forced) and loads the bundle it names if it moved."""
        now = time.monotonic()
        if not force and now - self._last_check < self.check_interval_seconds:
            return self.model
        with self._lock:
            self._last_check = now
            stamp = self._current_stamp()
            if stamp == self._seen_stamp:
                return self.model
            self._seen_stamp = stamp
            self._load_current()
        return self.model

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.models_dir / CURRENT_FILE)
        except FileNotFoundError:
            return None
        # os.replace gives CURRENT a new inode, so this catches a move even within one mtime tick.
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _load_current(self) -> None:
        if self._seen_stamp is None and self.model is None:
            # Nothing trained yet is a normal state, not a refusal.
            self.last_error = None
            return
        try:
            version = served_version(self.models_dir)
            if self.model is not None and self.model.version == version:
                self.last_error = None
                return
            model = load_bundle(self.models_dir / version, self.backend)
        except BundleError as error:
            self._refuse(str(error))
            return
        previous = self.model
        self.model = model
        self.last_error = None
        self.reloads += 1
        metrics.model_loaded(previous.identity if previous else None, model.identity)
        log.info(
            "serving model %s (%s backend), replacing %s",
            model.version,
            model.backend,
            previous.version if previous else None,
        )

    def _refuse(self, reason: str) -> None:
        if self.model is not None:
            reason = f"refused the bundle named by CURRENT, still serving {self.model.version}: {reason}"
        self.last_error = reason
        self.refusals += 1
        metrics.model_refused()
        log.warning("%s", reason)
