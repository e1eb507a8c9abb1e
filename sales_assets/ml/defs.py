"""Dagster definitions of group `ml`: the training, explanation and export assets with their checks."""

import dagster as dg

from sales_assets.ml.assets import onnx_model, shap_importance, trained_models

defs = dg.Definitions(assets=[trained_models, shap_importance, onnx_model])

# The per-kind lists that sales_assets/definitions.py still flattens, until it merges `defs`.
assets: list = [trained_models, shap_importance, onnx_model]
asset_checks: list = []
jobs: list = []
schedules: list = []
sensors: list = []
