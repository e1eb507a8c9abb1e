"""The serving package's own settings: where the bundle lives and the service's limits (env prefix SALES_).

Kept apart from sales_assets.settings so that serving never imports the code location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sales_serving.contract.bundle import models_dir
from sales_serving.contract.local_settings import default_data_dir, settings_sources

Backend = Literal["auto", "onnx", "joblib"]


class ServingSettings(BaseSettings):
    """`SALES_DATA_DIR`, `SALES_SERVING_MODEL_DIR`, `SALES_SERVING_BACKEND`, `SALES_SERVING_BATCH_LIMIT`, ..."""

    model_config = SettingsConfigDict(env_prefix="SALES_", extra="ignore")

    # Same default and settings file as the pipeline (sales_serving.contract.local_settings).
    data_dir: Path = Field(default_factory=default_data_dir)
    # Default: $SALES_DATA_DIR/models/sales_regressor, the directory the onnx_model asset writes.
    serving_model_dir: Path | None = None
    # auto: ONNX when the bundle's parity check passed, else the joblib pipeline.
    serving_backend: Backend = "auto"
    serving_batch_limit: int = Field(default=10_000, ge=1)
    serving_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Unknown fields are accepted and ignored (the seed's clients send whole export rows), but a row with
    # more than this many is refused: it is not an order line, and each one costs parsing time.
    serving_max_unknown_fields: int = Field(default=50, ge=0)
    # Checked on the JSON before any of it becomes a model, so a body inside the byte limit cannot cost
    # more than parsing it once: keys in one object (and names in a `columns` list), and nesting depth.
    serving_max_object_keys: int = Field(default=128, ge=16)
    serving_max_json_depth: int = Field(default=8, ge=4)
    # How often the service looks at CURRENT for a new bundle.
    serving_reload_interval_ms: int = Field(default=1_000, ge=10)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return settings_sources(settings_cls, init_settings, env_settings)

    @property
    def model_dir(self) -> Path:
        return (self.serving_model_dir or models_dir(self.data_dir)).resolve()
