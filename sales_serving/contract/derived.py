"""The derived-feature ops a bundle may name (copy, divide, multiply, season), each defined once here.

Every form is made from `DERIVED_OPS`: training's pandas columns (`sales_assets.ml.features`), serving's
batch and one-row columns (`sales_serving.features`) and the ONNX graph's nodes
(`sales_assets.ml.onnx_export`). An op is either arithmetic (a function from the `operator` module, which
gives the same IEEE double result on Python floats, numpy float64 arrays and pandas float64 Series) or a
lookup (a label table indexed by an integral operand). `sales_tests/ml/test_derived_forms.py` checks every
form against this definition on generated rows. Standard library only.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

# Meteorological seasons (northern hemisphere) by month number; index 0 is never used: months are 1..12.
SEASON_BY_MONTH: tuple[str, ...] = (
    "",
    "Winter",
    "Winter",
    "Spring",
    "Spring",
    "Spring",
    "Summer",
    "Summer",
    "Summer",
) + ("Autumn", "Autumn", "Autumn", "Winter")

OpName = Literal["copy", "divide", "multiply", "season"]
# What an operand must hold: "month" an integral month number 1..12, "positive" a number > 0, None any number.
OperandRule = Literal["month", "positive"] | None


@dataclass(frozen=True)
class DerivedOp:
    """One op. Exactly one of `arithmetic` (operands -> float, IEEE double) and `labels` (value = labels[int
    (operand)], a str) is set; `onnx_op` is the ONNX operator computing it on double tensors (a lookup is a
    Gather on the labels); `operand_rules` says, per operand, what it must hold before the op applies."""

    name: OpName
    operand_rules: tuple[OperandRule, ...]
    onnx_op: Literal["Identity", "Div", "Mul", "Gather"]
    arithmetic: Callable[..., float] | None = None
    labels: tuple[str, ...] | None = None

    @property
    def operand_count(self) -> int:
        return len(self.operand_rules)

    @property
    def is_lookup(self) -> bool:
        return self.labels is not None

    def operands_with(self, rule: OperandRule, inputs: tuple[str, ...] | list[str]) -> list[str]:
        """The inputs (of a derived feature using this op) that must satisfy `rule`."""
        return [name for name, own in zip(inputs, self.operand_rules, strict=True) if own == rule]

    @property
    def scalar(self) -> Callable[..., float | str]:
        """The op on Python floats: the definition every form is checked against, and the one-row form."""
        if self.labels is not None:
            labels = self.labels
            return lambda operand: labels[int(operand)]
        return self.arithmetic


def _same(value):
    return value


DERIVED_OPS: dict[str, DerivedOp] = {
    "copy": DerivedOp("copy", (None,), "Identity", arithmetic=_same),
    "divide": DerivedOp("divide", (None, "positive"), "Div", arithmetic=operator.truediv),
    "multiply": DerivedOp("multiply", (None, None), "Mul", arithmetic=operator.mul),
    "season": DerivedOp("season", ("month",), "Gather", labels=SEASON_BY_MONTH),
}
if set(DERIVED_OPS) != set(get_args(OpName)):
    raise AssertionError(f"DERIVED_OPS {sorted(DERIVED_OPS)} and OpName {get_args(OpName)} disagree")
