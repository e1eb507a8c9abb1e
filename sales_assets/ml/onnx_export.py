"""ONNX export of a fitted pipeline (preprocessing included) and its parity check against the joblib pipeline.

Importing this module registers the converters skl2onnx lacks: XGBoost and LightGBM (onnxmltools), CatBoost
(its own ONNX export, embedded as one node) and CappedPriceRegressor (a small graph over its price model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnxruntime as ort
import pandas as pd
from catboost import CatBoostRegressor
from catboost.utils import convert_to_onnx_object
from lightgbm import LGBMRegressor
from onnx.helper import get_attribute_value
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import (
    OnnxAdd,
    OnnxConcat,
    OnnxGather,
    OnnxLess,
    OnnxMul,
    OnnxReshape,
    OnnxWhere,
)
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
from sklearn.pipeline import Pipeline
from xgboost import XGBRegressor

from sales_assets.ml.features import FeatureSpec
from sales_serving.contract.estimators import CappedPriceRegressor

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _convert_catboost(scope, operator, container):
    """CatBoost exports a one-node TreeEnsembleRegressor graph; copy that node into the pipeline's graph."""
    exported = convert_to_onnx_object(operator.raw_operator)
    node = exported.graph.node[0]
    if len(exported.graph.node) != 1 or not node.op_type.startswith("TreeEnsemble"):
        raise NotImplementedError(
            f"CatBoost exported {[n.op_type for n in exported.graph.node]}, expected one tree node"
        )
    container.add_node(
        node.op_type,
        [operator.inputs[0].full_name],
        [operator.outputs[0].full_name],
        op_domain=node.domain,
        op_version=1,
        name=scope.get_unique_operator_name("CatBoostRegressor"),
        **{attribute.name: get_attribute_value(attribute) for attribute in node.attribute},
    )


def _convert_capped_price(scope, operator, container):
    """quantity x (price where price < cap, else the price model's estimate), as ONNX operators."""
    model: CappedPriceRegressor = operator.raw_operator
    opset = container.target_opset
    features = operator.inputs[0]

    def column(index: int):
        return OnnxGather(features, np.array([index], dtype=np.int64), axis=1, op_version=opset)

    price_inputs = (
        OnnxGather(features, np.array(model.price_indices, dtype=np.int64), axis=1, op_version=opset)
        if model.price_indices
        else features
    )
    if model.year_index is not None and model.month_index is not None:
        twelve = np.array([12.0], dtype=np.float32)
        period = OnnxAdd(
            OnnxMul(column(model.year_index), twelve, op_version=opset),
            column(model.month_index),
            op_version=opset,
        )
        price_inputs = OnnxConcat(price_inputs, period, axis=1, op_version=opset)
    estimated = OnnxReshape(
        OnnxSubEstimator(model.price_model_, price_inputs, op_version=opset),
        np.array([-1, 1], dtype=np.int64),
        op_version=opset,
    )
    price = column(model.price_index)
    below_cap = OnnxLess(price, np.array([model.price_cap], dtype=np.float32), op_version=opset)
    unit_price = OnnxWhere(below_cap, price, estimated, op_version=opset)
    prediction = OnnxMul(
        column(model.quantity_index), unit_price, op_version=opset, output_names=operator.outputs[:1]
    )
    prediction.add_to(scope, container)


update_registered_converter(
    XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
)
update_registered_converter(
    LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
)
update_registered_converter(
    CatBoostRegressor,
    "CatBoostCatBoostRegressor",
    calculate_linear_regressor_output_shapes,
    _convert_catboost,
)
update_registered_converter(
    CappedPriceRegressor,
    "SalesCappedPriceRegressor",
    calculate_linear_regressor_output_shapes,
    _convert_capped_price,
)


@dataclass(frozen=True)
class ParityResult:
    passed: bool
    # inf when either side gave a non-finite prediction: no finite tolerance covers that row.
    max_abs_diff: float
    tolerance: float
    rows_checked: int
    rows_outside: int
    rows_non_finite: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def onnx_input_types(spec: FeatureSpec) -> list[dict[str, str]]:
    return [{"name": name, "type": "float32"} for name in spec.numeric] + [
        {"name": name, "type": "string"} for name in spec.categorical
    ]


def export_onnx(pipeline: Pipeline, spec: FeatureSpec) -> bytes:
    """The whole fitted pipeline as ONNX: one [None, 1] input per feature column, named as the feature."""
    initial_types = [(name, FloatTensorType([None, 1])) for name in spec.numeric] + [
        (name, StringTensorType([None, 1])) for name in spec.categorical
    ]
    model = convert_sklearn(pipeline, initial_types=initial_types, target_opset=TARGET_OPSET)
    return model.SerializeToString()


def onnx_feeds(features: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    feeds = {name: features[[name]].to_numpy(dtype=np.float32) for name in spec.numeric}
    feeds |= {name: features[[name]].astype(str).to_numpy(dtype=object) for name in spec.categorical}
    return feeds


def onnx_session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def onnx_output_name(onnx_bytes: bytes) -> str:
    return onnx_session(onnx_bytes).get_outputs()[0].name


def onnx_predict(onnx_bytes: bytes, features: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    session = onnx_session(onnx_bytes)
    return np.asarray(session.run(None, onnx_feeds(features, spec))[0], dtype="float64").ravel()


def check_parity(
    pipeline: Pipeline, onnx_bytes: bytes, features: pd.DataFrame, spec: FeatureSpec, tolerance: float
) -> ParityResult:
    """onnxruntime against the joblib pipeline on every given row. A row fails when the two differ by more
    than `tolerance` or when either prediction is NaN or infinite: such a row's difference is taken as inf,
    and rows are counted by `not <=` so that no NaN comparison can let one through."""
    expected = np.asarray(pipeline.predict(features), dtype="float64").ravel()
    actual = onnx_predict(onnx_bytes, features, spec)
    non_finite = ~(np.isfinite(expected) & np.isfinite(actual))
    with np.errstate(invalid="ignore"):
        difference = np.where(non_finite, np.inf, np.abs(expected - actual))
    outside = int((~(difference <= tolerance)).sum())
    return ParityResult(
        passed=outside == 0,
        max_abs_diff=float(difference.max(initial=0.0)),
        tolerance=tolerance,
        rows_checked=len(difference),
        rows_outside=outside,
        rows_non_finite=int(non_finite.sum()),
    )
