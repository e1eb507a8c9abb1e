"""Dagster definitions of group `ml`: the training, explanation and export assets with their checks."""

from sales_assets.ml.assets import onnx_model, shap_importance, trained_models

assets: list = [trained_models, shap_importance, onnx_model]
asset_checks: list = []
jobs: list = []
schedules: list = []
sensors: list = []
