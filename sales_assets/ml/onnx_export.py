"""ONNX export of a fitted pipeline (preprocessing and derived features included) and its parity check
against the joblib pipeline. The graph takes the request fields as they come (numbers as float64, text as
strings, each [None, 1]) and computes every derived feature inside with the bundle contract's ops, so any
onnxruntime (Python, JavaScript, Java, C#) can score an order line without this project's code.

Importing this module registers the converters skl2onnx lacks: XGBoost and LightGBM (onnxmltools), CatBoost
(its own ONNX export, embedded as one node) and CappedPriceRegressor (a small graph over its price model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx
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

from sales_assets.ml.features import FeatureSpec, build_feature_matrix
from sales_serving.contract.derived import DERIVED_OPS
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


# Prefix of the tensors that carry the model's feature columns from the request part of the graph.
FEATURE_PREFIX = "feature__"
# Prefix of every name of the converted pipeline's graph, so its inputs may share a request field's name.
PIPELINE_PREFIX = "pipeline__"


def onnx_input_types(spec: FeatureSpec) -> list[dict[str, str]]:
    """The graph's inputs as the bundle contract lists them: every request field, float64 or string."""
    text = set(spec.categorical_request_fields)
    return [{"name": name, "type": "string" if name in text else "float64"} for name in spec.request_fields]


def _request_part(spec: FeatureSpec, opset_imports, ir_version: int) -> onnx.ModelProto:
    """Request fields in, feature columns out (`feature__<name>`), each op's node made from its definition
    (`DERIVED_OPS`): arithmetic in double, then cast to float32 as the Python path does; a lookup casts its
    operand to int64 and gathers from the op's label table; text passes through."""
    from onnx import TensorProto, helper

    text = set(spec.categorical_request_fields)
    inputs = [
        helper.make_tensor_value_info(
            name, TensorProto.STRING if name in text else TensorProto.DOUBLE, [None, 1]
        )
        for name in spec.request_fields
    ]
    nodes, initializers, outputs = [], [], []
    derived = {item["name"]: item for item in spec.derived}
    for name in spec.columns:
        target = FEATURE_PREFIX + name
        categorical = name in spec.categorical
        if name not in derived:
            nodes.append(
                helper.make_node("Identity", [name], [target])
                if categorical
                else helper.make_node("Cast", [name], [target], to=TensorProto.FLOAT)
            )
        else:
            definition, operands = DERIVED_OPS[derived[name]["op"]], derived[name]["inputs"]
            if definition.is_lookup:
                table = f"{definition.name}_labels"
                if table not in {initializer.name for initializer in initializers}:
                    labels = [label.encode() for label in definition.labels]
                    initializers.append(helper.make_tensor(table, TensorProto.STRING, [len(labels)], labels))
                nodes += [
                    helper.make_node("Cast", operands, [f"{name}__index"], to=TensorProto.INT64),
                    helper.make_node(definition.onnx_op, [table, f"{name}__index"], [target], axis=0),
                ]
            else:
                nodes += [
                    helper.make_node(definition.onnx_op, operands, [f"{name}__double"]),
                    helper.make_node("Cast", [f"{name}__double"], [target], to=TensorProto.FLOAT),
                ]
        element = TensorProto.STRING if categorical else TensorProto.FLOAT
        outputs.append(helper.make_tensor_value_info(target, element, [None, 1]))
    graph = helper.make_graph(nodes, "request_fields_to_features", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=list(opset_imports), ir_version=ir_version)


def export_onnx(pipeline: Pipeline, spec: FeatureSpec) -> bytes:
    """The whole fitted pipeline as one ONNX graph over the request fields (see `onnx_input_types`): the
    derived features, then the converted pipeline (its names prefixed `pipeline__`). Raises what the
    converter raises for a model it cannot convert."""
    from onnx import checker, compose

    initial_types = [(name, FloatTensorType([None, 1])) for name in spec.numeric] + [
        (name, StringTensorType([None, 1])) for name in spec.categorical
    ]
    converted = convert_sklearn(pipeline, initial_types=initial_types, target_opset=TARGET_OPSET)
    converted = compose.add_prefix(converted, PIPELINE_PREFIX)
    request_part = _request_part(spec, converted.opset_import, converted.ir_version)
    merged = compose.merge_models(
        request_part,
        converted,
        io_map=[(FEATURE_PREFIX + name, PIPELINE_PREFIX + name) for name in spec.columns],
        prefix1="",
        prefix2="",
    )
    checker.check_model(merged)
    return merged.SerializeToString()


def onnx_feeds(requests: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The graph's feeds from a frame of request fields (other columns are ignored)."""
    text = set(spec.categorical_request_fields)
    return {
        name: requests[[name]].astype(str).to_numpy(dtype=object)
        if name in text
        else requests[[name]].to_numpy(dtype=np.float64)
        for name in spec.request_fields
    }


def onnx_session(onnx_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


def onnx_output_name(onnx_bytes: bytes) -> str:
    return onnx_session(onnx_bytes).get_outputs()[0].name


def onnx_predict(onnx_bytes: bytes, requests: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """SALES per row of a frame of request fields, from the ONNX graph."""
    session = onnx_session(onnx_bytes)
    return np.asarray(session.run(None, onnx_feeds(requests, spec))[0], dtype="float64").ravel()


def check_parity(
    pipeline: Pipeline, onnx_bytes: bytes, requests: pd.DataFrame, spec: FeatureSpec, tolerance: float
) -> ParityResult:
    """onnxruntime on the request fields against the joblib pipeline on the features Python derives from
    them, on every given row. A row fails when the two differ by more than `tolerance` or when either
    prediction is NaN or infinite: such a row's difference is taken as inf, and rows are counted by `not <=`
    so that no NaN comparison can let one through."""
    features, _ = build_feature_matrix(requests, spec, require_target=False)
    expected = np.asarray(pipeline.predict(features), dtype="float64").ravel()
    actual = onnx_predict(onnx_bytes, requests, spec)
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
