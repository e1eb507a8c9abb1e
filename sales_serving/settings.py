"""The serving package's own settings: where the bundle lives and the service's limits (env prefix SALES_).

Kept apart from sales_assets.settings so that serving never imports the code location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sales_serving.contract.bundle import models_dir

Backend = Literal["auto", "onnx", "joblib"]


class ServingSettings(BaseSettings):
    """`SALES_DATA_DIR`, `SALES_SERVING_MODEL_DIR`, `SALES_SERVING_BACKEND`, `SALES_SERVING_BATCH_LIMIT`, ..."""

    model_config = SettingsConfigDict(env_prefix="SALES_", extra="ignore")

    data_dir: Path = Path("data")
    # Default: $SALES_DATA_DIR/models/sales_regressor, the directory the onnx_model asset writes.
    serving_model_dir: Path | None = None
    # auto: ONNX when the bundle's parity check passed, else the joblib pipeline.
    serving_backend: Backend = "auto"
    serving_batch_limit: int = Field(default=10_000, ge=1)
    serving_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # How often the service looks at CURRENT for a new bundle.
    serving_reload_interval_ms: int = Field(default=1_000, ge=10)

    @property
    def model_dir(self) -> Path:
        return (self.serving_model_dir or models_dir(self.data_dir)).resolve()
